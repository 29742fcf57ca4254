package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"

	"github.com/deviceupdate/deviceupdate"
)

// bucketUsers holds the users of the external endpoints:
// lower(name) → userRecord.
var bucketUsers = []byte("users")

// Passwords are stored as bcrypt hashes of a prehash, base64(SHA-256(password)):
// bcrypt reads at most 72 bytes, and a password may have 256 characters,
// so the prehash makes every byte count; base64 keeps NUL bytes out of
// bcrypt's input. hashScheme names this in each record, so that another
// scheme can be added later without guessing.
const hashScheme = "bcrypt-sha256"

// bcryptCost is the work factor of new hashes: bcrypt's default, about
// 50-100 ms a check on a server core. Only tests lower it (export_test.go).
var bcryptCost = bcrypt.DefaultCost

// Verified credentials are remembered this long, so that a boot storm of
// external phones costs one bcrypt check per credential, not per poll.
const (
	authCacheTTL = 5 * time.Minute
	authCacheMax = 10000 // entries; past it the cache is swept, then emptied
)

// errBadCredentials is every authentication failure: the same answer for
// an unknown user and a wrong password.
var errBadCredentials = deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "wrong user name or password")

// userRecord is a user as stored: the user and its password hash. It is
// never sent anywhere; the store hands out the User alone.
type userRecord struct {
	deviceupdate.User
	Scheme string `json:"scheme"`
	Hash   string `json:"passwordHash"`
}

func userKey(name string) []byte { return []byte(strings.ToLower(name)) }

// Users returns every user, ordered by name, without password hashes.
func (db *DB) Users() ([]deviceupdate.User, error) {
	recs, err := listJSON[userRecord](db, bucketUsers)
	out := make([]deviceupdate.User, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.User)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, err
}

// PasswordHash is a user's password as the store keeps it (bcrypt of its
// SHA-256). HashPassword makes one: it costs about 60 ms, so it is made
// before the change that stores it, never while holding the store's write
// lock, which the inventory's writes wait for.
type PasswordHash string

// HashPassword hashes password for AddUser.
func HashPassword(password string) (PasswordHash, error) {
	hash, err := bcrypt.GenerateFromPassword(prehash(password), bcryptCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return PasswordHash(hash), nil
}

// CheckUserFree returns ECONFLICT when a user of that name, in any case,
// exists: a check before the costly hash; AddUser checks again.
func (db *DB) CheckUserFree(name string) error {
	_, found, err := db.findUser(name)
	if err == nil && found {
		err = userTaken(name)
	}
	return err
}

func userTaken(name string) error {
	return deviceupdate.Errorf(deviceupdate.ECONFLICT, "a user named %q exists; remove it first or choose another name", name)
}

// AddUser stores a user whose name and password the caller validated,
// with its password hashed by HashPassword. A name already taken (in any case) is an
// ECONFLICT, checked in the same transaction as the write. Credentials
// remembered by Authenticate are forgotten.
func (db *DB) AddUser(u deviceupdate.User, hash PasswordHash) error {
	rec := userRecord{User: u, Scheme: hashScheme, Hash: string(hash)}
	err := db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b.Get(userKey(u.Name)) != nil {
			return userTaken(u.Name)
		}
		return putJSON(b, userKey(u.Name), rec)
	})
	db.afterCommit(func(root *DB) { root.auth.invalidate() })
	if err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	return nil
}

// RemoveUser deletes a user by name, in any case, and returns it;
// ENOTFOUND when there is none. Its credentials stop working before
// RemoveUser returns: remembered ones are forgotten.
func (db *DB) RemoveUser(name string) (deviceupdate.User, error) {
	var rec userRecord
	err := db.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		found, err := getJSON(b, userKey(name), &rec)
		if err != nil {
			return err
		}
		if !found {
			return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no user named %q; `deviceupdate user list` shows them", name)
		}
		return b.Delete(userKey(name))
	})
	db.afterCommit(func(root *DB) { root.auth.invalidate() })
	if err != nil {
		return deviceupdate.User{}, fmt.Errorf("remove user: %w", err)
	}
	return rec.User, nil
}

// findUser reads a user's record; found is false when there is none.
func (db *DB) findUser(name string) (rec userRecord, found bool, err error) {
	return findJSON[userRecord](db, bucketUsers, userKey(name), "find user")
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
// the user. Every failure is the same EUNAUTHORIZED, and an unknown user
// costs the same bcrypt check as a wrong password, so neither the answer
// nor its timing tells which it was. A store failure is an internal error.
//
// Successes are remembered for authCacheTTL under an HMAC of the name and
// the password with a key drawn at random for this process, so the cache
// holds no password and nothing that can be checked against one outside
// it; failures are never remembered. Concurrent checks of the same
// credentials share one bcrypt computation, and at most GOMAXPROCS
// computations run at once.
func (db *DB) Authenticate(ctx context.Context, name, password string) (deviceupdate.User, error) {
	a := &db.auth
	a.init()
	k := a.credKey(name, password)
	for {
		gen := a.gen.Load()
		f, leader, u, ok := a.join(k, gen)
		if ok {
			return u, nil
		}
		if leader {
			f.user, f.err = db.verify(ctx, name, password)
			a.finish(k, f)
			return f.user, f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return deviceupdate.User{}, fmt.Errorf("authenticate: %w", ctx.Err())
		}
		// The leader's request may have been cancelled while this one was
		// not: then check again rather than fail for someone else.
		if f.err != nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
			continue
		}
		return f.user, f.err
	}
}

// Remembered returns the user whose name and password Authenticate
// verified within the last authCacheTTL, with no user added or removed
// since: one HMAC, no bcrypt.
func (db *DB) Remembered(name, password string) (deviceupdate.User, bool) {
	a := &db.auth
	a.init()
	k := a.credKey(name, password)
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, found := a.entries[k]; found && e.gen == a.gen.Load() && a.now().Before(e.expires) {
		return e.user, true
	}
	return deviceupdate.User{}, false
}

// verify does the work of Authenticate: read the record and compare.
func (db *DB) verify(ctx context.Context, name, password string) (deviceupdate.User, error) {
	var rec userRecord
	found := false
	if deviceupdate.ValidateUserName(name) == nil {
		var err error
		if rec, found, err = db.findUser(name); err != nil {
			return deviceupdate.User{}, fmt.Errorf("authenticate: %w", err)
		}
	}
	if err := db.checkPassword(ctx, found, rec.Scheme, rec.Hash, password); err == errBadCredentials {
		return deviceupdate.User{}, err
	} else if err != nil {
		return deviceupdate.User{}, fmt.Errorf("authenticate %q: %w", rec.Name, err)
	}
	return rec.User, nil
}

// checkPassword compares password with a stored hash of scheme; a record
// not found, or of another scheme, costs the same check against a dummy
// hash and fails as a wrong password does (errBadCredentials). At most
// GOMAXPROCS checks run at once; ctx bounds the wait for one.
func (db *DB) checkPassword(ctx context.Context, found bool, scheme, stored, password string) error {
	db.auth.init()
	hash := []byte(stored)
	if !found || scheme != hashScheme {
		hash = db.auth.dummyHash()
		found = false
	}
	if err := db.auth.acquire(ctx); err != nil {
		return err
	}
	cmp := bcrypt.CompareHashAndPassword(hash, prehash(password))
	db.auth.release()
	switch {
	case cmp != nil && !errors.Is(cmp, bcrypt.ErrMismatchedHashAndPassword):
		return fmt.Errorf("stored hash: %w", cmp)
	case cmp != nil || !found:
		return errBadCredentials
	}
	return nil
}

func prehash(password string) []byte {
	sum := sha256.Sum256([]byte(password))
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(out, sum[:])
	return out
}

// authCache remembers verified credentials and coordinates checks in
// flight. Its zero value is ready; init draws the key.
type authCache struct {
	once sync.Once
	key  []byte        // HMAC key, random per process
	sem  chan struct{} // bounds the bcrypt checks running at once
	gen  atomic.Uint64 // advanced by every change of users
	now  func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]authEntry
	flights map[[sha256.Size]byte]*authFlight

	dummyOnce sync.Once
	dummy     []byte
}

// authEntry is a remembered success, valid while the users have not
// changed since it was verified and until it expires.
type authEntry struct {
	user    deviceupdate.User
	gen     uint64
	expires time.Time
}

// authFlight is one bcrypt check that concurrent callers with the same
// credentials wait for; user and err are set before done is closed.
type authFlight struct {
	gen  uint64
	done chan struct{}
	user deviceupdate.User
	err  error
}

func (a *authCache) init() {
	a.once.Do(func() {
		a.key = make([]byte, 32)
		_, _ = rand.Read(a.key) // never fails; see crypto/rand.Read
		a.sem = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
		if a.now == nil {
			a.now = time.Now
		}
		a.entries = map[[sha256.Size]byte]authEntry{}
		a.flights = map[[sha256.Size]byte]*authFlight{}
	})
}

// credKey is the HMAC of the lower-cased name and the password, each
// length-prefixed so that no two pairs share an input.
func (a *authCache) credKey(name, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, a.key)
	var n [binary.MaxVarintLen64]byte
	name = strings.ToLower(name)
	m.Write(n[:binary.PutUvarint(n[:], uint64(len(name)))])
	m.Write([]byte(name))
	m.Write(n[:binary.PutUvarint(n[:], uint64(len(password)))])
	m.Write([]byte(password))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

// join returns the remembered user for k when there is a valid entry
// (ok); else the flight checking k at this generation to wait for, or a
// new one that the caller leads.
func (a *authCache) join(k [sha256.Size]byte, gen uint64) (f *authFlight, leader bool, u deviceupdate.User, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, found := a.entries[k]; found {
		if e.gen == gen && a.now().Before(e.expires) {
			return nil, false, e.user, true
		}
		delete(a.entries, k)
	}
	if f := a.flights[k]; f != nil && f.gen == gen {
		return f, false, deviceupdate.User{}, false
	}
	f = &authFlight{gen: gen, done: make(chan struct{})}
	a.flights[k] = f
	return f, true, deviceupdate.User{}, false
}

// finish ends a flight and remembers its success, unless the users
// changed while it ran: a check that read a removed user is not kept.
func (a *authCache) finish(k [sha256.Size]byte, f *authFlight) {
	a.mu.Lock()
	if a.flights[k] == f {
		delete(a.flights, k)
	}
	if f.err == nil && a.gen.Load() == f.gen {
		if len(a.entries) >= authCacheMax {
			a.sweepLocked()
		}
		a.entries[k] = authEntry{user: f.user, gen: f.gen, expires: a.now().Add(authCacheTTL)}
	}
	a.mu.Unlock()
	close(f.done)
}

// sweepLocked drops expired entries, and all of them when that is not
// enough; a.mu is held.
func (a *authCache) sweepLocked() {
	now := a.now()
	for k, e := range a.entries {
		if !now.Before(e.expires) {
			delete(a.entries, k)
		}
	}
	if len(a.entries) >= authCacheMax {
		clear(a.entries)
	}
}

// invalidate forgets every remembered credential; entries and flights of
// the old generation are never trusted again.
func (a *authCache) invalidate() {
	a.init()
	a.gen.Add(1)
	a.mu.Lock()
	clear(a.entries)
	a.mu.Unlock()
}

func (a *authCache) acquire(ctx context.Context) error {
	select {
	case a.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &deviceupdate.Error{Code: deviceupdate.EUNAVAILABLE, Message: "busy checking credentials; retry later", Err: ctx.Err()}
	}
}

func (a *authCache) release() { <-a.sem }

// dummyHash is a hash of a random password at the current cost, compared
// against when the user is unknown so that the check takes as long.
func (a *authCache) dummyHash() []byte {
	a.dummyOnce.Do(func() {
		pw := make([]byte, 32)
		_, _ = rand.Read(pw)
		h, err := bcrypt.GenerateFromPassword(prehash(string(pw)), bcryptCost)
		if err != nil {
			panic(fmt.Sprintf("bcrypt of a 44-byte input failed: %v", err)) // only a cost out of range fails
		}
		a.dummy = h
	})
	return a.dummy
}
