package importer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/cab"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestImportWritesNothingBeforeTrust: a small cabinet whose image is 32
// MiB of zeros (MSZIP, a ratio of about 600, as the 1.8 MB cabinet that
// holds 1 GiB) is refused for its untrusted catalog before any image is
// written: the data folder, an 8 MiB tmpfs, never fills. A trusted
// package whose declared image size passes the limit is refused before
// writing too, and so is one whose images need more room than the disk
// has left.
func TestImportWritesNothingBeforeTrust(t *testing.T) {
	const image = 32 << 20
	tests := []struct {
		name     string
		signer   func(e *env) testpkg.Signer
		limits   cab.Limits
		wantCode string
		wantMsg  string
	}{
		{"untrusted publisher", func(*env) testpkg.Signer {
			return testpkg.NewSigner(t, testpki.NewCA(t, "Stranger"), testpki.Options{})
		}, cab.Limits{}, deviceupdate.EFORBIDDEN, "catalog signer is not trusted"},
		{"trusted, image above the limit", func(e *env) testpkg.Signer { return e.sign },
			cab.Limits{MaxFileSize: 4 << 20}, deviceupdate.EINVALID, "limit"},
		{"trusted, images larger than the free space", func(e *env) testpkg.Signer { return e.sign },
			cab.Limits{}, deviceupdate.EUNAVAILABLE, "the package's images need 33554432 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnvIn(t, e2e.Tmpfs(t, 8<<20))
			e.im.Limits = tt.limits
			files := testpkg.Files{}
			testpkg.AddUpdate(t, files, "", "4.0.7577.4366", make([]byte, image), tt.signer(e))
			pkg := testpkg.MakeCab(t, files)
			stop := make(chan struct{})
			peak := e2e.Peak(e.data, stop)
			_, err := e.importFile(t, pkg)
			close(stop)
			t.Logf("the data folder's tmpfs held at most %d KiB", <-peak>>10)
			if deviceupdate.ErrorCode(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("import = %v, want %s naming %q", err, tt.wantCode, tt.wantMsg)
			}
			if got := e.tree(t); len(got) != 0 {
				t.Errorf("a refused import left %v", got)
			}
			if rules, _ := e.db.Rules(); len(rules) != 0 {
				t.Errorf("rules = %+v", rules)
			}
		})
	}
}

// TestClearFilesAuditedFirst: files clear commits the records' deletion
// with its audit entry, so with the disk holding the trail full it fails
// and the records and files stay; with room again it clears them, and
// its entry says so.
func TestClearFilesAuditedFirst(t *testing.T) {
	e := newEnv(t)
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", testpkg.Image(4096, 1), e.sign)
	res, err := e.importFile(t, testpkg.MakeCab(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.db.ChangeRule(res.Updates[0].RuleID, deviceupdate.RuleRemove, nil); err != nil {
		t.Fatal(err)
	}
	free := fullTrail(t, e)
	before := e.tree(t)
	if _, err := e.im.ClearFiles(context.Background(), "admin"); deviceupdate.ErrorCode(err) != deviceupdate.EUNAVAILABLE {
		t.Fatalf("files clear with the trail's disk full: %v", err)
	}
	if updates, _ := e.db.Updates(); len(updates) != 1 || len(e.tree(t)) != len(before) {
		t.Fatalf("files clear not audited removed records %v or files %v", updates, e.tree(t))
	}
	free()
	cleared, err := e.im.ClearFiles(context.Background(), "admin")
	if err != nil || len(cleared.Removed) != 1 {
		t.Fatalf("files clear with room again = %+v, %v", cleared, err)
	}
	if updates, _ := e.db.Updates(); len(updates) != 0 || len(e.tree(t)) != 0 {
		t.Errorf("after files clear: records %v, files %v", updates, e.tree(t))
	}
}

// TestImportAuditedFirst: an import commits with its audit entry, so with
// the disk holding the trail full it is refused and no rule changes.
func TestImportAuditedFirst(t *testing.T) {
	e := newEnv(t)
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", testpkg.Image(4096, 1), e.sign)
	fullTrail(t, e)
	if _, err := e.importFile(t, testpkg.MakeCab(t, files)); deviceupdate.ErrorCode(err) != deviceupdate.EUNAVAILABLE ||
		!strings.HasPrefix(deviceupdate.ErrorMessage(err), "the change was not made") {
		t.Fatalf("import with the trail's disk full: %v", err)
	}
	if rules, _ := e.db.Rules(); len(rules) != 0 {
		t.Errorf("rules = %+v", rules)
	}
	if updates, _ := e.db.Updates(); len(updates) != 0 {
		t.Errorf("updates = %+v", updates)
	}
}

// fullTrail gives the importer a trail of its own on a disk that is full,
// and returns a function that makes room.
func fullTrail(t *testing.T, e *env) func() {
	t.Helper()
	dir := e2e.Tmpfs(t, 64<<10)
	trail, err := audit.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	e.db.SetTrail(trail)
	return e2e.Fill(t, dir)
}
