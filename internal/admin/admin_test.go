package admin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

var key = deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}

// openService opens a store and an audit trail in a temporary folder,
// checked and closed when the test ends, and returns the folder.
func openService(t *testing.T) (*admin.Service, string) {
	t.Helper()
	dir := t.TempDir()
	return openIn(t, dir, dir), dir
}

// openIn opens the store in storeDir and the trail in trailDir as serve
// does at start, CheckTrail included; the store is checked and both are
// closed when the test ends (closing twice is harmless).
func openIn(t *testing.T, storeDir, trailDir string) *admin.Service {
	t.Helper()
	db, err := store.Open(storeDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(trailDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.SetTrail(trail)
	t.Cleanup(func() {
		if err := db.Check(); err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen) {
			t.Error(err)
		}
		db.Close()
		trail.Close()
	})
	s := &admin.Service{DB: db}
	if err := s.CheckTrail(); err != nil {
		t.Fatal(err)
	}
	return s
}

func newService(t *testing.T) *admin.Service {
	t.Helper()
	s, _ := openService(t)
	_, err := s.DB.CommitImport([]*deviceupdate.StoredUpdate{{RuleKey: key, Version: deviceupdate.MustParseVersion("4.0.7577.4366"),
		Images: []deviceupdate.UpdateFile{{Name: "CPE.nbt", Size: 1, SHA256: "aa"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChangesAreAudited(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	id := deviceupdate.RuleID(key)
	if _, _, err := s.ChangeRule(ctx, id, deviceupdate.RuleApprove, nil, "admin@10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ChangeRule(ctx, id, deviceupdate.RuleReset, nil, "admin@10.0.0.2"); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Fatalf("reset with nothing pending = %v", err)
	}
	if _, err := s.AddTestDevice(ctx, deviceupdate.TestDevice{Name: "lab", MAC: "0004f2aabbcc"}, "admin@10.0.0.3"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetConfig(ctx, "global", map[string]string{"MaxLogFileSize": "2048000"}, "admin@10.0.0.4"); err != nil {
		t.Fatal(err)
	}

	list, err := s.AuditEntries(ctx, deviceupdate.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	all := list.Entries
	if len(all) != 4 || list.Broken != nil {
		t.Fatalf("%d entries, want 4", len(all))
	}
	approve := all[0]
	if approve.Action != "rule.approve" || approve.Target != id || approve.Actor != "admin@10.0.0.1" ||
		!bytes.Contains(approve.Before, []byte(`"pendingVersion":"4.0.7577.4366"`)) || !bytes.Contains(approve.After, []byte(`"approvedVersion":"4.0.7577.4366"`)) {
		t.Errorf("approval entry = %+v", approve)
	}
	if all[1].Result == audit.ResultOK || all[1].Action != "rule.reset" {
		t.Errorf("the refused reset is not audited as refused: %+v", all[1])
	}

	tests := []struct {
		name   string
		filter deviceupdate.AuditFilter
		want   int
	}{
		{"action family", deviceupdate.AuditFilter{Action: "rule."}, 2},
		{"exact action", deviceupdate.AuditFilter{Action: "config.set"}, 1},
		{"target", deviceupdate.AuditFilter{Target: "lab"}, 1},
		{"since the future", deviceupdate.AuditFilter{Since: time.Now().Add(time.Hour)}, 0},
		{"until the past", deviceupdate.AuditFilter{Until: time.Now().Add(-time.Hour)}, 0},
	}
	for _, tt := range tests {
		got, err := s.AuditEntries(ctx, tt.filter)
		if err != nil || len(got.Entries) != tt.want {
			t.Errorf("%s: %+v (%v), want %d entries", tt.name, got, err, tt.want)
		}
	}

	v, err := s.VerifyAudit(ctx)
	if err != nil || !v.Intact || v.Entries != 4 {
		t.Fatalf("VerifyAudit = %+v, %v", v, err)
	}
}

// TestBrokenTrail: after the trail file is tampered with, listing it
// shows the entries before the break, where it breaks and the entries
// after it, unverified; verifying names the break; each read logs it at
// error level; putting the file back makes it intact again.
func TestBrokenTrail(t *testing.T) {
	s := newService(t)
	core, logs := observer.New(zap.InfoLevel)
	s.Logger = zap.New(core)
	ctx := context.Background()
	for i := range 5 {
		if _, err := s.AddTestDevice(ctx, deviceupdate.TestDevice{Name: fmt.Sprintf("lab%d", i), Serial: fmt.Sprintf("SN%d", i)}, "admin@10.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(s.DB.AuditLocation())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	tests := []struct {
		name           string
		trail          string
		wantVerified   string
		wantLine       int
		wantReason     string
		wantUnverified string
	}{
		{"a byte of a line edited", strings.Replace(string(data), `"target":"lab2"`, `"target":"lab9"`, 1), "lab0 lab1", 3, "altered", "lab9 lab3 lab4"},
		{"a middle line deleted", lines[0] + lines[1] + lines[3] + lines[4], "lab0 lab1", 3, "removed or moved", "lab3 lab4"},
		{"the last line deleted", lines[0] + lines[1] + lines[2] + lines[3], "lab0 lab1 lab2 lab3", 5, "removed from its end", ""},
		{"put back", string(data), "lab0 lab1 lab2 lab3 lab4", 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(s.DB.AuditLocation(), []byte(tt.trail), 0o640); err != nil {
				t.Fatal(err)
			}
			logged := logs.TakeAll()
			list, err := s.AuditEntries(ctx, deviceupdate.AuditFilter{Action: "testdevice."})
			if err != nil {
				t.Fatal(err)
			}
			var verified, unverified []string
			for _, e := range list.Entries {
				if e.Unverified {
					unverified = append(unverified, e.Target)
				} else {
					verified = append(verified, e.Target)
				}
			}
			if got := strings.Join(verified, " "); got != tt.wantVerified {
				t.Errorf("verified entries %q, want %q", got, tt.wantVerified)
			}
			if got := strings.Join(unverified, " "); got != tt.wantUnverified {
				t.Errorf("unverified entries %q, want %q", got, tt.wantUnverified)
			}
			v, err := s.VerifyAudit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			logged = logs.TakeAll()
			if tt.wantLine == 0 {
				if list.Broken != nil || !v.Intact || len(logged) != 0 {
					t.Errorf("intact trail: broken %+v, verification %+v, logged %v", list.Broken, v, logged)
				}
				return
			}
			if list.Broken == nil || list.Broken.Line != tt.wantLine || !strings.Contains(list.Broken.Reason, tt.wantReason) {
				t.Errorf("break %+v, want line %d: %s", list.Broken, tt.wantLine, tt.wantReason)
			}
			if v.Intact || v.Line != tt.wantLine || v.Entries != tt.wantLine-1 {
				t.Errorf("verification %+v, want broken at line %d", v, tt.wantLine)
			}
			if len(logged) != 2 || logged[0].Level != zap.ErrorLevel || logged[0].Message != "audit trail is broken" ||
				logged[0].ContextMap()["line"] != int64(tt.wantLine) {
				t.Errorf("logged %+v, want the break at error level on each read", logged)
			}
		})
	}
}
