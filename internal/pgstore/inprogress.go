package pgstore

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// The records of the update folders being changed are the update
// store's notes (updatestore.Change), which it reads back at start.
var _ updatestore.Records = (*DB)(nil)

// BeginImport records, before an import moves files into the folders of
// these updates, that it is doing so. CommitImport clears the records of
// the updates it commits; EndInProgress those of an import abandoned.
func (db *DB) BeginImport(updates []*deviceupdate.StoredUpdate, now time.Time) error {
	err := db.write("", func(tx pgx.Tx) error {
		return db.putInProgress(tx, updates, updatestore.OpImport, now)
	})
	if err != nil {
		return fmt.Errorf("record the import in progress: %w", err)
	}
	return nil
}

func (db *DB) putInProgress(tx pgx.Tx, updates []*deviceupdate.StoredUpdate, op string, now time.Time) error {
	for _, u := range updates {
		data, err := jsonb(updatestore.Change{RuleKey: u.RuleKey, Version: u.Version, Op: op, Since: now.UTC()})
		if err != nil {
			return err
		}
		_, err = tx.Exec(db.context(), "INSERT INTO in_progress (key, data) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET data = excluded.data",
			updateKey(u.RuleKey, u.Version), data)
		if err != nil {
			return err
		}
	}
	return nil
}

// deleteInProgress deletes the records of these updates, if any.
func (db *DB) deleteInProgress(tx pgx.Tx, done []updatestore.Change) error {
	keys := make([]string, len(done))
	for i, k := range done {
		keys[i] = updateKey(k.RuleKey, k.Version)
	}
	_, err := tx.Exec(db.context(), "DELETE FROM in_progress WHERE key = ANY($1)", keys)
	return err
}

// InProgressChanges returns the folders recorded as being changed: after a
// crash, those of the operations it interrupted, on any node.
func (db *DB) InProgressChanges() ([]updatestore.Change, error) {
	return list[updatestore.Change](db, "changes in progress", "SELECT data FROM in_progress ORDER BY key")
}

// EndInProgress deletes the records of these folders once they are dealt
// with.
func (db *DB) EndInProgress(done []updatestore.Change) error {
	if len(done) == 0 {
		return nil
	}
	if err := db.write("", func(tx pgx.Tx) error { return db.deleteInProgress(tx, done) }); err != nil {
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
