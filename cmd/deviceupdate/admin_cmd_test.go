package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestAdminsEndToEnd: against the real binary, an operator's personal
// token approves a rule and the trail names the operator; a viewer's
// token is refused the approval with the role it lacks; a revoked token
// is refused; the admin.token still works, as bootstrap.
func TestAdminsEndToEnd(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	env := adminEnv(srv)
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", testpkg.Image(64<<10, 1), testpkg.NewSigner(t, ca, testpki.Options{}))
	mustRun(t, env, "import", testpkg.MakeCab(t, files))
	const rule = "UCPhone/Polycom/CX600/A/ENU/CPE"

	if out := mustRun(t, env, "admin", "add", "olivia", "--role", "operator", "--no-password"); out != "added operator \"olivia\"\n" {
		t.Errorf("admin add: %q", out)
	}
	if res := runStdin(t, env, "a long console password\n", "admin", "add", "--password-stdin", "vera", "--role=viewer"); res.Code != 0 {
		t.Fatalf("admin add vera: %d %s", res.Code, res.Stderr)
	}
	var admins []deviceupdate.Admin
	if err := json.Unmarshal([]byte(mustRun(t, env, "admin", "list", "--json")), &admins); err != nil || len(admins) != 2 ||
		admins[0].Name != "olivia" || admins[0].Role != deviceupdate.RoleOperator || admins[0].HasPassword ||
		admins[1].Name != "vera" || !admins[1].HasPassword || admins[1].CreatedBy != deviceupdate.BootstrapAdmin {
		t.Fatalf("admin list: %+v %v", admins, err)
	}

	res := e2e.Run(t, "", env, "admin", "token", "olivia", "--expires", "30d")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "du_") || strings.Count(res.Stdout, "\n") != 1 || !strings.Contains(res.Stderr, "shown only this once") {
		t.Fatalf("admin token: %d %q %q", res.Code, res.Stdout, res.Stderr)
	}
	olivia := append(adminEnv(srv), "DEVICEUPDATE_TOKEN="+strings.TrimSpace(res.Stdout))
	vera := append(adminEnv(srv), "DEVICEUPDATE_TOKEN="+strings.TrimSpace(mustRun(t, env, "admin", "token", "vera")))

	// A viewer reads, and is refused what needs an operator.
	mustRun(t, vera, "rule", "list")
	if res := e2e.Run(t, "", vera, "rule", "approve", rule); res.Code != 1 || !strings.Contains(res.Stderr, "operator role required; vera is a viewer") {
		t.Errorf("a viewer approves: %d %q", res.Code, res.Stderr)
	}
	if res := e2e.Run(t, "", vera, "admin", "token", "olivia", "--list"); res.Code != 1 || !strings.Contains(res.Stderr, "admin role required") {
		t.Errorf("a viewer lists another admin's tokens: %d %q", res.Code, res.Stderr)
	}
	if res := e2e.Run(t, "", vera, "admin", "token", "vera", "--list"); res.Code != 0 || strings.Count(res.Stdout, "live") != 1 {
		t.Errorf("a viewer lists her own tokens: %d %q %q", res.Code, res.Stdout, res.Stderr)
	}

	mustRun(t, olivia, "rule", "approve", rule)
	var trail struct{ Entries []deviceupdate.AuditEntry }
	if err := json.Unmarshal([]byte(mustRun(t, env, "audit", "list", "--json")), &trail); err != nil {
		t.Fatal(err)
	}
	var who []string
	for _, e := range trail.Entries {
		who = append(who, e.Actor+" "+e.Action+" "+e.Target+" "+e.Result)
	}
	want := []string{
		"bootstrap import",
		"bootstrap admin.add olivia ok",
		"bootstrap admin.add vera ok",
		"bootstrap admin.token.create olivia ok",
		"bootstrap admin.token.create vera ok",
		"olivia rule.approve",
	}
	if len(who) != len(want) {
		t.Fatalf("trail:\n%s", strings.Join(who, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(who[i], want[i]) || !strings.HasSuffix(who[i], " ok") {
			t.Errorf("trail entry %d: %q, want %q ... ok", i, who[i], want[i])
		}
	}

	var toks []deviceupdate.AdminToken
	if err := json.Unmarshal([]byte(mustRun(t, env, "admin", "token", "olivia", "--list", "--json")), &toks); err != nil || len(toks) != 1 {
		t.Fatalf("tokens: %+v %v", toks, err)
	}
	if out := mustRun(t, env, "admin", "token", "olivia", "--revoke", toks[0].ID); !strings.Contains(out, "revoked token "+toks[0].ID) {
		t.Errorf("revoke: %q", out)
	}
	if res := e2e.Run(t, "", olivia, "rule", "list"); res.Code != 1 || !strings.Contains(res.Stderr, "missing or invalid admin token") {
		t.Errorf("a revoked token: %d %q", res.Code, res.Stderr)
	}
	if res := e2e.Run(t, "", env, "admin", "remove", "vera"); res.Code != 2 || !strings.Contains(res.Stderr, "--yes") {
		t.Errorf("remove without --yes off a terminal: %d %q", res.Code, res.Stderr)
	}
	mustRun(t, env, "admin", "remove", "--yes", "vera")
	if res := e2e.Run(t, "", vera, "rule", "list"); res.Code != 1 || !strings.Contains(res.Stderr, "missing or invalid admin token") {
		t.Errorf("a removed admin's token: %d %q", res.Code, res.Stderr)
	}
	if out := mustRun(t, env, "audit", "list", "--action", "admin."); !strings.Contains(out, "admin.remove") {
		t.Errorf("audit list after remove: %s", out)
	}
}

// TestAdminUsage: wrong usage exits 2 with one line, before anything is
// asked of the server.
func TestAdminUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no role", []string{"admin", "add", "alice"}, "needs --role"},
		{"unknown role", []string{"admin", "add", "alice", "--role", "root"}, `role "root"`},
		{"two password sources", []string{"admin", "add", "alice", "--role", "viewer", "--no-password", "--password-stdin"}, "exclude each other"},
		{"no name", []string{"admin", "token"}, "takes one NAME"},
		{"two modes", []string{"admin", "token", "alice", "--list", "--revoke", "abc"}, "exclude each other"},
		{"bad expiry", []string{"admin", "token", "alice", "--expires", "soon"}, "--expires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e2e.Run(t, "", []string{"DEVICEUPDATE_SERVER=https://127.0.0.1:1"}, tt.args...)
			if res.Code != 2 || !strings.Contains(res.Stderr, tt.want) || strings.Count(res.Stderr, "\n") != 1 {
				t.Errorf("exit %d %q, want 2 with %q", res.Code, res.Stderr, tt.want)
			}
		})
	}
}
