package devlogs_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/devlogs"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// TestClearLogsAuditedFirst: logs clear writes its audit entry before it
// deletes anything, so with the disk holding the trail full it fails and
// every log stays; with room again it deletes them, audited.
func TestClearLogsAuditedFirst(t *testing.T) {
	trailDir := e2e.Tmpfs(t, 64<<10)
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(trailDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.SetTrail(trail)
	t.Cleanup(func() { db.Close(); trail.Close() })
	svc := &admin.Service{DB: db}
	if err := svc.CheckTrail(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	dir := t.TempDir()
	st := &settings{m: map[string]string{"MaxLogCacheLimit": "0"}}
	s, err := devlogs.Open(devlogs.Options{Dir: dir, Settings: st.get, Audit: svc.Record, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	for _, name := range []string{"a.txt", "b.txt"} {
		if _, err := s.Upload(ctx, upload(name, "CELog"), strings.NewReader(name), -1); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	now = now.Add(10 * 24 * time.Hour)
	mu.Unlock()

	free := e2e.Fill(t, trailDir)
	_, err = s.ClearLogs(ctx, 5, "admin")
	if deviceupdate.ErrorCode(err) != deviceupdate.EUNAVAILABLE || !strings.HasPrefix(deviceupdate.ErrorMessage(err), "the change was not made") {
		t.Fatalf("logs clear with the trail's disk full: %v", err)
	}
	if got := files(t, dir); len(got) != 2 {
		t.Fatalf("logs clear not audited deleted logs: %v left", got)
	}

	free()
	res, err := s.ClearLogs(ctx, 5, "admin")
	if err != nil || res.Deleted != 2 {
		t.Fatalf("logs clear with room again = %+v, %v", res, err)
	}
	entries, _ := audit.ReadAll(mustOpenFile(t, trail.Path()))
	if len(entries) != 1 || entries[0].Action != "logs.clear" || entries[0].Result != audit.ResultOK || string(entries[0].After) != `{"deleted":2,"bytes":10}` {
		t.Errorf("audit trail: %+v", entries)
	}
}

func mustOpenFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
