package store

import (
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// PutDevices upserts a batch of inventory records in one transaction,
// merging each into the stored one (deviceupdate.Device.Merge).
func (db *DB) PutDevices(batch []deviceupdate.Device) error {
	if len(batch) == 0 {
		return nil
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		for _, d := range batch {
			var old deviceupdate.Device
			if _, err := getJSON(b, []byte(d.ID), &old); err != nil {
				return err
			}
			if err := putJSON(b, []byte(d.ID), old.Merge(d)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d devices: %w", len(batch), err)
	}
	return nil
}

// Devices returns the inventory, ordered by ID.
func (db *DB) Devices() ([]deviceupdate.Device, error) {
	out, err := listJSON[deviceupdate.Device](db, bucketDevices)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}
