package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// trail reads the whole trail, failing the test unless its chain holds.
func trail(t *testing.T, db store.Store) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	brk, err := db.AuditEntries(func(e audit.Entry, verified bool) {
		if !verified {
			t.Errorf("entry %d (%s) does not verify", e.Seq, e.Action)
		}
		out = append(out, e)
	})
	if err != nil || brk != nil {
		t.Fatalf("read the trail: %v, broken %v", err, brk)
	}
	for i, e := range out {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has number %d: the trail is not numbered 1, 2, ...", i+1, e.Seq)
		}
	}
	return out
}

func testDeviceNames(t *testing.T, db store.Store) string {
	t.Helper()
	devices, err := db.TestDevices()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range devices {
		names = append(names, d.Name)
	}
	return strings.Join(names, " ")
}

// testAuditedChangeAndEntry: a change made through Audited is in effect
// with its entry, as apply filled it in, at the trail's end; the bound
// store reads its own writes; a nil apply records the entry alone.
func testAuditedChangeAndEntry(t *testing.T, open Opener) {
	db := open(t)
	gen := db.Generation()
	err := db.Audited(audit.Entry{Actor: "alice", Action: "testdevice.add", Target: "LAB"}, func(tx store.Store, e *audit.Entry) error {
		d, err := tx.AddTestDevice(deviceupdate.TestDevice{Name: "lab", Serial: "SN1"})
		if err != nil {
			return err
		}
		if got := testDeviceNames(t, tx); got != "lab" {
			t.Errorf("inside the change the store reads %q, want its own write", got)
		}
		e.Target = d.Name
		e.After, _ = json.Marshal(d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := testDeviceNames(t, db); got != "lab" {
		t.Errorf("test devices after the change: %q", got)
	}
	if db.Generation() == gen {
		t.Error("an audited change did not advance the generation")
	}
	if err := db.Audited(audit.Entry{Actor: "alice", Action: "files.clear", Target: "DeviceUpdateFiles"}, nil); err != nil {
		t.Fatal(err)
	}
	entries := trail(t, db)
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2", len(entries))
	}
	add, clear := entries[0], entries[1]
	if add.Actor != "alice" || add.Action != "testdevice.add" || add.Target != "lab" || add.Result != audit.ResultOK ||
		!strings.Contains(string(add.After), `"SN1"`) || add.Hash == "" || add.Time.IsZero() {
		t.Errorf("the change's entry = %+v", add)
	}
	if clear.Action != "files.clear" || clear.Result != audit.ResultOK || clear.Prev != add.Hash {
		t.Errorf("the entry recorded alone = %+v; want ok, chained to %s", clear, add.Hash)
	}
	if brk := db.AuditBroken(); brk != nil {
		t.Errorf("AuditBroken = %v", brk)
	}
	if db.AuditLocation() == "" {
		t.Error("AuditLocation is empty: a break could not say where")
	}
}

// testAuditedRefusal: a refused change leaves nothing of what apply wrote
// before refusing, and the refusal is in the trail with its reason; a
// refusal of the store itself (a name taken) too; an audited change inside
// another is refused.
func testAuditedRefusal(t *testing.T, open Opener) {
	db := open(t)
	if _, err := db.AddTestDevice(deviceupdate.TestDevice{Name: "lab", Serial: "SN1"}); err != nil {
		t.Fatal(err)
	}
	refusal := deviceupdate.Errorf(deviceupdate.ECONFLICT, "the lab is closed")
	tests := []struct {
		name       string
		apply      func(tx store.Store, e *audit.Entry) error
		wantCode   string
		wantResult string // the entry's result, "" for no entry
	}{
		{"apply refuses after a write", func(tx store.Store, e *audit.Entry) error {
			if _, err := tx.AddTestDevice(deviceupdate.TestDevice{Name: "lab2", Serial: "SN2"}); err != nil {
				return err
			}
			e.After = json.RawMessage(`{"name":"lab2"}`)
			return refusal
		}, deviceupdate.ECONFLICT, "the lab is closed"},
		{"the store refuses the second write", func(tx store.Store, e *audit.Entry) error {
			if _, err := tx.AddTestDevice(deviceupdate.TestDevice{Name: "lab3", Serial: "SN3"}); err != nil {
				return err
			}
			_, err := tx.AddTestDevice(deviceupdate.TestDevice{Name: "LAB", Serial: "SN4"})
			return err
		}, deviceupdate.ECONFLICT, `a test device named "LAB" exists`},
		{"an audited change inside another", func(tx store.Store, e *audit.Entry) error {
			if _, err := tx.AddTestDevice(deviceupdate.TestDevice{Name: "lab5", Serial: "SN5"}); err != nil {
				return err
			}
			return tx.Audited(audit.Entry{Actor: "alice", Action: "testdevice.add", Target: "lab6"}, nil)
		}, deviceupdate.EINTERNAL, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(trail(t, db))
			err := db.Audited(audit.Entry{Actor: "alice", Action: "testdevice.add", Target: tt.name}, tt.apply)
			if deviceupdate.ErrorCode(err) != tt.wantCode {
				t.Fatalf("Audited = %v, want code %s", err, tt.wantCode)
			}
			if tt.wantResult == refusal.Message && !errors.Is(err, refusal) {
				t.Errorf("Audited = %v, not apply's error", err)
			}
			if got := testDeviceNames(t, db); got != "lab" {
				t.Errorf("test devices after a refusal: %q, want lab alone", got)
			}
			entries := trail(t, db)
			if len(entries) != before+1 {
				t.Fatalf("%d entries after a refusal, want %d", len(entries), before+1)
			}
			e := entries[len(entries)-1]
			if e.Target != tt.name || e.Result == audit.ResultOK || !strings.Contains(e.Result, tt.wantResult) || e.Before != nil || e.After != nil {
				t.Errorf("the refusal's entry = %+v; want its reason (%q) and no before or after", e, tt.wantResult)
			}
		})
	}
}

// testAuditedConcurrent: changes audited at once each get an entry, in
// one chain that verifies, and each change is made.
func testAuditedConcurrent(t *testing.T, open Opener) {
	db := open(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("lab%02d", i)
			errs[i] = db.Audited(audit.Entry{Actor: "alice", Action: "testdevice.add", Target: name}, func(tx store.Store, e *audit.Entry) error {
				_, err := tx.AddTestDevice(deviceupdate.TestDevice{Name: name, Serial: "SN" + name})
				return err
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries := trail(t, db)
	targets := map[string]bool{}
	for _, e := range entries {
		targets[e.Target] = true
	}
	if len(entries) != n || len(targets) != n {
		t.Errorf("%d entries for %d targets; want %d of each", len(entries), len(targets), n)
	}
	if devices, _ := db.TestDevices(); len(devices) != n {
		t.Errorf("%d test devices, want %d", len(devices), n)
	}
}

// testAuditAnchor: a store anchored at start, as serve does, finds its
// trail in agreement with the head it keeps, with nothing to mark as not
// applied, before the first change and after some.
func testAuditAnchor(t *testing.T, open Opener) {
	db := open(t)
	for round := range 2 {
		if err := db.InitAuditHead(); err != nil {
			t.Fatal(err)
		}
		a, err := db.AnchorAudit()
		if err != nil {
			t.Fatal(err)
		}
		if !a.Recorded || len(a.Unapplied) != 0 || a.Last.Seq != uint64(round) {
			t.Errorf("round %d: anchoring = %+v; want the head recorded at entry %d, nothing unapplied", round, a, round)
		}
		if brk := db.AuditBroken(); brk != nil {
			t.Errorf("round %d: AuditBroken = %v", round, brk)
		}
		if err := db.Audited(audit.Entry{Actor: "alice", Action: "config.set", Target: "global"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if entries := trail(t, db); len(entries) != 2 {
		t.Errorf("%d entries, want 2", len(entries))
	}
}
