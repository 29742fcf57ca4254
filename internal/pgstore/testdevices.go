package pgstore

import (
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
)

// TestDevices returns every test device, ordered by name.
func (db *DB) TestDevices() ([]deviceupdate.TestDevice, error) {
	out, err := list[deviceupdate.TestDevice](db, "test devices", "SELECT data FROM test_devices")
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, err
}

// AddTestDevice stores a normalised test device and returns it as stored.
// A name or an identifier (MAC or serial) already in use is an ECONFLICT,
// a site that does not exist an ENOTFOUND, both checked in the same
// transaction as the write; the site is spelled as it was created.
func (db *DB) AddTestDevice(d deviceupdate.TestDevice) (deviceupdate.TestDevice, error) {
	asGiven := d.Scope
	err := db.write("testdevices", func(tx pgx.Tx) error {
		scope, err := db.siteScope(tx, asGiven)
		if err != nil {
			return err
		}
		d.Scope = scope
		ctx := db.context()
		var taken bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM test_devices WHERE name = $1)", strings.ToLower(d.Name)).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return deviceupdate.Errorf(deviceupdate.ECONFLICT, "a test device named %q exists; remove it first or choose another name", d.Name)
		}
		var other deviceupdate.TestDevice
		found, err := getJSON(ctx, tx, &other, "SELECT data FROM test_devices WHERE identifier = $1", strings.ToLower(d.Identifier()))
		if err != nil {
			return err
		}
		if found {
			return deviceupdate.Errorf(deviceupdate.ECONFLICT, "%s is already test device %q", d.Identifier(), other.Name)
		}
		data, err := jsonb(d)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO test_devices (name, identifier, data) VALUES ($1, $2, $3)", strings.ToLower(d.Name), strings.ToLower(d.Identifier()), data)
		return err
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
	err := db.write("testdevices", func(tx pgx.Tx) error {
		found, err := getJSON(db.context(), tx, &d, "DELETE FROM test_devices WHERE name = $1 RETURNING data", strings.ToLower(name))
		if err != nil {
			return err
		}
		if !found {
			return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no test device named %q; `deviceupdate testdevice list` shows them", name)
		}
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("remove test device: %w", err)
	}
	return d, nil
}
