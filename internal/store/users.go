package store

import (
	"context"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// bucketUsers holds the users of the external endpoints:
// lower(name) → UserRecord.
var bucketUsers = []byte("users")

func userKey(name string) []byte { return []byte(strings.ToLower(name)) }

// Users returns every user, ordered by name, without password hashes.
func (db *DB) Users() ([]deviceupdate.User, error) {
	recs, err := listJSON[UserRecord](db, bucketUsers)
	return UsersOf(recs), err
}

// CheckUserFree returns ECONFLICT when a user of that name, in any case,
// exists: a check before the costly hash; AddUser checks again.
func (db *DB) CheckUserFree(name string) error {
	_, found, err := db.findUser(name)
	if err == nil && found {
		err = UserTaken(name)
	}
	return err
}

// AddUser stores a user whose name and password the caller validated,
// with its password hashed by HashPassword. A name already taken (in any case) is an
// ECONFLICT, checked in the same transaction as the write. Credentials
// remembered by Authenticate are forgotten.
func (db *DB) AddUser(u deviceupdate.User, hash PasswordHash) error {
	rec := NewUserRecord(u, hash)
	err := db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b.Get(userKey(u.Name)) != nil {
			return UserTaken(u.Name)
		}
		return putJSON(b, userKey(u.Name), rec)
	})
	db.afterCommit(func(root *DB) { root.auth.Forget() })
	if err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	return nil
}

// RemoveUser deletes a user by name, in any case, and returns it;
// ENOTFOUND when there is none. Its credentials stop working before
// RemoveUser returns: remembered ones are forgotten.
func (db *DB) RemoveUser(name string) (deviceupdate.User, error) {
	var rec UserRecord
	err := db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		found, err := getJSON(b, userKey(name), &rec)
		if err != nil {
			return err
		}
		if !found {
			return NoUser(name)
		}
		return b.Delete(userKey(name))
	})
	db.afterCommit(func(root *DB) { root.auth.Forget() })
	if err != nil {
		return deviceupdate.User{}, fmt.Errorf("remove user: %w", err)
	}
	return rec.User, nil
}

// findUser reads a user's record; found is false when there is none.
func (db *DB) findUser(name string) (rec UserRecord, found bool, err error) {
	return findJSON[UserRecord](db, bucketUsers, userKey(name), "find user")
}

// findJSON reads and decodes the record of key in bucket; found is false
// when there is none. op names the reading in an error.
func findJSON[T any](db *DB, bucket, key []byte, op string) (rec T, found bool, err error) {
	err = db.view(func(tx *bolt.Tx) (err error) {
		found, err = getJSON(tx.Bucket(bucket), key, &rec)
		return err
	})
	if err != nil {
		return rec, false, fmt.Errorf("%s: %w", op, err)
	}
	return rec, found, nil
}

// Authenticate checks a user name (any case) and a password and returns
// the user, as Passwords.Authenticate does: every failure the same
// EUNAUTHORIZED after the same bcrypt cost, successes remembered until
// they expire or the users change.
func (db *DB) Authenticate(ctx context.Context, name, password string) (deviceupdate.User, error) {
	return db.auth.Authenticate(ctx, name, password, db.findUser)
}

// Remembered returns the user whose name and password Authenticate
// verified recently, with no user added or removed since: one HMAC, no
// bcrypt.
func (db *DB) Remembered(name, password string) (deviceupdate.User, bool) {
	return db.auth.Remembered(name, password)
}
