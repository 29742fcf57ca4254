package admin_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

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
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Error(err)
		}
		db.Close()
		trail.Close()
	})
	return &admin.Service{DB: db, Trail: trail}, dir
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

	all, err := s.AuditEntries(ctx, deviceupdate.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 {
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
		if err != nil || len(got) != tt.want {
			t.Errorf("%s: %d entries (%v), want %d", tt.name, len(got), err, tt.want)
		}
	}

	v, err := s.VerifyAudit(ctx)
	if err != nil || !v.Intact || v.Entries != 4 {
		t.Fatalf("VerifyAudit = %+v, %v", v, err)
	}
	data, _ := os.ReadFile(s.Trail.Path())
	os.WriteFile(s.Trail.Path(), bytes.Replace(data, []byte("admin@10.0.0.3"), []byte("admin@10.0.0.9"), 1), 0o640)
	v, err = s.VerifyAudit(ctx)
	if err != nil || v.Intact || v.Line != 3 || v.Entries != 2 {
		t.Fatalf("VerifyAudit after tampering = %+v, %v; want broken at line 3", v, err)
	}
	if _, err := s.AuditEntries(ctx, deviceupdate.AuditFilter{}); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Errorf("listing a broken trail = %v, want a conflict naming the break", err)
	}
}
