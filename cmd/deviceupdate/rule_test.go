package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// ruleServer starts the server trusting a publisher, and returns the
// CLI's environment for it, a maker of that publisher's CX600 packages
// (the path of a cab of the given version), and a runner of the CLI that
// fails the test on a non-zero exit.
func ruleServer(t *testing.T) (srv *e2e.Server, env []string, pkg func(version string) string, run func(args ...string) e2e.Result) {
	t.Helper()
	srv = e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	env = []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	pkg = func(version string) string {
		files := testpkg.Files{}
		testpkg.AddUpdate(t, files, "", version, testpkg.Image(64<<10, byte(len(version))), sign)
		return testpkg.MakeCab(t, files)
	}
	run = func(args ...string) e2e.Result {
		t.Helper()
		res := e2e.Run(t, "", env, args...)
		if res.Code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.Code, res.Stderr)
		}
		return res
	}
	return srv, env, pkg, run
}

// ruleState is the first rule's versions as `rule list` shows them, or
// "no rule".
func ruleState(t *testing.T, run func(args ...string) e2e.Result) string {
	t.Helper()
	var rules []deviceupdate.Rule
	if err := json.Unmarshal([]byte(run("rule", "list", "--json").Stdout), &rules); err != nil {
		t.Fatal(err)
	}
	if len(rules) == 0 {
		return "no rule"
	}
	r := rules[0]
	return fmt.Sprintf("approved %s pending %s restore %s", orDash(r.ApprovedVersion), orDash(r.PendingVersion), orDash(r.RestoreVersion))
}

// TestRuleLifecycleThroughCLI: import → approve → import → reset → import
// → approve → restore → remove, each step checked; then the audit trail
// verifies, and altering one byte of it makes `audit verify` fail.
func TestRuleLifecycleThroughCLI(t *testing.T) {
	srv, env, pkg, run := ruleServer(t)
	key := "UCPhone/Polycom/CX600/A/ENU/CPE"
	state := func() string { t.Helper(); return ruleState(t, run) }

	versionDir := func(v string) string {
		return filepath.Join(srv.Data, "DeviceUpdateStore/UCPhone/Polycom/CX600/A/ENU", v, "CPE")
	}
	clear := func(want ...string) func() {
		return func() {
			t.Helper()
			var res deviceupdate.ClearResult
			if err := json.Unmarshal([]byte(run("files", "clear", "--yes", "--json").Stdout), &res); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range res.Removed {
				got = append(got, u.Version.String())
				if _, err := os.Stat(versionDir(u.Version.String())); err == nil {
					t.Errorf("files clear left %s on disk", u.Version)
				}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") || res.Bytes <= 0 {
				t.Errorf("files clear removed %v (%d bytes), want %v", got, res.Bytes, want)
			}
		}
	}
	steps := []struct {
		args  []string
		want  string
		after func()
	}{
		{[]string{"import", pkg("4.0.7577.4100")}, "approved - pending 4.0.7577.4100 restore -", nil},
		{[]string{"rule", "approve", key}, "approved 4.0.7577.4100 pending - restore -", nil},
		{[]string{"import", pkg("4.0.7577.4366")}, "approved 4.0.7577.4100 pending 4.0.7577.4366 restore -", nil},
		{[]string{"rule", "reset", key}, "approved 4.0.7577.4100 pending - restore -", nil},
		{[]string{"import", pkg("4.0.7577.4400")}, "approved 4.0.7577.4100 pending 4.0.7577.4400 restore -", nil},
		{[]string{"rule", "approve", deviceupdate.RuleID(deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"})},
			"approved 4.0.7577.4400 pending - restore 4.0.7577.4100", nil},
		{[]string{"rule", "restore", key}, "approved 4.0.7577.4100 pending - restore -", func() {
			clear("4.0.7577.4366", "4.0.7577.4400")()
			if _, err := os.Stat(versionDir("4.0.7577.4100")); err != nil {
				t.Errorf("files clear removed the approved version: %v", err)
			}
		}},
		{[]string{"rule", "remove", key, "--yes"}, "no rule", clear("4.0.7577.4100")},
	}
	for _, s := range steps {
		run(s.args...)
		if got := state(); got != s.want {
			t.Fatalf("after %v: %s, want %s", s.args[:2], got, s.want)
		}
		if s.after != nil {
			s.after()
		}
	}

	// Bad input: a specific message, exit 1 (2 for a malformed key), nothing changed.
	for _, bad := range []struct {
		args     []string
		wantCode int
		wantText string
	}{
		{[]string{"rule", "approve", key}, 1, "no rule"},
		{[]string{"rule", "approve", "UCPhone/Polycom/../A/ENU/CPE"}, 2, `Model ".."`},
		{[]string{"rule", "frobnicate", key}, 2, "unknown command"},
	} {
		res := e2e.Run(t, "", env, bad.args...)
		if res.Code != bad.wantCode || !strings.Contains(res.Stderr, bad.wantText) {
			t.Errorf("%v: exit %d %q; want %d and %q", bad.args, res.Code, res.Stderr, bad.wantCode, bad.wantText)
		}
	}

	// The audit trail holds every action and verifies.
	var list deviceupdate.AuditList
	if err := json.Unmarshal([]byte(run("audit", "list", "--action", "rule.", "--json").Stdout), &list); err != nil {
		t.Fatal(err)
	}
	entries := list.Entries
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, ","); got != "rule.approve,rule.reset,rule.approve,rule.restore,rule.remove" {
		t.Errorf("audited rule actions = %s", got)
	}
	if len(entries) > 0 && (len(entries[0].Before) == 0 || len(entries[0].After) == 0 || entries[0].Actor != "bootstrap") {
		t.Errorf("an approval is audited without who, before or after: %+v", entries[0])
	}
	if res := run("audit", "verify"); !strings.Contains(res.Stdout, "audit trail intact: 10 entries") {
		t.Errorf("audit verify: %s", res.Stdout)
	}

	// One byte altered: verify names the entry and fails.
	path := filepath.Join(srv.Data, audit.Dir, audit.FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`"approvedVersion":"4.0.7577.4400"`))
	if i < 0 {
		t.Fatal("the trail does not record the approval")
	}
	data[i+len(`"approvedVersion":"4.0.7577.44`)] = '9'
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	res := e2e.Run(t, "", env, "audit", "verify")
	line := bytes.Count(data[:i], []byte("\n")) + 1
	if res.Code != 1 || !strings.Contains(res.Stderr, fmt.Sprintf("broken at line %d", line)) || !strings.Contains(res.Stderr, "altered") {
		t.Errorf("audit verify after tampering: exit %d %q, want a failure at line %d", res.Code, res.Stderr, line)
	}
}

func orDash(v deviceupdate.Version) string {
	if v.IsZero() {
		return "-"
	}
	return v.String()
}
