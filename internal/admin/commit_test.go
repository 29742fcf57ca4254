package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// TestChangeNotCommitted: when the store cannot commit a change whose
// entry is already in the trail (its disk is full, the trail's is not),
// the change is refused as not made, and the trail says the entry was
// not applied; a restart finds the trail and the store in agreement.
func TestChangeNotCommitted(t *testing.T) {
	storeDir, trailDir := e2e.Tmpfs(t, 32<<20), t.TempDir()
	s := openIn(t, storeDir, trailDir)
	const n = 10000
	devices := make([]deviceupdate.Device, n)
	for i := range devices {
		devices[i] = deviceupdate.Device{ID: fmt.Sprintf("SN%06d", i), LastSeen: time.Now().Add(-48 * time.Hour)}
	}
	if err := s.DB.PutDevices(devices); err != nil {
		t.Fatal(err)
	}
	free := e2e.Fill(t, storeDir)

	// Deleting every device rewrites most of the store's pages: the
	// commit needs room the disk does not have.
	_, err := s.PruneDevices(context.Background(), "1d", false, "admin")
	if !errors.Is(err, store.ErrNotMade) || deviceupdate.ErrorCode(err) != deviceupdate.EUNAVAILABLE {
		t.Fatalf("prune on a full store: %v", err)
	}
	if all, _ := s.DB.Devices(); len(all) != n {
		t.Fatalf("%d devices after a prune not made, want %d", len(all), n)
	}
	s.DB.Close() // its trail is closed when the test ends
	free()

	s = openIn(t, storeDir, trailDir)
	var entries []audit.Entry
	brk, err := s.DB.AuditEntries(func(e audit.Entry, _ bool) { entries = append(entries, e) })
	if err != nil || brk != nil {
		t.Fatalf("Read = %v, %v", brk, err)
	}
	for _, e := range entries {
		t.Logf("entry %d: %s %s %s", e.Seq, e.Action, e.Target, e.Result)
	}
	var prune uint64
	var marked []uint64
	for _, e := range entries {
		switch e.Action {
		case "device.prune":
			prune = e.Seq
		case audit.ActionAbandoned:
			var named struct{ Entries []uint64 }
			if err := json.Unmarshal(e.After, &named); err != nil {
				t.Fatal(err)
			}
			marked = append(marked, named.Entries...)
		}
	}
	if prune == 0 || len(marked) != 1 || marked[0] != prune {
		t.Errorf("the prune is entry %d, entries marked not applied: %v; want it alone", prune, marked)
	}
	if all, _ := s.DB.Devices(); len(all) != n {
		t.Errorf("%d devices after restart, want %d", len(all), n)
	}
}
