package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// deviceCap bounds the inventory: anonymous polls with invented MAC
// addresses must not grow it without end. Every write of the devices
// bucket holds mu, which makes count exact: it is read from the bucket
// once, then moved by what each committed write added or deleted.
type deviceCap struct {
	mu      sync.Mutex
	max     int // 0: no cap
	count   int // devices stored; -1 until read
	counted bool
	full    func(refused int) // told of each batch that left devices out
	refused atomic.Uint64     // new devices left out since the start
}

// LimitDevices caps the inventory at max devices (0: no cap): past it,
// PutDevices records no new device, counts it as refused and calls full
// (when not nil) with the number a batch left out. Devices already
// recorded keep updating.
func (db *DB) LimitDevices(max int, full func(refused int)) {
	db.cap.mu.Lock()
	defer db.cap.mu.Unlock()
	db.cap.max, db.cap.full = max, full
}

// DeviceCount returns how many devices the inventory holds.
func (db *DB) DeviceCount() int {
	db.cap.mu.Lock()
	defer db.cap.mu.Unlock()
	if !db.cap.counted {
		_ = db.bolt.View(func(tx *bolt.Tx) error {
			db.countDevices(tx)
			return nil
		})
	}
	return db.cap.count
}

// RefusedDevices returns how many new devices the cap left out since the
// store was opened.
func (db *DB) RefusedDevices() uint64 { return db.cap.refused.Load() }

// countDevices reads the number of stored devices, once; hold cap.mu.
func (db *DB) countDevices(tx *bolt.Tx) {
	if !db.cap.counted {
		db.cap.count, db.cap.counted = tx.Bucket(bucketDevices).Stats().KeyN, true
	}
}

// updateDevices runs fn, which returns how many devices it added (less
// than 0 when it deleted), in a write transaction holding cap.mu, and
// moves the count and the index by change once the transaction commits.
func (db *DB) updateDevices(update func(func(*bolt.Tx) error) error, change *indexChange, fn func(tx *bolt.Tx) (int, error)) error {
	if db.tx != nil {
		// Bound to an audited change, which holds the store's write
		// lock already: taking cap.mu here would invert PutDevices'
		// order (cap.mu, then the write lock). The count moves once the
		// change commits, after the write lock is released; until then
		// it may count deleted devices still, which errs on refusing.
		var added int
		err := update(func(tx *bolt.Tx) (err error) {
			added, err = fn(tx)
			return err
		})
		if err == nil {
			db.afterCommit(func(root *DB) {
				root.cap.mu.Lock()
				defer root.cap.mu.Unlock()
				if root.cap.counted {
					root.cap.count += added
				}
				root.devIndex.apply(change)
			})
		}
		return err
	}
	db.cap.mu.Lock()
	defer db.cap.mu.Unlock()
	var added int
	err := update(func(tx *bolt.Tx) (err error) {
		db.countDevices(tx)
		added, err = fn(tx)
		return err
	})
	if err == nil {
		db.cap.count += added
		db.devIndex.apply(change)
	}
	return err
}

// PutDevices upserts a batch of inventory records in one transaction,
// merging each into the stored one (deviceupdate.Device.Merge). A device
// not stored yet is left out while the inventory is at its cap
// (LimitDevices).
func (db *DB) PutDevices(batch []deviceupdate.Device) error {
	if len(batch) == 0 {
		return nil
	}
	refused := 0
	change := &indexChange{batch: batch, set: make([]int32, 0, len(batch))}
	err := db.updateDevices(db.bolt.Update, change, func(tx *bolt.Tx) (int, error) {
		b := tx.Bucket(bucketDevices)
		added := 0
		refused = 0
		change.set = change.set[:0]
		for i, d := range batch {
			var old deviceupdate.Device
			found, err := getJSON(b, []byte(d.ID), &old)
			if err != nil {
				return 0, err
			}
			if !found {
				if db.cap.max > 0 && db.cap.count+added >= db.cap.max {
					refused++
					continue
				}
				added++
			}
			merged := old.Merge(d)
			if !d.LastSeen.IsZero() {
				merged = merged.NoteVersions(old)
			}
			if err := putJSON(b, []byte(d.ID), merged); err != nil {
				return 0, err
			}
			if !found || !d.LastSeen.IsZero() {
				change.set = append(change.set, int32(i))
			}
		}
		return added, observeRollouts(tx, batch)
	})
	if err != nil {
		return fmt.Errorf("record %d devices: %w", len(batch), err)
	}
	if refused > 0 {
		db.cap.refused.Add(uint64(refused))
		if db.cap.full != nil {
			db.cap.full(refused)
		}
	}
	return nil
}

// DevicesPage returns, in ID order, up to limit (0: no limit) devices
// whose ID sorts after after ("" for the first page) and that match (nil:
// every device), and the ID to continue after: the last one returned when
// another matching device follows, else "". Without match it reads the
// records from a cursor sought to after; with match it walks the
// in-memory index (devices_index.go) and reads only the records that pass:
// a page costs the memory of the page alone, and a filter few devices
// pass costs a walk of the index, not a decode of every record.
func (db *DB) DevicesPage(after string, limit int, match func(deviceupdate.Device) bool) ([]deviceupdate.Device, string, error) {
	out := []deviceupdate.Device{}
	next := ""
	// add keeps d when there is room, else notes that more follow.
	add := func(d deviceupdate.Device) bool {
		if limit > 0 && len(out) == limit {
			next = out[len(out)-1].ID
			return false
		}
		out = append(out, d)
		return true
	}
	var err error
	if match == nil {
		err = db.bolt.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketDevices).Cursor()
			k, v := c.Seek([]byte(after))
			if k != nil && after != "" && bytes.Equal(k, []byte(after)) {
				k, v = c.Next()
			}
			for ; k != nil; k, v = c.Next() {
				var d deviceupdate.Device
				if err := json.Unmarshal(v, &d); err != nil {
					return fmt.Errorf("decode device %s: %w", k, err)
				}
				if !add(d) {
					return nil
				}
			}
			return nil
		})
	} else {
		err = db.matchingDevices(after, match, add)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list devices: %w", err)
	}
	return out, next, nil
}

// matchingDevices calls add with each stored device after after, in ID
// order, that passes match, until add returns false. It tests each
// device's entry in the index, then reads and tests the record of those
// that pass: an entry a moment older than its record (written, the index
// not yet moved) cannot let a device through that fails.
func (db *DB) matchingDevices(after string, match func(deviceupdate.Device) bool, add func(deviceupdate.Device) bool) error {
	x, release, err := db.index()
	if err != nil {
		return err
	}
	defer release()
	return db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		var modules []deviceupdate.Module
		for _, e := range x.sorted[x.after(after):] {
			if cap(modules) < len(e.modules) {
				modules = make([]deviceupdate.Module, len(e.modules))
			}
			if !match(e.device(modules)) {
				continue
			}
			var d deviceupdate.Device
			found, err := getJSON(b, []byte(e.id), &d)
			if err != nil {
				return err
			}
			if found && match(d) && !add(d) {
				return nil
			}
		}
		return nil
	})
}

// Device returns one device's record; ENOTFOUND when there is none.
func (db *DB) Device(id string) (deviceupdate.Device, error) {
	var d deviceupdate.Device
	var found bool
	err := db.view(func(tx *bolt.Tx) (err error) {
		found, err = getJSON(tx.Bucket(bucketDevices), []byte(id), &d)
		return err
	})
	switch {
	case err != nil:
		return d, fmt.Errorf("read device: %w", err)
	case !found:
		return d, deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no device %q in the inventory; `deviceupdate device list` shows them", id)
	}
	return d, nil
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
	err := db.updateDevices(db.update, &indexChange{remove: []string{id}}, func(tx *bolt.Tx) (int, error) {
		removed = deviceupdate.RemovedDevice{}
		var d deviceupdate.Device
		found, err := getJSON(tx.Bucket(bucketDevices), []byte(id), &d)
		if err != nil {
			return 0, err
		}
		if found {
			removed.Device = &d
		}
		if removed.Settings, err = deleteDevice(tx, []byte(id)); err != nil {
			return 0, err
		}
		if !found && removed.Settings == nil {
			return 0, deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no device %q in the inventory; `deviceupdate device list` shows them", id)
		}
		if found {
			return -1, nil
		}
		return 0, nil
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
	var pruned []string
	prune := func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		var ids [][]byte
		pruned = pruned[:0]
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
			pruned = append(pruned, string(id))
		}
		return nil
	}
	var err error
	if dryRun {
		err = db.view(prune)
	} else {
		change := &indexChange{}
		err = db.updateDevices(db.update, change, func(tx *bolt.Tx) (int, error) {
			if err := prune(tx); err != nil {
				return 0, err
			}
			change.remove = pruned
			return -res.Count, nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("prune devices: %w", err)
	}
	return res, nil
}
