package store

import (
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// Sites returns every site, ordered by name.
func (db *DB) Sites() ([]deviceupdate.Site, error) {
	out, err := listJSON[deviceupdate.Site](db, bucketSites)
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, err
}

// PutSite stores a normalised site, replacing the one of the same name
// (whose previous value it returns, nil for a new site). A subnet another
// site holds is an ECONFLICT, checked in the same transaction.
func (db *DB) PutSite(s deviceupdate.Site) (*deviceupdate.Site, error) {
	var before *deviceupdate.Site
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSites)
		key := []byte(strings.ToLower(s.Name))
		var all []deviceupdate.Site
		err := b.ForEach(func(k, _ []byte) error {
			var other deviceupdate.Site
			if _, err := getJSON(b, k, &other); err != nil {
				return err
			}
			if string(k) == string(key) {
				before = &other
				s.Name = other.Name // a site keeps the spelling it was created with
				return nil
			}
			all = append(all, other)
			return nil
		})
		if err != nil {
			return err
		}
		if _, err := deviceupdate.NewSiteMap(append(all, s)); err != nil {
			return err
		}
		return putJSON(b, key, s)
	})
	if err != nil {
		return nil, fmt.Errorf("put site: %w", err)
	}
	return before, nil
}

// RemoveSite deletes a site and its setting overrides in one transaction;
// ENOTFOUND when there is none, ECONFLICT while a test device is limited
// to it. It returns the site removed.
func (db *DB) RemoveSite(name string) (deviceupdate.Site, error) {
	var s deviceupdate.Site
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSites)
		key := []byte(strings.ToLower(name))
		found, err := getJSON(b, key, &s)
		if err != nil {
			return err
		}
		if !found {
			return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no site named %q; `deviceupdate site list` shows them", name)
		}
		td := tx.Bucket(bucketTestDev)
		err = td.ForEach(func(k, _ []byte) error {
			var d deviceupdate.TestDevice
			if _, err := getJSON(td, k, &d); err != nil {
				return err
			}
			if strings.EqualFold(d.Scope, "site:"+s.Name) {
				return deviceupdate.Errorf(deviceupdate.ECONFLICT, "test device %q is limited to site %s; remove it first", d.Name, s.Name)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := deleteScope(tx.Bucket(bucketConfig), s.Name); err != nil {
			return err
		}
		return b.Delete(key)
	})
	if err != nil {
		return s, fmt.Errorf("remove site: %w", err)
	}
	return s, nil
}

// deleteScope removes the setting overrides of a site, whatever the case
// they were stored under.
func deleteScope(b *bolt.Bucket, site string) error {
	var keys [][]byte
	err := b.ForEach(func(k, _ []byte) error {
		if strings.EqualFold(string(k), "site:"+site) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// DeviceConfigs returns every device's setting overrides, by device ID.
func (db *DB) DeviceConfigs() (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevConf)
		return b.ForEach(func(k, _ []byte) error {
			m := map[string]string{}
			if _, err := getJSON(b, k, &m); err != nil {
				return err
			}
			out[string(k)] = m
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read device settings: %w", err)
	}
	return out, nil
}

// DeviceConfig returns one device's setting overrides (empty when none).
func (db *DB) DeviceConfig(id string) (map[string]string, error) {
	m := map[string]string{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		_, err := getJSON(tx.Bucket(bucketDevConf), []byte(id), &m)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read device settings: %w", err)
	}
	return m, nil
}

// SetDeviceConfig applies checked overrides to one device in one
// transaction (an empty value removes one) and returns them before and
// after.
func (db *DB) SetDeviceConfig(id string, settings map[string]string) (before, after map[string]string, err error) {
	err = db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevConf)
		cur := map[string]string{}
		if _, err := getJSON(b, []byte(id), &cur); err != nil {
			return err
		}
		before = applyOverrides(cur, settings)
		after = cur
		if len(cur) == 0 {
			return b.Delete([]byte(id))
		}
		return putJSON(b, []byte(id), cur)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("set device settings: %w", err)
	}
	return before, after, nil
}
