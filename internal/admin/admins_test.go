package admin_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
)

// clock is a settable time for the services under test, which call it
// from the test's goroutine only.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }

func newAdmins(t *testing.T) (*admin.Service, *admin.Admins, *clock) {
	t.Helper()
	s, _ := openService(t)
	c := &clock{t: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)}
	s.Now = c.now
	return s, admin.NewAdmins(s), c
}

const alicePassword = "correct horse battery"

// trailActions lists the trail's entries as "actor action target result".
func trailActions(t *testing.T, s *admin.Service, prefix string) []string {
	t.Helper()
	list, err := s.AuditEntries(context.Background(), deviceupdate.AuditFilter{Action: prefix})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Entries {
		out = append(out, e.Actor+" "+e.Action+" "+e.Target+" "+e.Result)
	}
	return out
}

func TestAdminsAndTokensAreAudited(t *testing.T) {
	s, a, clk := newAdmins(t)
	ctx := context.Background()
	alice, err := a.AddAdmin(ctx, "alice", deviceupdate.RoleOperator, alicePassword, "bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	if alice.Role != deviceupdate.RoleOperator || !alice.HasPassword || alice.CreatedBy != "bootstrap" {
		t.Errorf("added %+v", alice)
	}
	if _, err := a.AddAdmin(ctx, "bob", deviceupdate.RoleViewer, "", "alice"); err != nil {
		t.Fatal(err)
	}
	refusals := []struct {
		name, admin string
		role        deviceupdate.Role
		password    string
		want        string
	}{
		{"name taken in another case", "ALICE", deviceupdate.RoleAdmin, "", deviceupdate.ECONFLICT},
		{"bootstrap is reserved", "Bootstrap", deviceupdate.RoleAdmin, "", deviceupdate.ECONFLICT},
		{"unknown role", "carol", "root", "", deviceupdate.EINVALID},
		{"bad name", "carol smith", deviceupdate.RoleViewer, "", deviceupdate.EINVALID},
		{"short password", "carol", deviceupdate.RoleViewer, "short", deviceupdate.EINVALID},
	}
	for _, tt := range refusals {
		if _, err := a.AddAdmin(ctx, tt.admin, tt.role, tt.password, "alice"); deviceupdate.ErrorCode(err) != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	list, err := a.Admins(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" || list[1].HasPassword {
		t.Fatalf("Admins = %+v, %v", list, err)
	}

	logins := []struct {
		name, admin, password string
		ok                    bool
	}{
		{"right password", "alice", alicePassword, true},
		{"name in another case", "Alice", alicePassword, true},
		{"wrong password", "alice", alicePassword + "!", false},
		{"token-only admin", "bob", "", false},
		{"unknown admin", "mallory", alicePassword, false},
	}
	for _, tt := range logins {
		got, err := a.Authenticate(ctx, tt.admin, tt.password)
		if tt.ok && (err != nil || got.Name != "alice") || !tt.ok && deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
			t.Errorf("%s: %+v, %v", tt.name, got, err)
		}
		if !tt.ok && deviceupdate.ErrorMessage(err) != "wrong user name or password" {
			t.Errorf("%s: message %q tells more than the others", tt.name, deviceupdate.ErrorMessage(err))
		}
	}

	secret, tok, err := a.NewToken(ctx, "ALICE", 0, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, admin.TokenPrefix) || len(secret) != 46 || tok.Admin != "alice" || tok.ID == "" || strings.Contains(secret, tok.ID) ||
		tok.ExpiresAt.Sub(tok.CreatedAt) != deviceupdate.DefaultTokenTTL {
		t.Errorf("token %q %+v", secret, tok)
	}
	if got, err := a.TokenAdmin(ctx, secret); err != nil || got.Name != "alice" || got.Role != deviceupdate.RoleOperator {
		t.Errorf("TokenAdmin = %+v, %v", got, err)
	}
	clk.add(time.Second)
	short, _, err := a.NewToken(ctx, "alice", time.Hour, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		admin string
		ttl   time.Duration
		want  string
	}{
		{"too long", "alice", deviceupdate.MaxTokenTTL + time.Hour, deviceupdate.EINVALID},
		{"negative", "alice", -time.Hour, deviceupdate.EINVALID},
		{"unknown admin", "mallory", time.Hour, deviceupdate.ENOTFOUND},
	} {
		if _, _, err := a.NewToken(ctx, tt.admin, tt.ttl, "alice"); deviceupdate.ErrorCode(err) != tt.want {
			t.Errorf("token %s: %v, want %s", tt.name, err, tt.want)
		}
	}
	clk.add(time.Hour)
	for _, bad := range []string{short, secret[:len(secret)-1], "du_" + strings.Repeat("A", 43), "", secret + "x"} {
		if _, err := a.TokenAdmin(ctx, bad); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED || deviceupdate.ErrorMessage(err) != "missing or invalid admin token" {
			t.Errorf("TokenAdmin(%q) = %v", bad, err)
		}
	}
	toks, err := a.Tokens(ctx, "alice")
	if err != nil || len(toks) != 2 || toks[0].ID != tok.ID || !toks[1].Expired(clk.now()) {
		t.Errorf("Tokens = %+v, %v", toks, err)
	}
	if err := a.RevokeToken(ctx, "alice", tok.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TokenAdmin(ctx, secret); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("a revoked token works: %v", err)
	}
	if err := a.RevokeToken(ctx, "bob", toks[1].ID, "bob"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("bob revoked alice's token: %v", err)
	}

	// Removing an admin ends their tokens and sessions at once.
	live, _, err := a.NewToken(ctx, "alice", 0, "bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	session, _, err := a.SignIn(ctx, "alice", alicePassword, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveAdmin(ctx, "Alice", "bootstrap"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TokenAdmin(ctx, live); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("a removed admin's token works: %v", err)
	}
	if _, err := a.Session(ctx, session); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("a removed admin's session works: %v", err)
	}
	// The same name again is a new admin: the old tokens stay dead.
	if _, err := a.AddAdmin(ctx, "alice", deviceupdate.RoleAdmin, "", "bootstrap"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TokenAdmin(ctx, live); err == nil {
		t.Error("a token of a removed admin works for the new admin of that name")
	}
	if err := a.RemoveAdmin(ctx, "carol", "bootstrap"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("remove unknown = %v", err)
	}

	got := strings.Join(trailActions(t, s, "admin."), "\n")
	want := strings.Join([]string{
		"bootstrap admin.add alice ok",
		"alice admin.add bob ok",
		"alice admin.add ALICE an admin named \"ALICE\" exists; remove them first or choose another name",
		"alice admin.add Bootstrap \"Bootstrap\" is the name of the admin.token's holder; choose another name",
		"alice admin.add carol role \"root\": want viewer, operator or admin",
		"alice admin.add carol smith admin name \"carol smith\": want 1-64 letters, digits, '.', '-', '_' or '@', starting with a letter or a digit",
		"alice admin.add carol password: too short (5 characters); want at least 12",
		"alice admin.token.create alice ok",
		"alice admin.token.create alice ok",
		"alice admin.token.create alice token lifetime 8785h0m0s: want up to 366 days",
		"alice admin.token.create alice token lifetime -1h0m0s: want up to 366 days",
		"alice admin.token.create mallory no admin named \"mallory\"; `deviceupdate admin list` shows them",
		"alice admin.token.revoke alice ok",
		"bob admin.token.revoke bob bob has no token \"" + toks[1].ID + "\"; `deviceupdate admin token bob --list` shows them",
		"bootstrap admin.token.create alice ok",
		"alice admin.signin alice ok",
		"bootstrap admin.remove alice ok",
		"bootstrap admin.add alice ok",
		"bootstrap admin.remove carol no admin named \"carol\"; `deviceupdate admin list` shows them",
	}, "\n")
	if got != want {
		t.Errorf("trail:\n%s\nwant:\n%s", got, want)
	}
	trail, err := os.ReadFile(s.DB.AuditLocation())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{alicePassword, "$2a$", "passwordHash", secret, live, session, "csrf"} {
		if bytes.Contains(trail, []byte(secret)) {
			t.Errorf("the audit trail holds %q", secret)
		}
	}
}

// TestTokenBounds: an admin holds at most MaxTokensPerAdmin live tokens;
// expired ones are pruned when a new one is made, and make room.
func TestTokenBounds(t *testing.T) {
	_, a, clk := newAdmins(t)
	ctx := context.Background()
	if _, err := a.AddAdmin(ctx, "ci", deviceupdate.RoleOperator, "", "bootstrap"); err != nil {
		t.Fatal(err)
	}
	for i := range admin.MaxTokensPerAdmin {
		ttl := time.Duration(0)
		if i < 10 {
			ttl = time.Hour
		}
		if _, _, err := a.NewToken(ctx, "ci", ttl, "ci"); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	_, _, err := a.NewToken(ctx, "ci", 0, "ci")
	if deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT || !strings.Contains(err.Error(), "revoke one first") {
		t.Fatalf("token past the bound: %v", err)
	}
	clk.add(2 * time.Hour)
	if _, _, err := a.NewToken(ctx, "ci", 0, "ci"); err != nil {
		t.Fatalf("a token once 10 expired: %v", err)
	}
	if toks, err := a.Tokens(ctx, "ci"); err != nil || len(toks) != admin.MaxTokensPerAdmin-10+1 {
		t.Errorf("after pruning: %d tokens, %v", len(toks), err)
	}
}

// TestSessions: a session works until idle or too old; sign-out ends it;
// each admin keeps at most MaxSessionsPerAdmin, the oldest ending first;
// sign-ins and sign-outs are audited, refused sign-ins are not.
func TestSessions(t *testing.T) {
	s, a, clk := newAdmins(t)
	ctx := context.Background()
	if _, err := a.AddAdmin(ctx, "alice", deviceupdate.RoleOperator, alicePassword, "bootstrap"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.SignIn(ctx, "alice", "wrong password!", "10.0.0.1"); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Fatalf("wrong password: %v", err)
	}
	secret, sess, err := a.SignIn(ctx, "alice", alicePassword, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if sess.Admin.Name != "alice" || sess.Admin.Role != deviceupdate.RoleOperator || len(sess.CSRF) < 40 || len(secret) < 40 {
		t.Errorf("session %+v", sess)
	}
	// Kept alive by requests, it still ends after SessionMaxAge.
	for range 24 {
		clk.add(deviceupdate.SessionIdle - time.Minute)
		if got, err := a.Session(ctx, secret); err != nil || got.CSRF != sess.CSRF {
			t.Fatalf("after %v: %v", clk.now().Sub(sess.CreatedAt), err)
		}
	}
	clk.add(deviceupdate.SessionIdle - time.Minute)
	if _, err := a.Session(ctx, secret); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("a session of %v works: %v", clk.now().Sub(sess.CreatedAt), err)
	}

	idle, _, err := a.SignIn(ctx, "alice", alicePassword, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	clk.add(deviceupdate.SessionIdle)
	if _, err := a.Session(ctx, idle); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("an idle session works: %v", err)
	}

	var secrets []string
	for range admin.MaxSessionsPerAdmin + 1 {
		clk.add(time.Second)
		sec, _, err := a.SignIn(ctx, "alice", alicePassword, "10.0.0.2")
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, sec)
	}
	if _, err := a.Session(ctx, secrets[0]); err == nil {
		t.Error("the oldest session works past the bound")
	}
	if _, err := a.Session(ctx, secrets[1]); err != nil {
		t.Errorf("the second session: %v", err)
	}
	if err := a.SignOut(ctx, secrets[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(ctx, secrets[1]); err == nil {
		t.Error("a session works after sign-out")
	}
	if err := a.SignOut(ctx, secrets[1]); err != nil {
		t.Errorf("signing out twice: %v", err)
	}
	var got []string
	for _, e := range trailActions(t, s, "admin.") {
		if strings.Contains(e, " admin.sign") {
			got = append(got, e)
		}
	}
	want := fmt.Sprint(append(append([]string{}, repeat("alice admin.signin alice ok", 2+admin.MaxSessionsPerAdmin+1)...), "alice admin.signout alice ok"))
	if fmt.Sprint(got) != want {
		t.Errorf("trail: %q", got)
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestSignInThrottle: failed sign-ins spend the budget of their source and
// of the name; past either, sign-ins are refused unchecked, the right
// password too, until the budget refills.
func TestSignInThrottle(t *testing.T) {
	_, a, clk := newAdmins(t)
	ctx := context.Background()
	for _, name := range []string{"alice", "bob"} {
		if _, err := a.AddAdmin(ctx, name, deviceupdate.RoleViewer, alicePassword, "bootstrap"); err != nil {
			t.Fatal(err)
		}
	}
	throttled := func(err error) bool { return err != nil && strings.Contains(err.Error(), "too many failed sign-ins") }

	// One source guessing many names.
	for i := range 10 {
		if _, _, err := a.SignIn(ctx, fmt.Sprintf("user%d", i), "guess guess guess", "192.0.2.1"); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED || throttled(err) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, _, err := a.SignIn(ctx, "bob", alicePassword, "192.0.2.1"); !throttled(err) {
		t.Errorf("the right password from a source past its budget: %v", err)
	}
	if _, _, err := a.SignIn(ctx, "bob", alicePassword, "192.0.2.2"); err != nil {
		t.Errorf("another source is throttled too: %v", err)
	}

	// Many sources guessing one name; an IPv6 /64 is one source.
	for i := range 10 {
		if _, _, err := a.SignIn(ctx, "Alice", "guess guess guess", fmt.Sprintf("198.51.100.%d", i)); throttled(err) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, _, err := a.SignIn(ctx, "alice", alicePassword, "203.0.113.9"); !throttled(err) {
		t.Errorf("the right password for a name past its budget: %v", err)
	}
	clk.add(30 * time.Second)
	if _, _, err := a.SignIn(ctx, "alice", alicePassword, "203.0.113.9"); err != nil {
		t.Errorf("once the name's budget refilled: %v", err)
	}
	for i := range 10 {
		if _, _, err := a.SignIn(ctx, "bob", "guess guess guess", fmt.Sprintf("2001:db8::%x", i+1)); throttled(err) {
			t.Fatalf("IPv6 guess %d: %v", i, err)
		}
	}
	if _, _, err := a.SignIn(ctx, "carol", "guess guess guess", "2001:db8::ffff"); !throttled(err) {
		t.Errorf("another address of the same /64: %v", err)
	}
}
