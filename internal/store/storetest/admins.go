package storetest

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// t0 is the tests' clock: the stores take their time from their callers.
var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

// addAdmin adds an admin, with a password unless it is "".
func addAdmin(t *testing.T, db store.Store, name string, role deviceupdate.Role, password string) {
	t.Helper()
	var hash store.PasswordHash
	if password != "" {
		var err error
		if hash, err = store.HashPassword(password); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddAdmin(deviceupdate.Admin{Name: name, Role: role, CreatedAt: t0, CreatedBy: deviceupdate.BootstrapAdmin, HasPassword: password != ""}, hash); err != nil {
		t.Fatal(err)
	}
}

func secret(s string) store.SecretHash { return sha256.Sum256([]byte(s)) }

// testAdmins: names are unique in any case and "bootstrap" is reserved;
// lists carry no hash; a password checks out only for its admin, every
// failure alike.
func testAdmins(t *testing.T, open Opener) {
	db := open(t)
	addAdmin(t, db, "Zoe", deviceupdate.RoleViewer, "")
	addAdmin(t, db, "alice", deviceupdate.RoleOperator, AlicePassword)
	for _, name := range []string{"ALICE", "Bootstrap"} {
		if err := db.CheckAdminFree(name); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
			t.Errorf("CheckAdminFree(%q) = %v, want ECONFLICT", name, err)
		}
		if err := db.AddAdmin(deviceupdate.Admin{Name: name, Role: deviceupdate.RoleAdmin}, ""); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
			t.Errorf("AddAdmin(%q) = %v, want ECONFLICT", name, err)
		}
	}
	if err := db.CheckAdminFree("bob"); err != nil {
		t.Errorf("CheckAdminFree of a free name = %v", err)
	}
	admins, err := db.Admins()
	if err != nil || len(admins) != 2 || admins[0].Name != "alice" || admins[1].Name != "Zoe" ||
		admins[0].Role != deviceupdate.RoleOperator || !admins[0].HasPassword || admins[1].HasPassword || !admins[0].CreatedAt.Equal(t0) {
		t.Fatalf("admins = %+v, %v", admins, err)
	}
	if a, err := db.FindAdmin("ALICE"); err != nil || a.Name != "alice" {
		t.Errorf("FindAdmin in another case = %+v, %v", a, err)
	}
	if _, err := db.FindAdmin("nobody"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("FindAdmin of nobody = %v, want ENOTFOUND", err)
	}

	ctx := context.Background()
	if a, err := db.CheckAdminPassword(ctx, "Alice", AlicePassword); err != nil || a.Name != "alice" || a.Role != deviceupdate.RoleOperator {
		t.Fatalf("right password = %+v, %v", a, err)
	}
	var first string
	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", "alice", AlicePassword + "!"},
		{"unknown admin", "mallory", AlicePassword},
		{"admin without a password", "Zoe", ""},
		{"bootstrap", deviceupdate.BootstrapAdmin, AlicePassword},
	} {
		_, err := db.CheckAdminPassword(ctx, tc.user, tc.password)
		if deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
			t.Errorf("%s: %v, want EUNAUTHORIZED", tc.name, err)
			continue
		}
		if first == "" {
			first = err.Error()
		}
		if err.Error() != first {
			t.Errorf("%s: %q differs from %q: it tells one failure from another", tc.name, err, first)
		}
	}
}

// testAdminTokens: a token works until it expires or is revoked; an
// admin's expired tokens go when another is made; past the limit of live
// ones a new one is refused.
func testAdminTokens(t *testing.T, open Opener) {
	db := open(t)
	addAdmin(t, db, "alice", deviceupdate.RoleAdmin, "")
	token := func(id string, created time.Time, ttl time.Duration) deviceupdate.AdminToken {
		return deviceupdate.AdminToken{ID: id, Admin: "alice", CreatedAt: created, ExpiresAt: created.Add(ttl)}
	}
	if _, err := db.AddAdminToken(token("aaaa", t0, time.Hour), secret("a"), t0, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddAdminToken(token("bbbb", t0.Add(time.Minute), 24*time.Hour), secret("b"), t0.Add(time.Minute), 2); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddAdminToken(token("cccc", t0.Add(2*time.Minute), time.Hour), secret("c"), t0.Add(2*time.Minute), 2); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Errorf("a token past the limit = %v, want ECONFLICT", err)
	}
	if _, err := db.AddAdminToken(deviceupdate.AdminToken{ID: "dddd", Admin: "nobody", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}, secret("d"), t0, 2); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("a token of nobody = %v, want ENOTFOUND", err)
	}
	a, tok, err := db.TokenAdmin(secret("a"), t0.Add(30*time.Minute))
	if err != nil || a.Name != "alice" || a.Role != deviceupdate.RoleAdmin || tok.ID != "aaaa" {
		t.Fatalf("TokenAdmin = %+v %+v, %v", a, tok, err)
	}
	for _, tc := range []struct {
		name string
		hash store.SecretHash
		at   time.Time
	}{
		{"expired", secret("a"), t0.Add(time.Hour)},
		{"unknown", secret("x"), t0},
		{"refused past the limit", secret("c"), t0.Add(3 * time.Minute)},
	} {
		if _, _, err := db.TokenAdmin(tc.hash, tc.at); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
			t.Errorf("%s token = %v, want EUNAUTHORIZED", tc.name, err)
		}
	}
	tokens, err := db.AdminTokens("ALICE")
	if err != nil || len(tokens) != 2 || tokens[0].ID != "aaaa" || tokens[1].ID != "bbbb" {
		t.Fatalf("tokens = %+v, %v; want both, oldest first", tokens, err)
	}
	if _, err := db.AdminTokens("nobody"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("tokens of nobody = %v, want ENOTFOUND", err)
	}
	// Once the first has expired, it makes room.
	expired, err := db.AddAdminToken(token("cccc", t0.Add(2*time.Hour), time.Hour), secret("c"), t0.Add(2*time.Hour), 2)
	if err != nil || expired != 1 {
		t.Fatalf("a token once one expired = %d expired, %v", expired, err)
	}
	if tokens, _ := db.AdminTokens("alice"); len(tokens) != 2 || tokens[0].ID != "bbbb" || tokens[1].ID != "cccc" {
		t.Errorf("tokens after the expired one went: %+v", tokens)
	}
	revoked, err := db.RevokeAdminToken("alice", "bbbb")
	if err != nil || revoked.ID != "bbbb" {
		t.Fatalf("revoke = %+v, %v", revoked, err)
	}
	if _, _, err := db.TokenAdmin(secret("b"), t0.Add(2*time.Hour)); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("a revoked token = %v, want EUNAUTHORIZED", err)
	}
	if _, err := db.RevokeAdminToken("alice", "bbbb"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("revoke twice = %v, want ENOTFOUND", err)
	}
}

// testSessions: a session lives while used, is marked seen no more often
// than asked, ends idle, at sign-out, or as the oldest past the limit.
func testSessions(t *testing.T, open Opener) {
	db := open(t)
	addAdmin(t, db, "alice", deviceupdate.RoleOperator, AlicePassword)
	start := func(s string, at time.Time) int {
		t.Helper()
		ended, err := db.AddSession(store.NewSession{Hash: secret(s),
			Session: deviceupdate.Session{Admin: deviceupdate.Admin{Name: "alice"}, CreatedAt: at, SeenAt: at, CSRF: "csrf-" + s}}, at, 2)
		if err != nil {
			t.Fatal(err)
		}
		return ended
	}
	start("one", t0)
	s, err := db.Session(secret("one"), t0.Add(time.Minute), 5*time.Minute)
	if err != nil || s.Admin.Name != "alice" || s.Admin.Role != deviceupdate.RoleOperator || s.CSRF != "csrf-one" || !s.SeenAt.Equal(t0) {
		t.Fatalf("session = %+v, %v; want alice's, last seen at the start", s, err)
	}
	// Seen 20 minutes in, then used 25 minutes after that: not idle.
	if s, err = db.Session(secret("one"), t0.Add(20*time.Minute), 5*time.Minute); err != nil || !s.SeenAt.Equal(t0.Add(20*time.Minute)) {
		t.Fatalf("session after 20 min = %+v, %v; want it marked seen", s, err)
	}
	if _, err = db.Session(secret("one"), t0.Add(45*time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("session used 25 min after it was seen = %v", err)
	}
	if _, err := db.Session(secret("one"), t0.Add(90*time.Minute), 5*time.Minute); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("an idle session = %v, want EUNAUTHORIZED", err)
	}
	if _, err := db.Session(secret("nope"), t0, 5*time.Minute); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("an unknown session = %v, want EUNAUTHORIZED", err)
	}

	// The idle one ended when it was refused: two more fit the limit.
	later := t0.Add(3 * time.Hour)
	if ended := start("two", later) + start("three", later.Add(time.Minute)); ended != 0 {
		t.Errorf("%d sessions ended; want none", ended)
	}
	if ended := start("four", later.Add(2*time.Minute)); ended != 1 {
		t.Errorf("a third live session ended %d; want the oldest", ended)
	}
	if _, err := db.Session(secret("two"), later.Add(3*time.Minute), 5*time.Minute); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("the oldest session past the limit = %v, want EUNAUTHORIZED", err)
	}
	if admin, err := db.EndSession(secret("three")); err != nil || admin != "alice" {
		t.Errorf("sign out = %q, %v", admin, err)
	}
	if admin, err := db.EndSession(secret("three")); err != nil || admin != "" {
		t.Errorf("sign out twice = %q, %v; want nothing", admin, err)
	}
	if _, err := db.Session(secret("four"), later.Add(3*time.Minute), 5*time.Minute); err != nil {
		t.Errorf("the newest session = %v", err)
	}
	if _, err := db.AddSession(store.NewSession{Hash: secret("x"), Session: deviceupdate.Session{Admin: deviceupdate.Admin{Name: "nobody"}, CreatedAt: t0, SeenAt: t0}}, t0, 2); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("a session of nobody = %v, want ENOTFOUND", err)
	}
}

// testRemoveAdminEndsCredentials: removing an admin ends their tokens and
// sessions with them.
func testRemoveAdminEndsCredentials(t *testing.T, open Opener) {
	db := open(t)
	addAdmin(t, db, "alice", deviceupdate.RoleAdmin, AlicePassword)
	addAdmin(t, db, "bob", deviceupdate.RoleAdmin, "")
	for _, who := range []string{"alice", "bob"} {
		tok := deviceupdate.AdminToken{ID: who[:1] + "000", Admin: who, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if _, err := db.AddAdminToken(tok, secret("token-"+who), t0, 5); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AddSession(store.NewSession{Hash: secret("session-" + who),
			Session: deviceupdate.Session{Admin: deviceupdate.Admin{Name: who}, CreatedAt: t0, SeenAt: t0}}, t0, 5); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := db.RemoveAdmin("ALICE")
	if err != nil || removed.Name != "alice" || removed.Tokens != 1 || removed.Sessions != 1 {
		t.Fatalf("remove = %+v, %v", removed, err)
	}
	now := t0.Add(time.Minute)
	if _, _, err := db.TokenAdmin(secret("token-alice"), now); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("a removed admin's token = %v", err)
	}
	if _, err := db.Session(secret("session-alice"), now, time.Minute); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("a removed admin's session = %v", err)
	}
	if _, err := db.CheckAdminPassword(context.Background(), "alice", AlicePassword); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("a removed admin's password = %v", err)
	}
	if _, _, err := db.TokenAdmin(secret("token-bob"), now); err != nil {
		t.Errorf("another admin's token = %v", err)
	}
	if _, err := db.Session(secret("session-bob"), now, time.Minute); err != nil {
		t.Errorf("another admin's session = %v", err)
	}
	if _, err := db.RemoveAdmin("alice"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("remove twice = %v, want ENOTFOUND", err)
	}
}
