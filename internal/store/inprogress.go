package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// bucketInProgress names the update folders being changed outside a
// transaction: lower(rule key) "@" version → InProgress.
var bucketInProgress = []byte("inprogress")

// Operations an InProgress record names.
const (
	OpImport = "import" // the update's files are being moved into its folder
	OpClear  = "clear"  // the update's record is deleted and its folder is being removed
)

// InProgress records that the folder of one update is being changed: the
// only folders start-up may remove are those of such records that no
// update record names.
type InProgress struct {
	RuleKey deviceupdate.RuleKey `json:"ruleKey"`
	Version deviceupdate.Version `json:"version"`
	Op      string               `json:"op"`
	Since   time.Time            `json:"since"`
}

// BeginImport records, before an import moves files into the folders of
// these updates, that it is doing so. CommitImport clears the records of
// the updates it commits; EndInProgress those of an import abandoned.
func (db *DB) BeginImport(updates []*deviceupdate.StoredUpdate, now time.Time) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return putInProgress(tx, updates, OpImport, now)
	})
	if err != nil {
		return fmt.Errorf("record the import in progress: %w", err)
	}
	return nil
}

func putInProgress(tx *bolt.Tx, updates []*deviceupdate.StoredUpdate, op string, now time.Time) error {
	b := tx.Bucket(bucketInProgress)
	for _, u := range updates {
		rec := InProgress{RuleKey: u.RuleKey, Version: u.Version, Op: op, Since: now.UTC()}
		if err := putJSON(b, updateKey(u.RuleKey, u.Version), rec); err != nil {
			return err
		}
	}
	return nil
}

// deleteInProgress deletes the records of these updates, if any.
func deleteInProgress(tx *bolt.Tx, keys []InProgress) error {
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
func (db *DB) InProgressChanges() ([]InProgress, error) {
	return listJSON[InProgress](db, bucketInProgress)
}

// EndInProgress deletes the records of these folders once they are dealt
// with.
func (db *DB) EndInProgress(done []InProgress) error {
	if len(done) == 0 {
		return nil
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error { return deleteInProgress(tx, done) })
	if err != nil {
		return fmt.Errorf("clear the records of changes in progress: %w", err)
	}
	return nil
}

// inProgressOf returns the keys of updates' InProgress records.
func inProgressOf(updates []*deviceupdate.StoredUpdate) []InProgress {
	out := make([]InProgress, len(updates))
	for i, u := range updates {
		out[i] = InProgress{RuleKey: u.RuleKey, Version: u.Version}
	}
	return out
}
