package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

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

// RemoveDevice deletes a device's inventory record and its own settings in
// one transaction and returns what it deleted; ENOTFOUND when there is
// neither.
func (db *DB) RemoveDevice(id string) (deviceupdate.RemovedDevice, error) {
	var removed deviceupdate.RemovedDevice
	err := db.update(func(tx *bolt.Tx) error {
		removed = deviceupdate.RemovedDevice{}
		var d deviceupdate.Device
		found, err := getJSON(tx.Bucket(bucketDevices), []byte(id), &d)
		if err != nil {
			return err
		}
		if found {
			removed.Device = &d
		}
		if removed.Settings, err = deleteDevice(tx, []byte(id)); err != nil {
			return err
		}
		if !found && removed.Settings == nil {
			return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no device %q in the inventory; `deviceupdate device list` shows them", id)
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("remove device: %w", err)
	}
	return removed, nil
}

// deleteDevice deletes a device's record and its settings, returning the
// settings (nil when it had none).
func deleteDevice(tx *bolt.Tx, id []byte) (map[string]string, error) {
	var settings map[string]string
	conf := tx.Bucket(bucketDevConf)
	found, err := getJSON(conf, id, &settings)
	if err != nil {
		return nil, err
	}
	if found {
		if err := conf.Delete(id); err != nil {
			return nil, err
		}
	}
	return settings, tx.Bucket(bucketDevices).Delete(id)
}

// PruneDevices deletes, in one transaction, every device last active
// before cutoff and its own settings; with dryRun it deletes nothing. The
// result lists the first deviceupdate.MaxPruneListed IDs.
func (db *DB) PruneDevices(cutoff time.Time, dryRun bool) (*deviceupdate.PruneResult, error) {
	res := &deviceupdate.PruneResult{NotSeenSince: cutoff.UTC(), DryRun: dryRun, Devices: []string{}}
	prune := func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		var ids [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var d deviceupdate.Device
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode device %s: %w", k, err)
			}
			if !d.LastActive().Before(cutoff) {
				return nil
			}
			ids = append(ids, append([]byte(nil), k...))
			if len(res.Devices) < deviceupdate.MaxPruneListed {
				res.Devices = append(res.Devices, d.ID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		res.Count = len(ids)
		for _, id := range ids {
			if tx.Bucket(bucketDevConf).Get(id) != nil {
				res.Settings++
			}
			if dryRun {
				continue
			}
			if _, err := deleteDevice(tx, id); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if dryRun {
		err = db.view(prune)
	} else {
		err = db.update(prune)
	}
	if err != nil {
		return nil, fmt.Errorf("prune devices: %w", err)
	}
	return res, nil
}
