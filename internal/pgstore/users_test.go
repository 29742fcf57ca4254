package pgstore

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
)

// What only a pool has: users and admins changed on one node, in effect
// on the others. The behaviour of each method on one node is the
// behaviour table's (behaviour_test.go).

// A user removed, or added, on one node is forgotten by every node's
// cache of verified credentials within a second; a node that never heard
// of the change would still let a removed user's phones in.
func TestRememberedAcrossNodes(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	ctx := context.Background()
	storetest.AddUser(t, a, "alice", storetest.AlicePassword)
	storetest.AddUser(t, a, "carol", "carol's long password")
	for _, name := range []string{"alice", "carol"} {
		pw := storetest.AlicePassword
		if name == "carol" {
			pw = "carol's long password"
		}
		if _, err := a.Authenticate(ctx, name, pw); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := b.RemoveUser("ALICE"); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	waitFor(t, "node a forgetting alice", func() bool {
		_, ok := a.Remembered("alice", storetest.AlicePassword)
		return !ok
	})
	t.Logf("node a forgot alice %v after node b removed her", time.Since(removed))
	if _, err := a.Authenticate(ctx, "alice", storetest.AlicePassword); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("alice, removed on node b, authenticates on node a: %v", err)
	}
	// Any change of users forgets all: carol is checked again.
	if _, ok := a.Remembered("carol", "carol's long password"); ok {
		t.Error("carol is still remembered after a change of users")
	}
	if u, err := a.Authenticate(ctx, "carol", "carol's long password"); err != nil || u.Name != "carol" {
		t.Errorf("carol after alice's removal = %+v, %v", u, err)
	}
}

// Two admins on two nodes add a user of one name (in two letter cases) at
// once, and an admin of one name: one of each is stored, the other told
// the name is taken.
func TestAddUserAndAdminRace(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	hash, err := store.HashPassword(storetest.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"alice", "ALICE"}
	var wg sync.WaitGroup
	userErrs, adminErrs := make([]error, 2), make([]error, 2)
	for i, db := range nodes {
		wg.Go(func() { userErrs[i] = db.AddUser(deviceupdate.User{Name: names[i]}, hash) })
		wg.Go(func() {
			adminErrs[i] = db.AddAdmin(deviceupdate.Admin{Name: names[i], Role: deviceupdate.RoleViewer}, "")
		})
	}
	wg.Wait()
	for what, errs := range map[string][]error{"user": userErrs, "admin": adminErrs} {
		ok, taken := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case deviceupdate.ErrorCode(err) == deviceupdate.ECONFLICT && strings.Contains(err.Error(), "exists"):
				taken++
			}
		}
		if ok != 1 || taken != 1 {
			t.Errorf("%s: errors %v; want one stored, one told the name is taken", what, errs)
		}
	}
	if users, err := nodes[0].Users(); err != nil || len(users) != 1 {
		t.Errorf("users = %+v, %v; want one", users, err)
	}
	if admins, err := nodes[1].Admins(); err != nil || len(admins) != 1 {
		t.Errorf("admins = %+v, %v; want one", admins, err)
	}
}

// An admin removed on one node has no token or session left on another:
// nothing of them is cached.
func TestRemoveAdminAcrossNodes(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	now := time.Now().UTC()
	if err := a.AddAdmin(deviceupdate.Admin{Name: "alice", Role: deviceupdate.RoleOperator}, ""); err != nil {
		t.Fatal(err)
	}
	tok, sess := store.SecretHash{1}, store.SecretHash{2}
	if _, err := a.AddAdminToken(deviceupdate.AdminToken{ID: "a1", Admin: "alice", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, tok, now, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddSession(store.NewSession{Hash: sess, Session: deviceupdate.Session{Admin: deviceupdate.Admin{Name: "alice"}, CreatedAt: now, SeenAt: now}}, now, 5); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.TokenAdmin(tok, now); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(sess, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RemoveAdmin("alice"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.TokenAdmin(tok, now); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("the token of an admin removed on another node = %v, want EUNAUTHORIZED at once", err)
	}
	if _, err := a.Session(sess, now, time.Minute); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("the session of an admin removed on another node = %v, want EUNAUTHORIZED at once", err)
	}
}

// The users, admins and sessions rows hold the embedded store's records
// (what `deviceupdate migrate` copies): a bcrypt hash, never a password.
func TestCredentialRecords(t *testing.T) {
	dsn := pgtest.DB(t)
	db := openDSN(t, dsn)
	storetest.AddUser(t, db, "alice", storetest.AlicePassword)
	hash, err := store.HashPassword("bob's long password")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddAdmin(deviceupdate.Admin{Name: "Bob", Role: deviceupdate.RoleAdmin}, hash); err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Conn(t, dsn)
	for _, tc := range []struct{ table, key, password string }{
		{"users", "alice", storetest.AlicePassword},
		{"admins", "bob", "bob's long password"},
	} {
		var data string
		if err := conn.QueryRow(context.Background(), "SELECT data::text FROM "+tc.table+" WHERE name = $1", tc.key).Scan(&data); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(data, tc.password) || !strings.Contains(data, `"passwordHash": "$2a$`) || !strings.Contains(data, `"scheme": "bcrypt-sha256"`) {
			t.Errorf("%s row = %s, want a bcrypt hash of its scheme and no password", tc.table, data)
		}
	}
}
