package store_test

import (
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
)

// openWithTrail opens a store in a temporary folder with its audit trail
// beside it, as serve does, checked and closed when the test ends.
func openWithTrail(t *testing.T) store.Store {
	t.Helper()
	dir := t.TempDir()
	db := MustOpen(t, dir)
	trail, err := audit.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	db.SetTrail(trail)
	return db
}

// TestBehaviour runs the behaviour every backend keeps against bbolt.
func TestBehaviour(t *testing.T) {
	storetest.Run(t, openWithTrail)
}
