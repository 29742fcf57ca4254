package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// trustPublisher puts a CA's certificate in the server's trusted/ folder.
func trustPublisher(t *testing.T, srv *e2e.Server, ca *testpki.Authority) {
	t.Helper()
	testpki.WriteCert(t, filepath.Join(srv.Certs, "trusted", "publisher.pem"), ca.Cert)
}

func TestImportThroughCLI(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	image := testpkg.Image(2<<20, 7)
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", image, sign)
	pkg := testpkg.MakeCab(t, files)
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	ruleID := deviceupdate.RuleID(deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"})

	res := e2e.Run(t, "", env, "import", pkg)
	if res.Code != 0 {
		t.Fatalf("import: exit %d: %s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stdout, "UCPhone/Polycom/CX600/A/ENU/CPE") || !strings.Contains(res.Stdout, "now the pending version of rule "+ruleID) {
		t.Errorf("import output:\n%s", res.Stdout)
	}

	// Again, flags after the argument and --json: nothing changes.
	res = e2e.Run(t, "", nil, "import", pkg, "--json", "--server", srv.URL(), "--certs", srv.Certs)
	var out deviceupdate.ImportResult
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil || res.Code != 0 {
		t.Fatalf("import --json: exit %d, %v\n%s%s", res.Code, err, res.Stdout, res.Stderr)
	}
	if len(out.Updates) != 1 || out.Updates[0].Status != deviceupdate.ImportUnchanged || out.Updates[0].RuleID != ruleID {
		t.Errorf("second import = %+v", out)
	}

	// A tampered package: one line naming the file and the reason.
	bad := testpkg.Files{}
	testpkg.AddUpdate(t, bad, "", "4.0.7577.4400", image, sign)
	bad["CPE.nbt"] = append(bytes.Clone(image), '!')
	res = e2e.Run(t, "", env, "import", testpkg.MakeCab(t, bad))
	if res.Code != 1 || strings.Count(res.Stderr, "\n") != 1 || !strings.Contains(res.Stderr, "package.cab: CPE.nbt: its hash is not in CPE.cat") {
		t.Errorf("tampered import: exit %d, stderr %q", res.Code, res.Stderr)
	}
	// A wrong token.
	res = e2e.Run(t, "", env, "import", pkg, "--token", "nope")
	if res.Code != 1 || !strings.Contains(res.Stderr, "missing or invalid admin token") {
		t.Errorf("wrong token: exit %d, stderr %q", res.Code, res.Stderr)
	}

	if code := srv.Stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	db, err := store.Open(srv.Data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rules, _ := db.Rules()
	if len(rules) != 1 || rules[0].ID != ruleID || rules[0].PendingVersion.String() != "4.0.7577.4366" {
		t.Errorf("rules = %+v", rules)
	}
	dir := updatestore.Folder(srv.Data, rules[0].RuleKey, rules[0].PendingVersion)
	if got, err := os.ReadFile(filepath.Join(dir, "CPE.nbt")); err != nil || !bytes.Equal(got, image) {
		t.Errorf("stored image: %v", err)
	}
	trail, err := os.ReadFile(filepath.Join(srv.Data, audit.Dir, audit.FileName))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := audit.ReadAll(bytes.NewReader(trail))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].Result != audit.ResultOK || !strings.Contains(entries[2].Result, "its hash is not in CPE.cat") ||
		entries[0].Actor != "bootstrap" {
		t.Errorf("audit entries = %+v", entries)
	}
}

// TestRestageThroughCLI: import, approve v2, import v3, reset, import v3
// again: v3 is pending again, the CLI says it was re-staged, and the audit
// trail records the import with the rule before and after. Importing it
// once more changes nothing and says so.
func TestRestageThroughCLI(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	const key, v2, v3 = "UCPhone/Polycom/CX600/A/ENU/CPE", "4.0.7577.4200", "4.0.7577.4300"
	pkg := func(version string, seed byte) string {
		files := testpkg.Files{}
		testpkg.AddUpdate(t, files, "", version, testpkg.Image(64<<10, seed), sign)
		return testpkg.MakeCab(t, files)
	}
	run := func(args ...string) string {
		t.Helper()
		res := e2e.Run(t, "", env, args...)
		if res.Code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.Code, res.Stderr)
		}
		return res.Stdout
	}
	pending := func() string {
		t.Helper()
		var rules []deviceupdate.Rule
		if err := json.Unmarshal([]byte(run("rule", "list", "--json")), &rules); err != nil || len(rules) != 1 {
			t.Fatalf("rule list: %v %+v", err, rules)
		}
		return rules[0].PendingVersion.String()
	}
	pkgV3 := pkg(v3, 3)
	run("import", pkg(v2, 2))
	run("rule", "approve", key)
	run("import", pkgV3)
	run("rule", "reset", key)
	if got := pending(); got != "0.0.0.0" {
		t.Fatalf("pending after reset = %s", got)
	}
	out := run("import", pkgV3)
	if !strings.Contains(out, "re-staged") || !strings.Contains(out, v3) {
		t.Errorf("re-import output does not say it re-staged %s:\n%s", v3, out)
	}
	if got := pending(); got != v3 {
		t.Errorf("pending after the re-import = %s, want %s", got, v3)
	}
	if out := run("import", pkgV3); !strings.Contains(out, "already the pending version") || !strings.Contains(out, "nothing changed") {
		t.Errorf("importing the pending version again:\n%s", out)
	}
	run("rule", "approve", key)
	if out := run("import", pkgV3); !strings.Contains(out, "already the approved version") {
		t.Errorf("importing the approved version again:\n%s", out)
	}

	list := run("audit", "list", "--action", "import")
	if n := strings.Count(list, " import "); n != 5 {
		t.Errorf("audit list shows %d imports, want 5:\n%s", n, list)
	}
	js := run("audit", "list", "--action", "import", "--json")
	for _, want := range []string{`"status":"re-staged"`, `"ruleBefore":{`, `"pendingVersion":"` + v3 + `"`} {
		if !strings.Contains(js, want) {
			t.Errorf("audit list --json lacks %s:\n%s", want, js)
		}
	}
}
