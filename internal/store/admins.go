package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
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
	bucketAdmins   = []byte("admins")      // lower(name) → adminRecord
	bucketTokens   = []byte("admintokens") // SHA-256(secret) → AdminToken
	bucketSessions = []byte("sessions")    // SHA-256(secret) → sessionRecord
)

// adminRecord is an admin as stored, with their password's hash ("" for
// an admin who signs in with tokens only). Only the Admin leaves the store.
type adminRecord struct {
	deviceupdate.Admin
	Scheme string `json:"scheme,omitempty"`
	Hash   string `json:"passwordHash,omitempty"`
}

// sessionRecord is a console session as stored. Role is the admin's role
// when they signed in: a session outlives no change of it.
type sessionRecord struct {
	Admin     string            `json:"admin"`
	Role      deviceupdate.Role `json:"role"`
	CreatedAt time.Time         `json:"createdAt"`
	SeenAt    time.Time         `json:"seenAt"`
	CSRF      string            `json:"csrf"`
}

// SecretHash is the SHA-256 of a token's or a session's secret, the key
// of its record.
type SecretHash [32]byte

func adminKey(name string) []byte { return []byte(strings.ToLower(name)) }

func noAdmin(name string) error {
	return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no admin named %q; `deviceupdate admin list` shows them", name)
}

// Admins returns every admin, ordered by name, without password hashes.
func (db *DB) Admins() ([]deviceupdate.Admin, error) {
	recs, err := listJSON[adminRecord](db, bucketAdmins)
	out := make([]deviceupdate.Admin, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Admin)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, err
}

// FindAdmin returns an admin by name, in any case; ENOTFOUND when there
// is none.
func (db *DB) FindAdmin(name string) (deviceupdate.Admin, error) {
	rec, found, err := db.findAdmin(name)
	switch {
	case err != nil:
		return deviceupdate.Admin{}, err
	case !found:
		return deviceupdate.Admin{}, noAdmin(name)
	}
	return rec.Admin, nil
}

func (db *DB) findAdmin(name string) (rec adminRecord, found bool, err error) {
	return findJSON[adminRecord](db, bucketAdmins, adminKey(name), "find admin")
}

func adminTaken(name string) error {
	if strings.EqualFold(name, deviceupdate.BootstrapAdmin) {
		return deviceupdate.Errorf(deviceupdate.ECONFLICT, "%q is the name of the admin.token's holder; choose another name", name)
	}
	return deviceupdate.Errorf(deviceupdate.ECONFLICT, "an admin named %q exists; remove them first or choose another name", name)
}

// CheckAdminFree returns ECONFLICT when an admin of that name, in any
// case, exists, or the name is the bootstrap admin's: a check before the
// costly hash; AddAdmin checks again.
func (db *DB) CheckAdminFree(name string) error {
	if strings.EqualFold(name, deviceupdate.BootstrapAdmin) {
		return adminTaken(name)
	}
	_, found, err := db.findAdmin(name)
	if err == nil && found {
		err = adminTaken(name)
	}
	return err
}

// AddAdmin stores an admin whose name, role and password the caller
// validated, with the password hashed by HashPassword ("" for none). A
// name taken in any case, or the bootstrap admin's, is an ECONFLICT,
// checked in the same transaction as the write.
func (db *DB) AddAdmin(a deviceupdate.Admin, hash PasswordHash) error {
	rec := adminRecord{Admin: a}
	rec.HasPassword = hash != ""
	if rec.HasPassword {
		rec.Scheme, rec.Hash = hashScheme, string(hash)
	}
	err := db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAdmins)
		if b.Get(adminKey(a.Name)) != nil || strings.EqualFold(a.Name, deviceupdate.BootstrapAdmin) {
			return adminTaken(a.Name)
		}
		return putJSON(b, adminKey(a.Name), rec)
	})
	if err != nil {
		return fmt.Errorf("add admin: %w", err)
	}
	return nil
}

// RemovedAdmin is what RemoveAdmin deleted: the admin, and how many of
// their tokens and console sessions went with them.
type RemovedAdmin struct {
	deviceupdate.Admin
	Tokens   int `json:"tokens"`
	Sessions int `json:"sessions"`
}

// RemoveAdmin deletes an admin by name, in any case, with their tokens
// and sessions, in one transaction: their credentials stop working when
// it commits. ENOTFOUND when there is none.
func (db *DB) RemoveAdmin(name string) (RemovedAdmin, error) {
	var out RemovedAdmin
	err := db.write(func(tx *bolt.Tx) error {
		var rec adminRecord
		b := tx.Bucket(bucketAdmins)
		found, err := getJSON(b, adminKey(name), &rec)
		switch {
		case err != nil:
			return err
		case !found:
			return noAdmin(name)
		}
		out.Admin = rec.Admin
		if out.Tokens, err = deleteWhere(tx.Bucket(bucketTokens), func(t deviceupdate.AdminToken) bool { return strings.EqualFold(t.Admin, name) }); err != nil {
			return err
		}
		if out.Sessions, err = deleteWhere(tx.Bucket(bucketSessions), func(s sessionRecord) bool { return strings.EqualFold(s.Admin, name) }); err != nil {
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
// returns the admin. Every failure, an unknown name, an admin without a
// password or a wrong one, is the same EUNAUTHORIZED after the same
// bcrypt check, so neither the answer nor its timing tells which. Nothing
// is remembered: the console signs in rarely, unlike phones.
func (db *DB) CheckAdminPassword(ctx context.Context, name, password string) (deviceupdate.Admin, error) {
	var rec adminRecord
	found := false
	if deviceupdate.ValidateUserName(name) == nil {
		var err error
		if rec, found, err = db.findAdmin(name); err != nil {
			return deviceupdate.Admin{}, fmt.Errorf("sign in: %w", err)
		}
	}
	if err := db.checkPassword(ctx, found && rec.HasPassword, rec.Scheme, rec.Hash, password); err == errBadCredentials {
		return deviceupdate.Admin{}, err
	} else if err != nil {
		return deviceupdate.Admin{}, fmt.Errorf("sign in %q: %w", rec.Name, err)
	}
	return rec.Admin, nil
}

// AddAdminToken stores a new token of an existing admin under the hash of
// its secret. The admin's expired tokens are deleted first; past limit live
// ones, the token is refused (ECONFLICT) with a message that says what to
// do. ENOTFOUND when the admin does not exist.
func (db *DB) AddAdminToken(t deviceupdate.AdminToken, hash SecretHash, now time.Time, limit int) (expired int, err error) {
	err = db.write(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketAdmins).Get(adminKey(t.Admin)) == nil {
			return noAdmin(t.Admin)
		}
		b := tx.Bucket(bucketTokens)
		mine := func(x deviceupdate.AdminToken) bool { return strings.EqualFold(x.Admin, t.Admin) }
		if expired, err = deleteWhere(b, func(x deviceupdate.AdminToken) bool { return mine(x) && x.Expired(now) }); err != nil {
			return err
		}
		live := 0
		err := eachJSON(b, func(_ []byte, x deviceupdate.AdminToken) error {
			if mine(x) {
				live++
				if x.ID == t.ID {
					return fmt.Errorf("token ID %s is taken", t.ID) // 48 random bits: never, in practice
				}
			}
			return nil
		})
		switch {
		case err != nil:
			return err
		case live >= limit:
			return deviceupdate.Errorf(deviceupdate.ECONFLICT, "%s has %d tokens, the most an admin may have; revoke one first (`deviceupdate admin token %s --list`, then --revoke ID)",
				t.Admin, live, t.Admin)
		case b.Get(hash[:]) != nil:
			return fmt.Errorf("a token of that secret exists")
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
			return noAdmin(name)
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
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
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
			return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "%s has no token %q; `deviceupdate admin token %s --list` shows them", name, id, name)
		}
		return b.Delete(key)
	})
	if err != nil {
		return deviceupdate.AdminToken{}, fmt.Errorf("revoke admin token: %w", err)
	}
	return out, nil
}

// errBadToken is every refused token: unknown, revoked, expired, or its
// admin removed.
var errBadToken = deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "missing or invalid admin token")

// TokenAdmin returns the admin whose live token has the secret of hash,
// with their current role. Every refusal is the same EUNAUTHORIZED.
func (db *DB) TokenAdmin(hash SecretHash, now time.Time) (deviceupdate.Admin, deviceupdate.AdminToken, error) {
	var t deviceupdate.AdminToken
	var rec adminRecord
	err := db.view(func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketTokens), hash[:], &t)
		if err != nil || !found || t.Expired(now) {
			return errorOr(err, errBadToken)
		}
		found, err = getJSON(tx.Bucket(bucketAdmins), adminKey(t.Admin), &rec)
		if err != nil || !found {
			return errorOr(err, errBadToken)
		}
		return nil
	})
	if err != nil {
		return deviceupdate.Admin{}, deviceupdate.AdminToken{}, err
	}
	return rec.Admin, t, nil
}

// errorOr returns err, or other when err is nil.
func errorOr(err, other error) error {
	if err != nil {
		return err
	}
	return other
}

// NewSession is a session to store: the hashes of its secret, the admin
// who signed in, and its CSRF token.
type NewSession struct {
	Hash SecretHash
	deviceupdate.Session
}

// AddSession stores a session of an existing admin, with their role now.
// Expired sessions, of every admin, are deleted first; when the admin has
// max live sessions, the oldest end, so that a script signing in in a
// loop cannot grow the store. It returns how many sessions it ended.
// ENOTFOUND when the admin no longer exists.
func (db *DB) AddSession(s NewSession, now time.Time, limit int) (ended int, err error) {
	err = db.write(func(tx *bolt.Tx) error {
		var admin adminRecord
		found, err := getJSON(tx.Bucket(bucketAdmins), adminKey(s.Admin.Name), &admin)
		switch {
		case err != nil:
			return err
		case !found:
			return noAdmin(s.Admin.Name)
		}
		b := tx.Bucket(bucketSessions)
		if ended, err = deleteWhere(b, func(r sessionRecord) bool { return r.session(admin.Admin).Expired(now) }); err != nil {
			return err
		}
		type live struct {
			key     []byte
			created time.Time
		}
		var mine []live
		err = eachJSON(b, func(k []byte, r sessionRecord) error {
			if strings.EqualFold(r.Admin, s.Admin.Name) {
				mine = append(mine, live{bytes.Clone(k), r.CreatedAt})
			}
			return nil
		})
		if err != nil {
			return err
		}
		sort.Slice(mine, func(i, j int) bool { return mine[i].created.Before(mine[j].created) })
		for _, l := range mine[:max(0, len(mine)-limit+1)] {
			if err := b.Delete(l.key); err != nil {
				return err
			}
			ended++
		}
		return putJSON(b, s.Hash[:], sessionRecord{Admin: admin.Name, Role: admin.Role, CreatedAt: s.CreatedAt, SeenAt: s.SeenAt, CSRF: s.CSRF})
	})
	if err != nil {
		return 0, fmt.Errorf("add session: %w", err)
	}
	return ended, nil
}

func (r sessionRecord) session(a deviceupdate.Admin) deviceupdate.Session {
	return deviceupdate.Session{Admin: a, CreatedAt: r.CreatedAt, SeenAt: r.SeenAt, CSRF: r.CSRF}
}

// errNoSession is every refused session: unknown, ended, expired, or its
// admin removed or given another role since.
var errNoSession = deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "not signed in, or the session ended; sign in again")

// Session returns the live session of hash. A session expired, or whose
// admin was removed or changed role, is deleted and refused with
// EUNAUTHORIZED. A live one is marked seen at now when it was last marked
// touchEvery ago or more: a write per request would be a disk sync per
// click, and idle expiry does not need finer.
func (db *DB) Session(hash SecretHash, now time.Time, touchEvery time.Duration) (deviceupdate.Session, error) {
	var s deviceupdate.Session
	var rec sessionRecord
	live := false
	err := db.view(func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketSessions), hash[:], &rec)
		if err != nil || !found {
			return errorOr(err, errNoSession)
		}
		var admin adminRecord
		if found, err = getJSON(tx.Bucket(bucketAdmins), adminKey(rec.Admin), &admin); err != nil {
			return err
		}
		s = rec.session(admin.Admin)
		live = found && admin.Role == rec.Role && !s.Expired(now)
		return nil
	})
	switch {
	case err != nil:
		return deviceupdate.Session{}, err
	case !live:
		_, err := db.EndSession(hash)
		return deviceupdate.Session{}, errorOr(err, errNoSession)
	case now.Sub(rec.SeenAt) < touchEvery:
		return s, nil
	}
	err = db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		var cur sessionRecord
		found, err := getJSON(b, hash[:], &cur)
		if err != nil || !found { // signed out meanwhile
			return errorOr(err, errNoSession)
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
		var rec sessionRecord
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
