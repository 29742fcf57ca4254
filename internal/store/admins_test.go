package store_test

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// TestOlderStoreGainsAdminBuckets: a store written before admins existed
// (no admins, admintokens or sessions bucket) opens, keeps its schema
// version, and takes admins.
func TestOlderStoreGainsAdminBuckets(t *testing.T) {
	dir := t.TempDir()
	var raw *bolt.DB
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err = bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"admins", "admintokens", "sessions"} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	db = MustOpen(t, dir)
	if v, err := db.SchemaVersion(); err != nil || v != store.SchemaVersion {
		t.Errorf("schema %d, %v", v, err)
	}
	if err := db.AddAdmin(deviceupdate.Admin{Name: "alice", Role: deviceupdate.RoleViewer}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddAdminToken(deviceupdate.AdminToken{ID: "a1", Admin: "alice", ExpiresAt: time.Now().Add(time.Hour)}, store.SecretHash{1}, time.Now(), 1); err != nil {
		t.Fatal(err)
	}
	if a, _, err := db.TokenAdmin(store.SecretHash{1}, time.Now()); err != nil || a.Name != "alice" {
		t.Errorf("TokenAdmin = %+v, %v", a, err)
	}
}
