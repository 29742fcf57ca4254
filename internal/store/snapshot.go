package store

import (
	"encoding/json"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// Snapshot writes a copy of the whole store to w in one read transaction
// (bbolt's Tx.WriteTo), so that the copy is consistent with itself and
// opens as a store, and returns, read in the same transaction, the update
// records the copy holds and the copy's size. Writers go on meanwhile;
// what they commit is not in the copy.
func (db *DB) Snapshot(w io.Writer) (updates []deviceupdate.StoredUpdate, size int64, err error) {
	err = db.bolt.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketUpdates).ForEach(func(k, v []byte) error {
			var u deviceupdate.StoredUpdate
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("decode %s/%s: %w", bucketUpdates, k, err)
			}
			updates = append(updates, u)
			return nil
		})
		if err != nil {
			return err
		}
		size, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("snapshot store %s: %w", db.path, err)
	}
	return updates, size, nil
}
