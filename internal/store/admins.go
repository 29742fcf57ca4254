package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// The admins' buckets (SPEC §7). Credentials are kept as hashes only: a
// password as a bcrypt hash, as users' are; a token's or a session's
// secret, 32 random bytes, as its SHA-256, which is enough for a secret
// that cannot be guessed and lets a request find its record by key.
var (
	bucketAdmins   = []byte("admins")      // lower(name) → AdminRecord
	bucketTokens   = []byte("admintokens") // SHA-256(secret) → AdminToken
	bucketSessions = []byte("sessions")    // SHA-256(secret) → SessionRecord
)

func adminKey(name string) []byte { return []byte(strings.ToLower(name)) }

// Admins returns every admin, ordered by name, without password hashes.
func (db *DB) Admins() ([]deviceupdate.Admin, error) {
	recs, err := listJSON[AdminRecord](db, bucketAdmins)
	return AdminsOf(recs), err
}

// FindAdmin returns an admin by name, in any case; ENOTFOUND when there
// is none.
func (db *DB) FindAdmin(name string) (deviceupdate.Admin, error) {
	rec, found, err := db.findAdmin(name)
	return FoundAdmin(name, rec, found, err)
}

func (db *DB) findAdmin(name string) (rec AdminRecord, found bool, err error) {
	return findJSON[AdminRecord](db, bucketAdmins, adminKey(name), "find admin")
}

// CheckAdminFree returns ECONFLICT when an admin of that name, in any
// case, exists, or the name is the bootstrap admin's: a check before the
// costly hash; AddAdmin checks again.
func (db *DB) CheckAdminFree(name string) error {
	if IsBootstrap(name) {
		return AdminTaken(name)
	}
	_, found, err := db.findAdmin(name)
	if err == nil && found {
		err = AdminTaken(name)
	}
	return err
}

// AddAdmin stores an admin whose name, role and password the caller
// validated, with the password hashed by HashPassword ("" for none). A
// name taken in any case, or the bootstrap admin's, is an ECONFLICT,
// checked in the same transaction as the write.
func (db *DB) AddAdmin(a deviceupdate.Admin, hash PasswordHash) error {
	rec := NewAdminRecord(a, hash)
	err := db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAdmins)
		if b.Get(adminKey(a.Name)) != nil || IsBootstrap(a.Name) {
			return AdminTaken(a.Name)
		}
		return putJSON(b, adminKey(a.Name), rec)
	})
	if err != nil {
		return fmt.Errorf("add admin: %w", err)
	}
	return nil
}

// RemoveAdmin deletes an admin by name, in any case, with their tokens
// and sessions, in one transaction: their credentials stop working when
// it commits. ENOTFOUND when there is none.
func (db *DB) RemoveAdmin(name string) (RemovedAdmin, error) {
	var out RemovedAdmin
	err := db.write(func(tx *bolt.Tx) error {
		var rec AdminRecord
		b := tx.Bucket(bucketAdmins)
		found, err := getJSON(b, adminKey(name), &rec)
		switch {
		case err != nil:
			return err
		case !found:
			return NoAdmin(name)
		}
		out.Admin = rec.Admin
		if out.Tokens, err = deleteWhere(tx.Bucket(bucketTokens), func(t deviceupdate.AdminToken) bool { return strings.EqualFold(t.Admin, name) }); err != nil {
			return err
		}
		if out.Sessions, err = deleteWhere(tx.Bucket(bucketSessions), func(s SessionRecord) bool { return strings.EqualFold(s.Admin, name) }); err != nil {
			return err
		}
		return b.Delete(adminKey(name))
	})
	if err != nil {
		return RemovedAdmin{}, fmt.Errorf("remove admin: %w", err)
	}
	return out, nil
}

// deleteWhere deletes the records of b for which match is true and
// returns how many it deleted.
func deleteWhere[T any](b *bolt.Bucket, match func(T) bool) (int, error) {
	var keys [][]byte
	err := eachJSON(b, func(k []byte, v T) error {
		if match(v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range keys {
		if err == nil {
			err = b.Delete(k)
		}
	}
	return len(keys), err
}

// eachJSON decodes every record of b in key order.
func eachJSON[T any](b *bolt.Bucket, fn func(k []byte, v T) error) error {
	return b.ForEach(func(k, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode %x: %w", k, err)
		}
		return fn(k, v)
	})
}

// CheckAdminPassword checks an admin's name (any case) and password and
// returns the admin, as Passwords.CheckAdmin does: every failure the same
// EUNAUTHORIZED after the same bcrypt check.
func (db *DB) CheckAdminPassword(ctx context.Context, name, password string) (deviceupdate.Admin, error) {
	return db.auth.CheckAdmin(ctx, name, password, db.findAdmin)
}

// AddAdminToken stores a new token of an existing admin under the hash of
// its secret. The admin's expired tokens are deleted first; past limit live
// ones, the token is refused (ECONFLICT) with a message that says what to
// do. ENOTFOUND when the admin does not exist.
func (db *DB) AddAdminToken(t deviceupdate.AdminToken, hash SecretHash, now time.Time, limit int) (expired int, err error) {
	err = db.write(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketAdmins).Get(adminKey(t.Admin)) == nil {
			return NoAdmin(t.Admin)
		}
		b := tx.Bucket(bucketTokens)
		var mine []Keyed[deviceupdate.AdminToken]
		err := eachJSON(b, func(k []byte, x deviceupdate.AdminToken) error {
			if strings.EqualFold(x.Admin, t.Admin) {
				mine = append(mine, Keyed[deviceupdate.AdminToken]{bytes.Clone(k), x})
			}
			return nil
		})
		if err != nil {
			return err
		}
		old, err := AdmitToken(mine, t, now, limit)
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if expired = len(old); b.Get(hash[:]) != nil {
			return ErrTokenSecretTaken
		}
		return putJSON(b, hash[:], t)
	})
	if err != nil {
		return 0, fmt.Errorf("add admin token: %w", err)
	}
	return expired, nil
}

// AdminTokens returns the tokens of the named admin, expired ones too,
// oldest first. ENOTFOUND when the admin does not exist.
func (db *DB) AdminTokens(name string) ([]deviceupdate.AdminToken, error) {
	out := []deviceupdate.AdminToken{}
	err := db.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketAdmins).Get(adminKey(name)) == nil {
			return NoAdmin(name)
		}
		return eachJSON(tx.Bucket(bucketTokens), func(_ []byte, t deviceupdate.AdminToken) error {
			if strings.EqualFold(t.Admin, name) {
				out = append(out, t)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list admin tokens: %w", err)
	}
	SortTokens(out)
	return out, nil
}

// RevokeAdminToken deletes one of the named admin's tokens by its ID and
// returns it; ENOTFOUND when the admin has no token of that ID.
func (db *DB) RevokeAdminToken(name, id string) (deviceupdate.AdminToken, error) {
	var out deviceupdate.AdminToken
	err := db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		var key []byte
		err := eachJSON(b, func(k []byte, t deviceupdate.AdminToken) error {
			if key == nil && t.ID == id && strings.EqualFold(t.Admin, name) {
				key, out = bytes.Clone(k), t
			}
			return nil
		})
		switch {
		case err != nil:
			return err
		case key == nil:
			return NoToken(name, id)
		}
		return b.Delete(key)
	})
	if err != nil {
		return deviceupdate.AdminToken{}, fmt.Errorf("revoke admin token: %w", err)
	}
	return out, nil
}

// TokenAdmin returns the admin whose live token has the secret of hash,
// with their current role. Every refusal is the same EUNAUTHORIZED.
func (db *DB) TokenAdmin(hash SecretHash, now time.Time) (deviceupdate.Admin, deviceupdate.AdminToken, error) {
	var t deviceupdate.AdminToken
	var rec AdminRecord
	err := db.view(func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketTokens), hash[:], &t)
		if err != nil || !found || t.Expired(now) {
			return ErrorOr(err, ErrBadToken)
		}
		found, err = getJSON(tx.Bucket(bucketAdmins), adminKey(t.Admin), &rec)
		if err != nil || !found {
			return ErrorOr(err, ErrBadToken)
		}
		return nil
	})
	if err != nil {
		return deviceupdate.Admin{}, deviceupdate.AdminToken{}, err
	}
	return rec.Admin, t, nil
}

// AddSession stores a session of an existing admin, with their role now.
// Expired sessions, of every admin, are deleted first; when the admin has
// max live sessions, the oldest end, so that a script signing in in a
// loop cannot grow the store. It returns how many sessions it ended.
// ENOTFOUND when the admin no longer exists.
func (db *DB) AddSession(s NewSession, now time.Time, limit int) (ended int, err error) {
	err = db.write(func(tx *bolt.Tx) error {
		var admin AdminRecord
		found, err := getJSON(tx.Bucket(bucketAdmins), adminKey(s.Admin.Name), &admin)
		switch {
		case err != nil:
			return err
		case !found:
			return NoAdmin(s.Admin.Name)
		}
		b := tx.Bucket(bucketSessions)
		var all []Keyed[SessionRecord]
		err = eachJSON(b, func(k []byte, r SessionRecord) error {
			all = append(all, Keyed[SessionRecord]{bytes.Clone(k), r})
			return nil
		})
		if err != nil {
			return err
		}
		old := EndSessions(all, s.Admin.Name, now, limit)
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		ended = len(old)
		return putJSON(b, s.Hash[:], NewSessionRecord(admin.Admin, s))
	})
	if err != nil {
		return 0, fmt.Errorf("add session: %w", err)
	}
	return ended, nil
}

// Session returns the live session of hash. A session expired, or whose
// admin was removed or changed role, is deleted and refused with
// EUNAUTHORIZED. A live one is marked seen at now when it was last marked
// touchEvery ago or more: a write per request would be a disk sync per
// click, and idle expiry does not need finer.
func (db *DB) Session(hash SecretHash, now time.Time, touchEvery time.Duration) (deviceupdate.Session, error) {
	var s deviceupdate.Session
	var rec SessionRecord
	live := false
	err := db.view(func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketSessions), hash[:], &rec)
		if err != nil || !found {
			return ErrorOr(err, ErrNoSession)
		}
		var admin AdminRecord
		if found, err = getJSON(tx.Bucket(bucketAdmins), adminKey(rec.Admin), &admin); err != nil {
			return err
		}
		s, live = rec.Session(admin.Admin), rec.Live(admin.Admin, found, now)
		return nil
	})
	switch {
	case err != nil:
		return deviceupdate.Session{}, err
	case !live:
		_, err := db.EndSession(hash)
		return deviceupdate.Session{}, ErrorOr(err, ErrNoSession)
	case now.Sub(rec.SeenAt) < touchEvery:
		return s, nil
	}
	err = db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		var cur SessionRecord
		found, err := getJSON(b, hash[:], &cur)
		if err != nil || !found { // signed out meanwhile
			return ErrorOr(err, ErrNoSession)
		}
		cur.SeenAt = now
		return putJSON(b, hash[:], cur)
	})
	if err != nil {
		return deviceupdate.Session{}, err
	}
	s.SeenAt = now
	return s, nil
}

// EndSession deletes the session of hash and returns the name of its
// admin; found is false when there was none.
func (db *DB) EndSession(hash SecretHash) (admin string, err error) {
	err = db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		var rec SessionRecord
		found, err := getJSON(b, hash[:], &rec)
		if err != nil || !found {
			return err
		}
		admin = rec.Admin
		return b.Delete(hash[:])
	})
	if err != nil {
		return "", fmt.Errorf("end session: %w", err)
	}
	return admin, nil
}
