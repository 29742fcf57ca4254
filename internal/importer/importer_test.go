package importer_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/importer"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

type env struct {
	im    *importer.Importer
	db    *store.DB
	data  string
	certs string
	ca    *testpki.Authority
	sign  testpkg.Signer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvIn(t, t.TempDir())
}

// newEnvIn is newEnv with the data folder in dir.
func newEnvIn(t *testing.T, data string) *env {
	t.Helper()
	certsDir := t.TempDir()
	db, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.SetTrail(trail)
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Error(err)
		}
		db.Close()
		trail.Close()
	})
	ca := testpki.NewCA(t, "Polycom Root")
	os.MkdirAll(filepath.Join(certsDir, "trusted"), 0o755)
	testpki.WriteCert(t, filepath.Join(certsDir, "trusted", "polycom.pem"), ca.Cert)
	return &env{
		im: &importer.Importer{DB: db, Logger: zap.NewNop(), Files: updatestore.New(data, nil), CertsDir: certsDir},
		db: db, data: data, certs: certsDir, ca: ca,
		sign: testpkg.NewSigner(t, ca, testpki.Options{}),
	}
}

func (e *env) importFile(t *testing.T, path string) (*deviceupdate.ImportResult, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	return e.im.Import(context.Background(), f, fi.Size(), filepath.Base(path), "admin@test")
}

func (e *env) auditEntries(t *testing.T) []audit.Entry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.data, audit.Dir, audit.FileName))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := audit.ReadAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// tree lists the files under the data folder, without the store and the
// audit trail, which change on every import.
func (e *env) tree(t *testing.T) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(e.data, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, store.FileName) && !strings.HasSuffix(p, audit.FileName) {
			rel, _ := filepath.Rel(e.data, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestImportLifecycle(t *testing.T) {
	e := newEnv(t)
	image := testpkg.Image(300000, 1)
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", image, e.sign)
	pkg := testpkg.MakeCab(t, files)

	res, err := e.importFile(t, pkg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Updates) != 1 || res.Updates[0].Status != deviceupdate.ImportAdded {
		t.Fatalf("result = %+v", res)
	}
	dir := updatestore.Folder(e.data, res.Updates[0].Key, res.Updates[0].Version)
	if want := filepath.Join(e.data, "DeviceUpdateStore/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE"); dir != want {
		t.Errorf("store path = %s, want %s", dir, want)
	}
	for _, name := range []string{"CPE.nbt", "CPE.cat", "CPE.xml"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, files[name]) {
			t.Errorf("%s in the store: %v", name, err)
		}
	}
	rules, _ := e.db.Rules()
	if len(rules) != 1 || rules[0].PendingVersion.String() != "4.0.7577.4366" {
		t.Fatalf("rules = %+v", rules)
	}

	// The same package again: nothing changes.
	before := e.tree(t)
	res, err = e.importFile(t, pkg)
	if err != nil || res.Updates[0].Status != deviceupdate.ImportUnchanged {
		t.Fatalf("re-import = %+v, %v", res, err)
	}
	if after := e.tree(t); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("re-import changed the files: %v -> %v", before, after)
	}

	// Another package claiming the same version with other bytes: refused.
	other := testpkg.Files{}
	testpkg.AddUpdate(t, other, "", "4.0.7577.4366", testpkg.Image(300000, 2), e.sign)
	_, err = e.importFile(t, testpkg.MakeCab(t, other))
	if deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT || !strings.Contains(err.Error(), "package.cab: UCPhone/Polycom/CX600/A/ENU/CPE version 4.0.7577.4366 was imported before") {
		t.Fatalf("conflicting import = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "CPE.nbt")); !bytes.Equal(got, image) {
		t.Error("a refused import changed the stored image")
	}

	entries := e.auditEntries(t)
	if len(entries) != 3 {
		t.Fatalf("%d audit entries, want 3", len(entries))
	}
	if entries[0].Action != "import" || entries[0].Result != audit.ResultOK || entries[0].Actor != "admin@test" || entries[0].Target != "package.cab" {
		t.Errorf("first entry = %+v", entries[0])
	}
	if !strings.Contains(entries[2].Result, "was imported before") {
		t.Errorf("refusal not audited with its reason: %+v", entries[2])
	}
	if staging, _ := os.ReadDir(filepath.Join(e.data, updatestore.StagingDir)); len(staging) != 0 {
		t.Errorf("staging left behind: %v", staging)
	}
}

func TestImportRefusalsChangeNothing(t *testing.T) {
	e := newEnv(t)
	image := testpkg.Image(100000, 3)
	tampered := testpkg.Files{}
	testpkg.AddUpdate(t, tampered, "", "4.0.7577.4366", image, e.sign)
	tampered["CPE.nbt"] = append(bytes.Clone(image), 1)
	untrusted := testpkg.Files{}
	testpkg.AddUpdate(t, untrusted, "", "4.0.7577.4366", image, testpkg.NewSigner(t, testpki.NewCA(t, "Other"), testpki.Options{}))
	good := testpkg.Files{}
	testpkg.AddUpdate(t, good, "", "4.0.7577.4366", image, e.sign)
	truncated := testpkg.MakeCab(t, good)
	data, _ := os.ReadFile(truncated)
	os.WriteFile(truncated, data[:len(data)-100], 0o644)

	tests := []struct {
		name     string
		path     string
		setup    func()
		wantCode string
	}{
		{"tampered image", testpkg.MakeCab(t, tampered), nil, deviceupdate.EFORBIDDEN},
		{"untrusted publisher", testpkg.MakeCab(t, untrusted), nil, deviceupdate.EFORBIDDEN},
		{"truncated cabinet", truncated, nil, deviceupdate.EINVALID},
		{"too large", testpkg.MakeCab(t, good), func() { e.im.MaxSize = 1000 }, deviceupdate.ETOOLARGE},
		{"no trusted publishers", testpkg.MakeCab(t, good), func() { os.RemoveAll(filepath.Join(e.certs, "trusted")) }, deviceupdate.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.im.MaxSize = 0
			if tt.setup != nil {
				tt.setup()
			}
			_, err := e.importFile(t, tt.path)
			if deviceupdate.ErrorCode(err) != tt.wantCode {
				t.Fatalf("error = %v (%s), want %s", err, deviceupdate.ErrorCode(err), tt.wantCode)
			}
			if !strings.HasPrefix(deviceupdate.ErrorMessage(err), "package.cab: ") {
				t.Errorf("message %q does not name the package", deviceupdate.ErrorMessage(err))
			}
			if tree := e.tree(t); len(tree) != 0 {
				t.Errorf("a refused import left files: %v", tree)
			}
			if rules, _ := e.db.Rules(); len(rules) != 0 {
				t.Errorf("a refused import made rules: %+v", rules)
			}
		})
	}
	if n := len(e.auditEntries(t)); n != len(tests) {
		t.Errorf("%d audit entries for %d refusals", n, len(tests))
	}
}

// TestReconcileRemovesOnlyInterruptedChanges: at start, the folders the
// store recorded as being imported or cleared, and that no record names,
// are removed with the staging folder; a folder no record names that the
// store did not record is left in place and named in a warning, and so
// is an update's folder whose record survived its change.
func TestReconcileRemovesOnlyInterruptedChanges(t *testing.T) {
	e := newEnv(t)
	core, logs := observer.New(zap.WarnLevel)
	files := updatestore.New(e.data, zap.New(core))
	var res *deviceupdate.ImportResult
	for i, v := range []string{"4.0.7577.4100", "4.0.7577.4366"} {
		files := testpkg.Files{}
		testpkg.AddUpdate(t, files, "", v, testpkg.Image(1000, byte(i)), e.sign)
		var err error
		if res, err = e.importFile(t, testpkg.MakeCab(t, files)); err != nil {
			t.Fatal(err)
		}
	}
	key := res.Updates[0].Key
	kept := updatestore.Folder(e.data, key, res.Updates[0].Version)
	folder := func(v string) string {
		dir := updatestore.Folder(e.data, key, deviceupdate.MustParseVersion(v))
		os.MkdirAll(dir, 0o750)
		os.WriteFile(filepath.Join(dir, "CPE.nbt"), []byte("firmware"), 0o640)
		return dir
	}
	importing := func(v string) {
		u := &deviceupdate.StoredUpdate{RuleKey: key, Version: deviceupdate.MustParseVersion(v)}
		if err := e.db.BeginImport([]*deviceupdate.StoredUpdate{u}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// What crashes leave: an import's folder moved in before its commit,
	// an import that recorded its folder and crashed before moving it, a
	// re-staging of a committed update, a `files clear` that committed
	// and did not remove the folder, and staging files; and a folder
	// nobody recorded.
	interrupted := folder("4.0.7577.9001")
	importing("4.0.7577.9001")
	importing("4.0.7577.9002")
	importing("4.0.7577.4366")
	if cleared, err := e.db.DeleteUnreferenced(); err != nil || len(cleared) != 1 || cleared[0].Version.String() != "4.0.7577.4100" {
		t.Fatalf("DeleteUnreferenced = %v, %v", cleared, err)
	}
	clearedDir := updatestore.Folder(e.data, key, deviceupdate.MustParseVersion("4.0.7577.4100"))
	unknown := folder("4.0.7577.9003")
	os.MkdirAll(filepath.Join(e.data, updatestore.StagingDir, "import-123", "updates"), 0o750)
	os.WriteFile(filepath.Join(e.data, updatestore.StagingDir, "import-123", "package.cab"), []byte("partial"), 0o640)

	removed, err := files.Reconcile(e.db)
	if err != nil {
		t.Fatal(err)
	}
	wantRemoved := []string{clearedDir, interrupted, updatestore.Folder(e.data, key, deviceupdate.MustParseVersion("4.0.7577.9002"))}
	if strings.Join(removed, ",") != strings.Join(wantRemoved, ",") {
		t.Errorf("removed %v, want %v", removed, wantRemoved)
	}
	tests := []struct {
		name string
		path string
		want bool // still there
	}{
		{"interrupted import", interrupted, false},
		{"interrupted files clear", clearedDir, false},
		{"committed update whose re-staging was recorded", filepath.Join(kept, "CPE.nbt"), true},
		{"folder no one recorded", filepath.Join(unknown, "CPE.nbt"), true},
		{"staging", filepath.Join(e.data, updatestore.StagingDir), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat(tt.path); (err == nil) != tt.want {
				t.Errorf("%s exists: %v, want %v", tt.path, err == nil, tt.want)
			}
		})
	}
	warned := logs.FilterMessageSnippet("unaccounted for").FilterField(zap.String("dir", unknown))
	if warned.Len() != 1 || logs.FilterMessageSnippet("unaccounted for").Len() != 1 {
		t.Errorf("warnings: %v, want one naming %s", logs.All(), unknown)
	}
	if changes, err := e.db.InProgressChanges(); err != nil || len(changes) != 0 {
		t.Errorf("changes in progress after Reconcile: %v, %v", changes, err)
	}
	// A second start finds nothing to remove and warns again.
	if removed, err := files.Reconcile(e.db); err != nil || len(removed) != 0 {
		t.Errorf("second Reconcile removed %v, %v", removed, err)
	}
}

// TestImportRestages: importing a version again makes it pending again
// after a reset or a restore, with its files checked against the store;
// while it is pending or approved nothing changes; other content under its
// version is refused. Each outcome is in the audit trail.
func TestImportRestages(t *testing.T) {
	const v1, v2 = "4.0.7577.4100", "4.0.7577.4366"
	tests := []struct {
		name       string
		steps      []string // an import of a version, or a rule action
		damage     func(dir string)
		other      bool // the package claims v2 with other bytes
		wantStatus string
		wantCode   string
		wantRule   string // approved/pending/restore after
	}{
		{"reset then re-imported", []string{v1, "approve", v2, "reset"}, nil, false, deviceupdate.ImportRestaged, "", v1 + "/" + v2 + "/-"},
		{"restored away then re-imported", []string{v1, "approve", v2, "approve", "restore"}, nil, false, deviceupdate.ImportRestaged, "", v1 + "/" + v2 + "/-"},
		{"re-import of the pending version", []string{v1, "approve", v2}, nil, false, deviceupdate.ImportUnchanged, "", v1 + "/" + v2 + "/-"},
		{"re-import of the approved version", []string{v1, v2, "approve"}, nil, false, deviceupdate.ImportUnchanged, "", v2 + "/-/-"},
		{"other content under a reset version", []string{v1, "approve", v2, "reset"}, nil, true, "", deviceupdate.ECONFLICT, v1 + "/-/-"},
		{"reset, then the stored image damaged", []string{v1, "approve", v2, "reset"}, func(dir string) {
			os.WriteFile(filepath.Join(dir, "CPE.nbt"), []byte("damaged"), 0o640)
		}, false, deviceupdate.ImportRestaged, "", v1 + "/" + v2 + "/-"},
		{"reset, then the stored catalog gone", []string{v1, "approve", v2, "reset"}, func(dir string) {
			os.Remove(filepath.Join(dir, "CPE.cat"))
		}, false, deviceupdate.ImportRestaged, "", v1 + "/" + v2 + "/-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			id := deviceupdate.RuleID(deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"})
			images := map[string][]byte{v1: testpkg.Image(20000, 1), v2: testpkg.Image(30000, 2)}
			pkg := func(version string, image []byte) string {
				files := testpkg.Files{}
				testpkg.AddUpdate(t, files, "", version, image, e.sign)
				return testpkg.MakeCab(t, files)
			}
			// The same package file each time: a catalog signed again
			// differs, and with it the content.
			pkgs := map[string]string{v1: pkg(v1, images[v1]), v2: pkg(v2, images[v2])}
			for _, s := range tt.steps {
				if path, ok := pkgs[s]; ok {
					if _, err := e.importFile(t, path); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if _, _, err := e.db.ChangeRule(id, deviceupdate.RuleAction(s), nil); err != nil {
					t.Fatal(err)
				}
			}
			dir := updatestore.Folder(e.data, deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"},
				deviceupdate.MustParseVersion(v2))
			if tt.damage != nil {
				tt.damage(dir)
			}
			again := pkgs[v2]
			if tt.other {
				again = pkg(v2, testpkg.Image(30000, 3))
			}
			res, err := e.importFile(t, again)
			if deviceupdate.ErrorCode(err) != tt.wantCode {
				t.Fatalf("import again = %v, want code %q", err, tt.wantCode)
			}
			r, ferr := e.db.FindRule(id)
			if ferr != nil {
				t.Fatal(ferr)
			}
			if got := orDash(r.ApprovedVersion) + "/" + orDash(r.PendingVersion) + "/" + orDash(r.RestoreVersion); got != tt.wantRule {
				t.Errorf("rule after = %s, want %s", got, tt.wantRule)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "CPE.nbt")); !bytes.Equal(got, images[v2]) {
				t.Error("the stored image is not the one imported first")
			}
			entries := e.auditEntries(t)
			last := entries[len(entries)-1]
			if err != nil {
				if !strings.Contains(last.Result, "with other content") {
					t.Errorf("the refusal is audited as %q", last.Result)
				}
				return
			}
			if len(res.Updates) != 1 || res.Updates[0].Status != tt.wantStatus {
				t.Fatalf("result = %+v, want status %s", res.Updates, tt.wantStatus)
			}
			if err := importerCheckStored(e, dir); err != nil {
				t.Errorf("stored files after: %v", err)
			}
			if last.Action != "import" || last.Result != audit.ResultOK || !bytes.Contains(last.After, []byte(`"status":"`+tt.wantStatus+`"`)) {
				t.Errorf("audit entry = %s %s %s", last.Action, last.Result, last.After)
			}
			if tt.wantStatus == deviceupdate.ImportRestaged &&
				(!bytes.Contains(last.After, []byte(`"ruleBefore":{`)) || !bytes.Contains(last.After, []byte(`"ruleAfter":{`))) {
				t.Errorf("the re-staging is audited without the rule before and after: %s", last.After)
			}
		})
	}
}

// importerCheckStored checks that the store folder holds the three files
// the record names, with their sizes.
func importerCheckStored(e *env, dir string) error {
	u, err := e.db.FindUpdate(deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"},
		deviceupdate.MustParseVersion("4.0.7577.4366"))
	if err != nil {
		return err
	}
	for _, f := range u.Files() {
		fi, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil {
			return err
		}
		if fi.Size() != f.Size {
			return fmt.Errorf("%s: %d bytes, want %d", f.Name, fi.Size(), f.Size)
		}
	}
	return nil
}

func orDash(v deviceupdate.Version) string {
	if v.IsZero() {
		return "-"
	}
	return v.String()
}
