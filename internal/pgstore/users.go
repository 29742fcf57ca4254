package pgstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// notifyUsers is what a change of users notifies: every node forgets the
// credentials it remembers (Remembered), within a second of the change.
const notifyUsers = "users"

// Users returns every user, ordered by name, without password hashes.
func (db *DB) Users() ([]deviceupdate.User, error) {
	recs, err := list[store.UserRecord](db, "users", "SELECT data FROM users")
	return store.UsersOf(recs), err
}

// CheckUserFree returns ECONFLICT when a user of that name, in any case,
// exists: a check before the costly hash; AddUser checks again.
func (db *DB) CheckUserFree(name string) error {
	_, found, err := db.findUser(name)
	if err == nil && found {
		err = store.UserTaken(name)
	}
	return err
}

// AddUser stores a user whose name and password the caller validated,
// with its password hashed by store.HashPassword. A name already taken
// (in any case) is an ECONFLICT, checked by the insert itself. Every node
// forgets the credentials it remembers.
func (db *DB) AddUser(u deviceupdate.User, hash store.PasswordHash) error {
	data, err := jsonb(store.NewUserRecord(u, hash))
	if err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	err = db.write(notifyUsers, func(tx pgx.Tx) error {
		tag, err := tx.Exec(db.context(), "INSERT INTO users (name, data) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", strings.ToLower(u.Name), data)
		if err == nil && tag.RowsAffected() == 0 {
			return store.UserTaken(u.Name)
		}
		return err
	})
	db.afterCommit(func(root *DB) { root.auth.Forget() })
	if err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	return nil
}

// RemoveUser deletes a user by name, in any case, and returns it;
// ENOTFOUND when there is none. Its credentials stop working on this node
// before RemoveUser returns, and on the others when they hear of it,
// within a second.
func (db *DB) RemoveUser(name string) (deviceupdate.User, error) {
	var rec store.UserRecord
	err := db.write(notifyUsers, func(tx pgx.Tx) error {
		found, err := getJSON(db.context(), tx, &rec, "DELETE FROM users WHERE name = $1 RETURNING data", strings.ToLower(name))
		if err == nil && !found {
			return store.NoUser(name)
		}
		return err
	})
	db.afterCommit(func(root *DB) { root.auth.Forget() })
	if err != nil {
		return deviceupdate.User{}, fmt.Errorf("remove user: %w", err)
	}
	return rec.User, nil
}

// findUser reads a user's record; found is false when there is none.
func (db *DB) findUser(name string) (rec store.UserRecord, found bool, err error) {
	return find[store.UserRecord](db, "find user", "SELECT data FROM users WHERE name = $1", strings.ToLower(name))
}

// find reads the record one query returns; found is false when there is
// none. op names the reading in an error.
func find[T any](db *DB, op, sql string, args ...any) (rec T, found bool, err error) {
	err = db.view(func(tx pgx.Tx) (err error) {
		found, err = getJSON(db.context(), tx, &rec, sql, args...)
		return err
	})
	if err != nil {
		return rec, false, fmt.Errorf("%s: %w", op, err)
	}
	return rec, found, nil
}

// passwords is the root DB's: a bound DB checks with the node's cache.
func (db *DB) passwords() *store.Passwords {
	if db.root != nil {
		return &db.root.auth
	}
	return &db.auth
}

// Authenticate checks a user name (any case) and a password and returns
// the user, as store.Passwords.Authenticate does: every failure the same
// EUNAUTHORIZED after the same bcrypt cost, successes remembered until
// they expire or the users change on any node.
func (db *DB) Authenticate(ctx context.Context, name, password string) (deviceupdate.User, error) {
	return db.passwords().Authenticate(ctx, name, password, db.findUser)
}

// Remembered returns the user whose name and password Authenticate
// verified recently on this node, with no user added or removed since on
// any node (as far as this one has heard: within a second): one HMAC, no
// bcrypt.
func (db *DB) Remembered(name, password string) (deviceupdate.User, bool) {
	return db.passwords().Remembered(name, password)
}
