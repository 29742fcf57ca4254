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

	"golang.org/x/crypto/bcrypt"

	"github.com/deviceupdate/deviceupdate"
)

// What every backend keeps of users and admins, and the checks and
// answers that go with it: the records (stored as their JSON by both
// stores, so that `deviceupdate migrate` copies them as they are), the
// password checks with the cache of users' verified credentials, the
// rules of tokens and sessions, and the errors with their messages. A
// backend reads and writes; what it decides is decided here, once.

// Passwords are stored as bcrypt hashes of a prehash, base64(SHA-256(password)):
// bcrypt reads at most 72 bytes, and a password may have 256 characters,
// so the prehash makes every byte count; base64 keeps NUL bytes out of
// bcrypt's input. hashScheme names this in each record, so that another
// scheme can be added later without guessing.
const hashScheme = "bcrypt-sha256"

// bcryptCost is the work factor of new hashes: bcrypt's default, about
// 50-100 ms a check on a server core. Only tests lower it (export_test.go,
// LowerBcryptCostForTests).
var bcryptCost = bcrypt.DefaultCost

// LowerBcryptCostForTests makes new hashes use bcrypt's lowest cost, so
// that the tests of another backend running the behaviour table
// (storetest) stay fast under -race. Call it in TestMain, before any
// hash; production code never calls it.
func LowerBcryptCostForTests() { bcryptCost = bcrypt.MinCost }

// Verified credentials are remembered this long, so that a boot storm of
// external phones costs one bcrypt check per credential, not per poll.
const (
	authCacheTTL = 5 * time.Minute
	authCacheMax = 10000 // entries; past it the cache is swept, then emptied
)

// UserRecord is a user as stored: the user and its password hash. It is
// never sent anywhere; the store hands out the User alone.
type UserRecord struct {
	deviceupdate.User
	Scheme string `json:"scheme"`
	Hash   string `json:"passwordHash"`
}

// NewUserRecord is the record of u with its password's hash.
func NewUserRecord(u deviceupdate.User, hash PasswordHash) UserRecord {
	return UserRecord{User: u, Scheme: hashScheme, Hash: string(hash)}
}

// UsersOf returns the users of recs, without their hashes, ordered by
// name (any case), as Users lists them.
func UsersOf(recs []UserRecord) []deviceupdate.User {
	out := make([]deviceupdate.User, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.User)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out
}

// AdminRecord is an admin as stored, with their password's hash ("" for
// an admin who signs in with tokens only). Only the Admin leaves the store.
type AdminRecord struct {
	deviceupdate.Admin
	Scheme string `json:"scheme,omitempty"`
	Hash   string `json:"passwordHash,omitempty"`
}

// NewAdminRecord is the record of a with their password's hash ("" for
// none), HasPassword set to match.
func NewAdminRecord(a deviceupdate.Admin, hash PasswordHash) AdminRecord {
	rec := AdminRecord{Admin: a}
	rec.HasPassword = hash != ""
	if rec.HasPassword {
		rec.Scheme, rec.Hash = hashScheme, string(hash)
	}
	return rec
}

// AdminsOf returns the admins of recs, without their hashes, ordered by
// name (any case), as Admins lists them.
func AdminsOf(recs []AdminRecord) []deviceupdate.Admin {
	out := make([]deviceupdate.Admin, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Admin)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out
}

// FoundAdmin is FindAdmin's answer once the record of name was looked up:
// the admin, ENOTFOUND when there was none, or the store's error.
func FoundAdmin(name string, rec AdminRecord, found bool, err error) (deviceupdate.Admin, error) {
	switch {
	case err != nil:
		return deviceupdate.Admin{}, err
	case !found:
		return deviceupdate.Admin{}, NoAdmin(name)
	}
	return rec.Admin, nil
}

// SessionRecord is a console session as stored. Role is the admin's role
// when they signed in: a session outlives no change of it.
type SessionRecord struct {
	Admin     string            `json:"admin"`
	Role      deviceupdate.Role `json:"role"`
	CreatedAt time.Time         `json:"createdAt"`
	SeenAt    time.Time         `json:"seenAt"`
	CSRF      string            `json:"csrf"`
}

// NewSessionRecord is the record of s, started by admin as stored now.
func NewSessionRecord(admin deviceupdate.Admin, s NewSession) SessionRecord {
	return SessionRecord{Admin: admin.Name, Role: admin.Role, CreatedAt: s.CreatedAt, SeenAt: s.SeenAt, CSRF: s.CSRF}
}

// Session is the session r records, of admin as stored now.
func (r SessionRecord) Session(admin deviceupdate.Admin) deviceupdate.Session {
	return deviceupdate.Session{Admin: admin, CreatedAt: r.CreatedAt, SeenAt: r.SeenAt, CSRF: r.CSRF}
}

// Live reports whether the session r records still works at now, its
// admin as stored now (found false when removed): not expired, and the
// admin's role unchanged since they signed in.
func (r SessionRecord) Live(admin deviceupdate.Admin, found bool, now time.Time) bool {
	return found && admin.Role == r.Role && !r.Session(admin).Expired(now)
}

// SecretHash is the SHA-256 of a token's or a session's secret, the key
// of its record.
type SecretHash [32]byte

// NewSession is a session to store: the hashes of its secret, the admin
// who signed in, and its CSRF token.
type NewSession struct {
	Hash SecretHash
	deviceupdate.Session
}

// RemovedAdmin is what RemoveAdmin deleted: the admin, and how many of
// their tokens and console sessions went with them.
type RemovedAdmin struct {
	deviceupdate.Admin
	Tokens   int `json:"tokens"`
	Sessions int `json:"sessions"`
}

// Keyed is a stored record with its key, for the decisions below that
// pick records to delete.
type Keyed[T any] struct {
	Key   []byte
	Value T
}

// AdmitToken decides whether t may be stored beside mine, its admin's
// stored tokens: it returns the keys of the expired ones, to delete
// first, or, past limit live ones, the ECONFLICT that says what to do.
func AdmitToken(mine []Keyed[deviceupdate.AdminToken], t deviceupdate.AdminToken, now time.Time, limit int) (expired [][]byte, err error) {
	live := 0
	for _, x := range mine {
		switch {
		case x.Value.Expired(now):
			expired = append(expired, x.Key)
		case x.Value.ID == t.ID:
			return nil, fmt.Errorf("token ID %s is taken", t.ID) // 48 random bits: never, in practice
		default:
			live++
		}
	}
	if live >= limit {
		return nil, deviceupdate.Errorf(deviceupdate.ECONFLICT, "%s has %d tokens, the most an admin may have; revoke one first (`deviceupdate admin token %s --list`, then --revoke ID)",
			t.Admin, live, t.Admin)
	}
	return expired, nil
}

// ErrTokenSecretTaken is a new token whose secret's hash is another's: 256
// random bits, so never in practice.
var ErrTokenSecretTaken = errors.New("a token of that secret exists")

// SortTokens orders tokens oldest first, as AdminTokens returns them.
func SortTokens(tokens []deviceupdate.AdminToken) {
	sort.SliceStable(tokens, func(i, j int) bool { return tokens[i].CreatedAt.Before(tokens[j].CreatedAt) })
}

// EndSessions decides which of all the stored sessions end before admin
// starts another at now: every expired one, of every admin, and admin's
// oldest live ones past limit-1, so that a script signing in in a loop
// cannot grow the store. It returns their keys. all is in key order, as
// bbolt lists a bucket.
func EndSessions(all []Keyed[SessionRecord], admin string, now time.Time, limit int) [][]byte {
	var ended [][]byte
	var mine []Keyed[SessionRecord]
	for _, s := range all {
		switch {
		case s.Value.Session(deviceupdate.Admin{}).Expired(now):
			ended = append(ended, s.Key)
		case strings.EqualFold(s.Value.Admin, admin):
			mine = append(mine, s)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Value.CreatedAt.Before(mine[j].Value.CreatedAt) })
	for _, s := range mine[:max(0, len(mine)-limit+1)] {
		ended = append(ended, s.Key)
	}
	return ended
}

// The refusals of users and admins, the same from every backend.
var (
	// ErrBadCredentials is every authentication failure: the same answer
	// for an unknown user and a wrong password.
	ErrBadCredentials = deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "wrong user name or password")
	// ErrBadToken is every refused token: unknown, revoked, expired, or
	// its admin removed.
	ErrBadToken = deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "missing or invalid admin token")
	// ErrNoSession is every refused session: unknown, ended, expired, or
	// its admin removed or given another role since.
	ErrNoSession = deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "not signed in, or the session ended; sign in again")
)

// UserTaken is the answer to a new user whose name is taken.
func UserTaken(name string) error {
	return deviceupdate.Errorf(deviceupdate.ECONFLICT, "a user named %q exists; remove it first or choose another name", name)
}

// NoUser is the answer to a user who does not exist.
func NoUser(name string) error {
	return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no user named %q; `deviceupdate user list` shows them", name)
}

// NoAdmin is the answer to an admin who does not exist.
func NoAdmin(name string) error {
	return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no admin named %q; `deviceupdate admin list` shows them", name)
}

// AdminTaken is the answer to a new admin whose name is an admin's, or
// the bootstrap admin's.
func AdminTaken(name string) error {
	if IsBootstrap(name) {
		return deviceupdate.Errorf(deviceupdate.ECONFLICT, "%q is the name of the admin.token's holder; choose another name", name)
	}
	return deviceupdate.Errorf(deviceupdate.ECONFLICT, "an admin named %q exists; remove them first or choose another name", name)
}

// IsBootstrap reports whether name, in any case, is the bootstrap
// admin's, which no stored admin may take.
func IsBootstrap(name string) bool { return strings.EqualFold(name, deviceupdate.BootstrapAdmin) }

// NoToken is the answer to a token an admin does not have.
func NoToken(admin, id string) error {
	return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "%s has no token %q; `deviceupdate admin token %s --list` shows them", admin, id, admin)
}

// ErrorOr returns err, or other when err is nil.
func ErrorOr(err, other error) error {
	if err != nil {
		return err
	}
	return other
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

func prehash(password string) []byte {
	sum := sha256.Sum256([]byte(password))
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(out, sum[:])
	return out
}

// Passwords checks a store's users' and admins' passwords, and remembers
// users' verified credentials and coordinates the checks in flight. Each
// store has one; its zero value is ready (init draws its key).
type Passwords struct {
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

// Authenticate checks a user name (any case) and a password against the
// user record find reads (found false when there is none) and returns the
// user. Every failure is the same EUNAUTHORIZED, and an unknown user
// costs the same bcrypt check as a wrong password, so neither the answer
// nor its timing tells which it was. A store failure is an internal error.
//
// Successes are remembered for authCacheTTL under an HMAC of the name and
// the password with a key drawn at random for this process, so the cache
// holds no password and nothing that can be checked against one outside
// it; failures are never remembered, and Forget forgets every success.
// Concurrent checks of the same credentials share one bcrypt computation,
// and at most GOMAXPROCS computations run at once.
func (a *Passwords) Authenticate(ctx context.Context, name, password string, find func(name string) (UserRecord, bool, error)) (deviceupdate.User, error) {
	a.init()
	k := a.credKey(name, password)
	for {
		gen := a.gen.Load()
		f, leader, u, ok := a.join(k, gen)
		if ok {
			return u, nil
		}
		if leader {
			f.user, f.err = a.verify(ctx, name, password, find)
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
// verified within the last authCacheTTL, with no Forget since: one HMAC,
// no bcrypt.
func (a *Passwords) Remembered(name, password string) (deviceupdate.User, bool) {
	a.init()
	k := a.credKey(name, password)
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, found := a.entries[k]; found && e.gen == a.gen.Load() && a.now().Before(e.expires) {
		return e.user, true
	}
	return deviceupdate.User{}, false
}

// Forget forgets every remembered credential; entries and checks in
// flight from before are never trusted again. A store calls it once a
// change of users has committed (and, in a pool, when another node says
// it made one).
func (a *Passwords) Forget() {
	a.init()
	a.gen.Add(1)
	a.mu.Lock()
	clear(a.entries)
	a.mu.Unlock()
}

// verify does the work of Authenticate: read the record and compare.
func (a *Passwords) verify(ctx context.Context, name, password string, find func(string) (UserRecord, bool, error)) (deviceupdate.User, error) {
	var rec UserRecord
	found := false
	if deviceupdate.ValidateUserName(name) == nil {
		var err error
		if rec, found, err = find(name); err != nil {
			return deviceupdate.User{}, fmt.Errorf("authenticate: %w", err)
		}
	}
	if err := a.check(ctx, found, rec.Scheme, rec.Hash, password); err == ErrBadCredentials {
		return deviceupdate.User{}, err
	} else if err != nil {
		return deviceupdate.User{}, fmt.Errorf("authenticate %q: %w", rec.Name, err)
	}
	return rec.User, nil
}

// CheckAdmin checks an admin's name (any case) and password against the
// admin record find reads (found false when there is none) and returns
// the admin. Every failure, an unknown name, an admin without a password
// or a wrong one, is the same EUNAUTHORIZED after the same bcrypt check,
// so neither the answer nor its timing tells which. Nothing is
// remembered: the console signs in rarely, unlike phones.
func (a *Passwords) CheckAdmin(ctx context.Context, name, password string, find func(name string) (AdminRecord, bool, error)) (deviceupdate.Admin, error) {
	var rec AdminRecord
	found := false
	if deviceupdate.ValidateUserName(name) == nil {
		var err error
		if rec, found, err = find(name); err != nil {
			return deviceupdate.Admin{}, fmt.Errorf("sign in: %w", err)
		}
	}
	if err := a.check(ctx, found && rec.HasPassword, rec.Scheme, rec.Hash, password); err == ErrBadCredentials {
		return deviceupdate.Admin{}, err
	} else if err != nil {
		return deviceupdate.Admin{}, fmt.Errorf("sign in %q: %w", rec.Name, err)
	}
	return rec.Admin, nil
}

// check compares password with a stored hash of scheme; a record not
// found, or of another scheme, costs the same check against a dummy hash
// and fails as a wrong password does (ErrBadCredentials). At most
// GOMAXPROCS checks run at once; ctx bounds the wait for one.
func (a *Passwords) check(ctx context.Context, found bool, scheme, stored, password string) error {
	a.init()
	hash := []byte(stored)
	if !found || scheme != hashScheme {
		hash = a.dummyHash()
		found = false
	}
	if err := a.acquire(ctx); err != nil {
		return err
	}
	cmp := bcrypt.CompareHashAndPassword(hash, prehash(password))
	a.release()
	switch {
	case cmp != nil && !errors.Is(cmp, bcrypt.ErrMismatchedHashAndPassword):
		return fmt.Errorf("stored hash: %w", cmp)
	case cmp != nil || !found:
		return ErrBadCredentials
	}
	return nil
}

func (a *Passwords) init() {
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
func (a *Passwords) credKey(name, password string) [sha256.Size]byte {
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
func (a *Passwords) join(k [sha256.Size]byte, gen uint64) (f *authFlight, leader bool, u deviceupdate.User, ok bool) {
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
func (a *Passwords) finish(k [sha256.Size]byte, f *authFlight) {
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
func (a *Passwords) sweepLocked() {
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

func (a *Passwords) acquire(ctx context.Context) error {
	select {
	case a.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &deviceupdate.Error{Code: deviceupdate.EUNAVAILABLE, Message: "busy checking credentials; retry later", Err: ctx.Err()}
	}
}

func (a *Passwords) release() { <-a.sem }

// dummyHash is a hash of a random password at the current cost, compared
// against when the user is unknown so that the check takes as long.
func (a *Passwords) dummyHash() []byte {
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
