package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate/internal/store"
)

// MustOpen opens a store in a temporary folder and, when the test ends,
// checks its integrity and closes it.
func MustOpen(tb testing.TB, dir string) *store.DB {
	tb.Helper()
	db, err := store.Open(dir, store.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Check(); err != nil {
			tb.Error(err)
		}
		_ = db.Close()
	})
	return db
}

func TestOpenCreatesStoreWithSchemaAndMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "DeviceUpdateFiles")
	db := MustOpen(t, dir)

	fi, err := os.Stat(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("store file mode = %o, want 600", mode)
	}
	v, err := db.SchemaVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v != store.SchemaVersion {
		t.Errorf("schema version = %d, want %d", v, store.SchemaVersion)
	}
	if err := db.Ping(); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestOpenReopensExistingStore(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpen(t, dir)
	if v, err := db.SchemaVersion(); err != nil || v != store.SchemaVersion {
		t.Fatalf("schema version after reopen = %d, %v", v, err)
	}
}

func TestOpenFailures(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) // makes dir a store Open must refuse
		want    error
	}{
		{"locked by another holder", func(t *testing.T, dir string) {
			MustOpen(t, dir) // held until the test ends
		}, store.ErrLocked},
		{"not a bbolt file", func(t *testing.T, dir string) {
			junk := make([]byte, 8192)
			copy(junk, "this is not a database")
			if err := os.WriteFile(filepath.Join(dir, store.FileName), junk, 0o600); err != nil {
				t.Fatal(err)
			}
		}, store.ErrNotStore},
		{"written by a newer schema", func(t *testing.T, dir string) {
			writeSchema(t, dir, []byte{0, 0, 0, 0, 0, 0, 0, store.SchemaVersion + 1})
		}, store.ErrNewerSchema},
		{"malformed schema record", func(t *testing.T, dir string) {
			writeSchema(t, dir, []byte("v1"))
		}, store.ErrNotStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(t, dir)
			db, err := store.Open(dir, store.Options{LockTimeout: 100 * time.Millisecond})
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
		})
	}
}

// writeSchema makes a bbolt file whose schema record holds v.
func writeSchema(t *testing.T, dir string, v []byte) {
	t.Helper()
	bdb, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("schema"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
}
