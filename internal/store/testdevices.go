package store

import (
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// TestDevices returns every test device, ordered by name.
func (db *DB) TestDevices() ([]deviceupdate.TestDevice, error) {
	out, err := listJSON[deviceupdate.TestDevice](db, bucketTestDev)
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, err
}

// AddTestDevice stores a normalised test device and returns it as stored.
// A name or an identifier (MAC or serial) already in use is an ECONFLICT,
// a site that does not exist an ENOTFOUND, both checked in the same
// transaction as the write; the site is spelled as it was created.
func (db *DB) AddTestDevice(d deviceupdate.TestDevice) (deviceupdate.TestDevice, error) {
	err := db.update(func(tx *bolt.Tx) error {
		scope, err := siteScope(tx, d.Scope)
		if err != nil {
			return err
		}
		d.Scope = scope
		b := tx.Bucket(bucketTestDev)
		key := []byte(strings.ToLower(d.Name))
		if b.Get(key) != nil {
			return deviceupdate.Errorf(deviceupdate.ECONFLICT, "a test device named %q exists; remove it first or choose another name", d.Name)
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			var other deviceupdate.TestDevice
			if _, err := getJSON(b, k, &other); err != nil {
				return err
			}
			if strings.EqualFold(other.Identifier(), d.Identifier()) {
				return deviceupdate.Errorf(deviceupdate.ECONFLICT, "%s is already test device %q", d.Identifier(), other.Name)
			}
		}
		return putJSON(b, key, d)
	})
	if err != nil {
		return d, fmt.Errorf("add test device: %w", err)
	}
	return d, nil
}

// RemoveTestDevice deletes a test device by name; ENOTFOUND when there is
// none. It returns the device removed.
func (db *DB) RemoveTestDevice(name string) (deviceupdate.TestDevice, error) {
	var d deviceupdate.TestDevice
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTestDev)
		key := []byte(strings.ToLower(name))
		found, err := getJSON(b, key, &d)
		if err != nil {
			return err
		}
		if !found {
			return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no test device named %q; `deviceupdate testdevice list` shows them", name)
		}
		return b.Delete(key)
	})
	if err != nil {
		return d, fmt.Errorf("remove test device: %w", err)
	}
	return d, nil
}
