// Package store keeps the service's state in one embedded bbolt file,
// <data>/deviceupdate.db: rules, packages, test devices, devices and
// configuration. Every multi-step change is one bbolt transaction, so a
// crash at any point leaves the file consistent.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// SchemaVersion is the layout of the buckets this build reads and writes.
// Open records it in a new store and refuses a store written by a newer one.
const SchemaVersion = 1

// FileName is the store's file name inside the data folder.
const FileName = "deviceupdate.db"

// DefaultLockTimeout is how long Open waits for another process to release
// the store's file lock before it gives up with ErrLocked.
const DefaultLockTimeout = 2 * time.Second

// Sentinel errors returned (wrapped) by Open; check them with errors.Is.
var (
	// ErrLocked means another process, usually a second `deviceupdate
	// serve` on the same --data folder, holds the store.
	ErrLocked = errors.New("store is locked by another process")
	// ErrNotStore means the file exists but is not a bbolt store, or is
	// damaged beyond what bbolt can open.
	ErrNotStore = errors.New("file is not a deviceupdate store")
	// ErrNewerSchema means the store was written by a newer build.
	ErrNewerSchema = errors.New("store was written by a newer deviceupdate")
	// ErrDamaged means the file is cut short or overwritten where bbolt
	// would fault or panic on opening it; it is an ErrNotStore too.
	ErrDamaged error = &subError{FileName + " is damaged", ErrNotStore}
	// ErrMissing and ErrEmpty mean there is no store file, or an empty
	// one, beside update files: the records of those files are lost, and
	// starting a new store would serve none of them.
	ErrMissing = errors.New("the store is missing")
	ErrEmpty   = errors.New("the store is empty (0 bytes)")
)

// subError is a sentinel error that is also another, more general one.
type subError struct {
	msg    string
	parent error
}

func (e *subError) Error() string { return e.msg }
func (e *subError) Unwrap() error { return e.parent }

var (
	bucketMeta    = []byte("meta")
	bucketUpdates = []byte("updates")      // lower(rule key) "@" version → StoredUpdate
	bucketRules   = []byte("rules")        // rule ID → Rule
	bucketTestDev = []byte("testdevices")  // lower(name) → TestDevice
	bucketConfig  = []byte("config")       // "global" or "site:<name>" → Config
	bucketDevices = []byte("devices")      // device ID → Device
	bucketSites   = []byte("sites")        // lower(name) → Site
	bucketDevConf = []byte("deviceconfig") // device ID → map of setting overrides
	keySchema     = []byte("schema")
	keyCreated    = []byte("created")
)

// buckets are created by Open when missing. A bucket added later is
// created in an older store as it opens, empty, so adding one needs no new
// SchemaVersion: an older build opening the store ignores it.
var buckets = [][]byte{bucketMeta, bucketUpdates, bucketRules, bucketTestDev, bucketConfig, bucketDevices, bucketSites, bucketDevConf, bucketUsers, bucketInProgress,
	bucketAdmins, bucketTokens, bucketSessions, bucketRollouts, bucketRolloutDevices}

// DB is the open store. It is safe for concurrent use.
//
// Audited hands its change a DB bound to the change's transaction (tx
// set): the same methods, reading and writing in that transaction, which
// commits or rolls back as a whole when the change is done.
type DB struct {
	bolt *bolt.DB
	path string
	gen  atomic.Uint64 // counts committed changes that can alter a poll's answer
	auth authCache     // verified credentials of users (users.go)
	tx   *bolt.Tx      // the transaction a bound DB works in, else nil
	root *DB           // the DB a bound one was made from
	cap  deviceCap     // the inventory's cap (devices.go)
	// devIndex counts and filters the inventory in memory
	// (devices_index.go).
	devIndex deviceIndex
}

// write runs fn in a write transaction, or in the one db is bound to.
func (db *DB) write(fn func(tx *bolt.Tx) error) error {
	if db.tx != nil {
		return fn(db.tx)
	}
	return db.bolt.Update(fn)
}

// view runs fn in a read transaction, or in the one db is bound to.
func (db *DB) view(fn func(tx *bolt.Tx) error) error {
	if db.tx != nil {
		return fn(db.tx)
	}
	return db.bolt.View(fn)
}

// update is write for changes that can alter a poll's answer: when it
// commits, the generation that Generation reports advances (for a bound
// DB, when Audited commits).
func (db *DB) update(fn func(tx *bolt.Tx) error) error {
	err := db.write(fn)
	if err == nil && db.tx == nil {
		db.gen.Add(1)
	}
	return err
}

// afterCommit runs fn with the unbound DB once what db wrote is committed:
// at once, or when the transaction db is bound to commits.
func (db *DB) afterCommit(fn func(root *DB)) {
	if db.tx == nil {
		fn(db)
		return
	}
	root := db.root
	db.tx.OnCommit(func() { fn(root) })
}

// Generation changes whenever rules, updates, test devices or the
// configuration change (inventory writes do not count), so a reader can
// cache what it derives from them and know when to look again. Every write
// goes through this process, which holds the store's lock.
func (db *DB) Generation() uint64 { return db.gen.Load() }

// Options tune Open. The zero value is valid.
type Options struct {
	// LockTimeout bounds the wait for the file lock; zero means
	// DefaultLockTimeout.
	LockTimeout time.Duration
	// Now stamps a new store's creation time; nil means time.Now.
	Now func() time.Time
}

// Open opens, or creates, the store in the folder dir (created with mode
// 0750 when missing). The file is created with mode 0600. It fails with
// ErrLocked when another process holds the store, ErrDamaged or ErrNotStore
// when the file is not one bbolt can open safely, ErrMissing or ErrEmpty
// when there is no store (or an empty file) but the update store in dir
// holds files, and ErrNewerSchema when a newer build wrote it. It creates
// or changes nothing when it fails.
func Open(dir string, opts Options) (*DB, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if err := checkFile(dir, path); err != nil {
		return nil, err
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open store %s: %w (is another deviceupdate serve using --data %s? stop it or choose another folder)", path, ErrLocked, dir)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return nil, fmt.Errorf("open store %s: %w (%v); restore it from a backup or move it aside to start empty", path, ErrNotStore, err)
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db := &DB{bolt: bdb, path: path}
	if err := db.init(opts.Now()); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return db, nil
}

// checkFile refuses what bbolt must not open: a file it would fault on,
// and a missing or empty one beside update files, which bbolt would turn
// into a new store that names none of them.
func checkFile(dir, path string) error {
	fi, err := os.Stat(path)
	var lost error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		lost = ErrMissing
	case err != nil:
		return fmt.Errorf("open store: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("open store %s: %w: not a regular file", path, ErrNotStore)
	case fi.Size() == 0:
		lost = ErrEmpty
	default:
		return validate(path, fi.Size())
	}
	files := filepath.Join(dir, updatestore.Dir)
	has, err := updatestore.HoldsFiles(dir)
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	if has {
		return fmt.Errorf("open store %s: %w, yet %s holds update files: restore %s from a backup (deviceupdate restore), or, to start over without them, move %s aside",
			path, lost, files, FileName, files)
	}
	return nil
}

// validate runs validateFile on the file at path of size bytes. When the
// file grew meanwhile (another serve, which bbolt's lock will turn away,
// is writing it), it checks again at the new size.
func validate(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer f.Close()
	for try := 0; ; try++ {
		verr := validateFile(f, size)
		if verr == nil {
			return nil
		}
		fi, err := f.Stat()
		if err != nil || fi.Size() == size || try == 2 {
			return fmt.Errorf("open store %s: %w (%v): restore it from a backup (deviceupdate restore)", path, ErrDamaged, verr)
		}
		size = fi.Size()
	}
}

// init records the schema version in a new store and checks it in an
// existing one, in one transaction.
func (db *DB) init(now time.Time) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range buckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(keySchema)
		if v == nil {
			if err := meta.Put(keySchema, encodeUint64(SchemaVersion)); err != nil {
				return err
			}
			return meta.Put(keyCreated, []byte(now.UTC().Format(time.RFC3339Nano)))
		}
		got, ok := decodeUint64(v)
		if !ok {
			return fmt.Errorf("%w: schema version record is %d bytes, want 8", ErrNotStore, len(v))
		}
		if got > SchemaVersion {
			return fmt.Errorf("%w (schema %d, this build reads up to %d); run that build or a newer one", ErrNewerSchema, got, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open store %s: %w", db.path, err)
	}
	return nil
}

// Path returns the store file's path.
func (db *DB) Path() string { return db.path }

// SchemaVersion returns the schema version recorded in the store.
func (db *DB) SchemaVersion() (int, error) {
	var n uint64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("%w: no meta bucket", ErrNotStore)
		}
		var ok bool
		if n, ok = decodeUint64(meta.Get(keySchema)); !ok {
			return fmt.Errorf("%w: no schema version", ErrNotStore)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(n), nil
}

// Ping checks that the store answers a read transaction. Health checks
// use it.
func (db *DB) Ping() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return fmt.Errorf("ping store: %w: no meta bucket", ErrNotStore)
		}
		return nil
	})
}

// Check verifies the consistency of every page of the store, reporting
// the first problem found.
func (db *DB) Check() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain, so the checker goroutine ends
			if first == nil {
				first = fmt.Errorf("check store %s: %w", db.path, err)
			}
		}
		return first
	})
}

// Close releases the store and its file lock.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", db.path, err)
	}
	return nil
}

func encodeUint64(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

func decodeUint64(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}
