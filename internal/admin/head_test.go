package admin_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
	"github.com/deviceupdate/deviceupdate/internal/audit"
)

// reopen opens the store and the trail in dir as serve does at start.
func reopen(t *testing.T, dir string) *admin.Service {
	t.Helper()
	return openIn(t, dir, dir)
}

// stop closes the store as serve does when it stops; its trail, which
// writes nothing once the store is closed, is closed when the test ends.
func stop(s *admin.Service) { s.DB.Close() }

func addDevices(t *testing.T, s *admin.Service, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := s.AddTestDevice(context.Background(), deviceupdate.TestDevice{Name: name, Serial: "SN-" + name}, "admin"); err != nil {
			t.Fatal(err)
		}
	}
}

func actions(t *testing.T, s *admin.Service) string {
	t.Helper()
	var out []string
	if _, err := s.DB.AuditEntries(func(e audit.Entry, _ bool) { out = append(out, fmt.Sprintf("%d:%s %s", e.Seq, e.Action, e.Target)) }); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, ", ")
}

// TestTrailAgainstStoreHead: at start, the trail is checked against the
// head the store keeps: an entry written whose change the store did not
// commit is marked as not applied; a trail of a store that kept no head
// is anchored; a last entry removed, or a trail replaced, is a break that
// later changes do not hide.
func TestTrailAgainstStoreHead(t *testing.T) {
	tests := []struct {
		name string
		// before runs with the server stopped, on its data folder.
		before      func(t *testing.T, dir string)
		wantActions string // the trail after a restart and one more change
		wantBreak   string // "" for an intact trail
	}{
		{"intact", func(*testing.T, string) {}, "1:testdevice.add a, 2:testdevice.add b, 3:testdevice.add c", ""},
		{"an entry written, its change not committed", func(t *testing.T, dir string) {
			trail, err := audit.Open(dir, nil) // as a crash after the entry's sync, before the commit
			if err != nil {
				t.Fatal(err)
			}
			defer trail.Close()
			if _, err := trail.Append(audit.Entry{Actor: "admin", Action: "testdevice.add", Target: "lost", Result: audit.ResultOK}); err != nil {
				t.Fatal(err)
			}
		}, "1:testdevice.add a, 2:testdevice.add b, 3:testdevice.add lost, 4:audit.abandoned entry 3, 5:testdevice.add c", ""},
		{"the last entry deleted", func(t *testing.T, dir string) {
			path := dir + "/" + audit.Dir + "/" + audit.FileName
			data, _ := os.ReadFile(path)
			lines := strings.SplitAfter(string(data), "\n")
			os.WriteFile(path, []byte(lines[0]), 0o640)
		}, "1:testdevice.add a, 3:testdevice.add c",
			"audit trail is broken at line 2 (entry 3): sequence number 3 follows 1 (an entry was removed or moved)"},
		{"the trail replaced by another as long", func(t *testing.T, dir string) {
			os.RemoveAll(dir + "/" + audit.Dir)
			trail, _ := audit.Open(dir, nil)
			defer trail.Close()
			for _, target := range []string{"x", "y"} {
				trail.Append(audit.Entry{Actor: "admin", Action: "testdevice.add", Target: target, Result: audit.ResultOK})
			}
		}, "1:testdevice.add x, 2:testdevice.add y, 3:testdevice.add c",
			"audit trail is broken at line 3 (entry 3): it does not name the previous entry's hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := reopen(t, dir)
			addDevices(t, s, "a", "b")
			stop(s)
			tt.before(t, dir)
			s = reopen(t, dir)
			addDevices(t, s, "c")
			if got := actions(t, s); got != tt.wantActions {
				t.Errorf("trail:\n %s\nwant\n %s", got, tt.wantActions)
			}
			brk, err := s.DB.AuditEntries(func(audit.Entry, bool) {})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantBreak == "" && brk != nil:
				t.Errorf("broken: %v", brk)
			case tt.wantBreak != "" && (brk == nil || !strings.HasPrefix(brk.Error(), tt.wantBreak)):
				t.Errorf("break = %v, want %q", brk, tt.wantBreak)
			}
			devices, _ := s.DB.TestDevices()
			if len(devices) != 3 {
				t.Errorf("test devices: %+v", devices)
			}
		})
	}
}

// TestTrailAnchoredOnce: a store that keeps no head beside a trail with
// entries (one an earlier version made) records the trail's last entry as
// its head, in an audit.anchored entry, once; a deleted last entry is
// then caught before any change.
func TestTrailAnchoredOnce(t *testing.T) {
	dir := t.TempDir()
	trail, err := audit.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"a", "b"} {
		if _, err := trail.Append(audit.Entry{Actor: "admin", Action: "testdevice.add", Target: target, Result: audit.ResultOK}); err != nil {
			t.Fatal(err)
		}
	}
	trail.Close()
	s := reopen(t, dir)
	stop(s)
	s = reopen(t, dir)
	if got, want := actions(t, s), "1:testdevice.add a, 2:testdevice.add b, 3:audit.anchored entry 2"; got != want {
		t.Errorf("trail: %s, want %s", got, want)
	}
	stop(s)
	path := dir + "/" + audit.Dir + "/" + audit.FileName
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Join(strings.SplitAfter(string(data), "\n")[:2], "")), 0o640)
	s = reopen(t, dir)
	if brk := s.DB.AuditBroken(); brk == nil || brk.Seq != 3 || !strings.Contains(brk.Reason, "the store records entry 3 as written (entries were removed from its end)") {
		t.Errorf("a start on a trail without its last entry: Broken = %v", brk)
	}
}
