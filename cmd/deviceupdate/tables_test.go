package main_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestTablesFitLongValues fills every admin table with values longer than
// their columns used to be (a 60-character host name, a long model, long
// names) and checks that each column starts where its heading does, after
// two spaces, on every line; and that counts of one are singular.
func TestTablesFitLongValues(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	run := func(args ...string) string {
		t.Helper()
		res := e2e.Run(t, "", env, args...)
		if res.Code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.Code, res.Stderr)
		}
		return res.Stdout
	}
	const model = "CX600-Conference-Edition-Long-Name"
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, model+"/", "4.0.7577.4100", testpkg.Image(16<<10, 1), testpkg.NewSigner(t, ca, testpki.Options{}))
	pkg := testpkg.MakeCab(t, files)
	run("import", pkg)
	run("rule", "reset", "UCPhone/Polycom/"+model+"/A/ENU/CPE")
	run("config", "set", "InternalHostName=ucupdates-r2.a-very-long-internal-domain-name.contoso.com")
	run("site", "set", "Redmond-Building-42-Third-Floor-East", "--subnet", "10.1.0.0/16", "--subnet", "10.2.0.0/16")
	run("testdevice", "add", "--name", "Lab CX600 on the third floor in the east wing", "--serial", "SN-0123456789-ABCDEFGHIJ-0123456789", "--site", "Redmond-Building-42-Third-Floor-East")
	if _, stderr, code := runWithInput(t, env, strings.NewReader("correct horse battery staple\n"),
		"user", "add", "phone-redmond-building-42-third-floor-east-wing", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	q := logQuery("00:04:f2:00:00:43", "CELog", "celog-from-the-phone-on-the-third-floor-east-wing-of-building-42.clg")
	if code, msg := uploadLog(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/Files", q, []byte("CE log line\r\n"), false); code != 200 {
		t.Fatalf("log upload: %d %s", code, msg)
	}

	for _, args := range [][]string{
		{"config", "get"},
		{"config", "get", "--site", "Redmond-Building-42-Third-Floor-East"},
		{"rule", "list"},
		{"site", "list"},
		{"testdevice", "list"},
		{"user", "list"},
		{"logs", "list"},
		{"cab", "list", pkg},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			checkColumns(t, run(args...))
		})
	}

	// One of a thing is singular.
	if out := run("files", "clear", "--yes"); !strings.Contains(out, " in 1 version\n") {
		t.Errorf("files clear: %q, want \"in 1 version\"", out)
	}
	if out := run("logs", "clear", "--days-back", "1"); !strings.HasSuffix(out, "older than 1 day\n") {
		t.Errorf("logs clear: %q, want \"older than 1 day\"", out)
	}
}

// columnGap splits a heading line into its headings, which may hold single
// spaces ("CREATED BY").
var columnGap = regexp.MustCompile(`\S+( \S+)*`)

// checkColumns fails unless, on every line of the table, each column's
// cell starts where its heading starts, after at least two spaces (an
// empty cell is spaces up to the next column).
func checkColumns(t *testing.T, table string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("no rows under the headings:\n%s", table)
	}
	var starts []int
	for _, loc := range columnGap.FindAllStringIndex(lines[0], -1) {
		starts = append(starts, loc[0])
	}
	for _, l := range lines[1:] {
		for i, s := range starts[1:] {
			next := len(l)
			if i+2 < len(starts) {
				next = min(starts[i+2], len(l))
			}
			blank := len(l) <= s || strings.TrimSpace(l[s:next]) == ""
			if !blank && (l[s] == ' ' || l[s-2:s] != "  ") {
				t.Errorf("the column at %d runs into the one before, or is misplaced, on %q:\n%s", s, l, table)
				return
			}
		}
	}
}
