package store

import (
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
)

// Store tests hash with bcrypt's lowest cost, so that they stay fast under
// -race; production code never changes bcryptCost.
func init() { bcryptCost = bcrypt.MinCost }

// SetAuthClock makes Authenticate's cache read time from now. Call it
// before the first Authenticate.
func SetAuthClock(db *DB, now func() time.Time) {
	db.auth.now = now
}

// StoredUserRecord returns a user's raw record as stored.
func StoredUserRecord(db *DB, name string) ([]byte, error) {
	var out []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		out = append(out, tx.Bucket(bucketUsers).Get(userKey(name))...)
		return nil
	})
	return out, err
}

// SetUserHash replaces a user's stored hash behind the store's back: the
// cache of verified credentials is not told.
func SetUserHash(db *DB, name, hash string) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		var rec UserRecord
		if _, err := getJSON(b, userKey(name), &rec); err != nil {
			return err
		}
		rec.Hash = hash
		return putJSON(b, userKey(name), rec)
	})
}

// ValidateFile checks what bbolt reads of a file as it opens it.
var ValidateFile = validateFile
