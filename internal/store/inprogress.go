package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// bucketInProgress names the update folders being changed outside a
// transaction: lower(rule key) "@" version → updatestore.Change.
var bucketInProgress = []byte("inprogress")

// The records of the update folders being changed are the update
// store's notes (updatestore.Change), which it reads back at start.
var _ updatestore.Records = (*DB)(nil)

// BeginImport records, before an import moves files into the folders of
// these updates, that it is doing so. CommitImport clears the records of
// the updates it commits; EndInProgress those of an import abandoned.
func (db *DB) BeginImport(updates []*deviceupdate.StoredUpdate, now time.Time) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return putInProgress(tx, updates, updatestore.OpImport, now)
	})
	if err != nil {
		return fmt.Errorf("record the import in progress: %w", err)
	}
	return nil
}

func putInProgress(tx *bolt.Tx, updates []*deviceupdate.StoredUpdate, op string, now time.Time) error {
	b := tx.Bucket(bucketInProgress)
	for _, u := range updates {
		rec := updatestore.Change{RuleKey: u.RuleKey, Version: u.Version, Op: op, Since: now.UTC()}
		if err := putJSON(b, updateKey(u.RuleKey, u.Version), rec); err != nil {
			return err
		}
	}
	return nil
}

// deleteInProgress deletes the records of these updates, if any.
func deleteInProgress(tx *bolt.Tx, keys []updatestore.Change) error {
	b := tx.Bucket(bucketInProgress)
	for _, k := range keys {
		if err := b.Delete(updateKey(k.RuleKey, k.Version)); err != nil {
			return err
		}
	}
	return nil
}

// InProgressChanges returns the folders recorded as being changed: after a
// crash, those of the operations it interrupted.
func (db *DB) InProgressChanges() ([]updatestore.Change, error) {
	return listJSON[updatestore.Change](db, bucketInProgress)
}

// EndInProgress deletes the records of these folders once they are dealt
// with.
func (db *DB) EndInProgress(done []updatestore.Change) error {
	if len(done) == 0 {
		return nil
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error { return deleteInProgress(tx, done) })
	if err != nil {
		return fmt.Errorf("clear the records of changes in progress: %w", err)
	}
	return nil
}

// inProgressOf returns the keys of updates' in-progress records.
func inProgressOf(updates []*deviceupdate.StoredUpdate) []updatestore.Change {
	out := make([]updatestore.Change, len(updates))
	for i, u := range updates {
		out[i] = updatestore.Change{RuleKey: u.RuleKey, Version: u.Version}
	}
	return out
}
