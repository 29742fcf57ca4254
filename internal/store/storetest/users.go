package storetest

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// AlicePassword is the password AddUser gives alice in these tests.
const AlicePassword = "correct horse battery"

// AddUser adds a user with password, hashed as the admin service does.
func AddUser(t *testing.T, db store.Store, name, password string) {
	t.Helper()
	hash, err := store.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddUser(deviceupdate.User{Name: name, CreatedAt: time.Now().UTC(), CreatedBy: "admin@127.0.0.1"}, hash); err != nil {
		t.Fatal(err)
	}
}

func testUsers(t *testing.T, open Opener) {
	db := open(t)
	AddUser(t, db, "alice", AlicePassword)
	AddUser(t, db, "Bob@contoso.com", "another long password")

	if err := db.CheckUserFree("Alice"); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Errorf("CheckUserFree of a taken name in another case = %v, want ECONFLICT", err)
	}
	if err := db.AddUser(deviceupdate.User{Name: "ALICE"}, "$2a$04$whatever"); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Errorf("adding ALICE next to alice = %v, want a conflict", err)
	}
	users, err := db.Users()
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Name != "alice" || users[1].Name != "Bob@contoso.com" || users[0].CreatedBy != "admin@127.0.0.1" {
		t.Fatalf("users = %+v", users)
	}
	removed, err := db.RemoveUser("BOB@contoso.com")
	if err != nil || removed.Name != "Bob@contoso.com" {
		t.Fatalf("RemoveUser = %+v, %v", removed, err)
	}
	if _, err := db.RemoveUser("bob@contoso.com"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("removing twice = %v, want not found", err)
	}
	if users, _ := db.Users(); len(users) != 1 {
		t.Errorf("after remove: %+v", users)
	}
}

func testAuthenticate(t *testing.T, open Opener) {
	db := open(t)
	AddUser(t, db, "alice", AlicePassword)
	ctx := context.Background()
	tests := []struct {
		name, user, password string
		ok                   bool
	}{
		{"right", "alice", AlicePassword, true},
		{"name in another case", "ALICE", AlicePassword, true},
		{"wrong password", "alice", AlicePassword + "!", false},
		{"password in another case", "alice", strings.ToUpper(AlicePassword), false},
		{"unknown user", "mallory", AlicePassword, false},
		{"empty", "", "", false},
		{"invalid name", "../alice", AlicePassword, false},
		{"very long password", "alice", strings.Repeat("x", 100000), false},
	}
	var failure string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := db.Authenticate(ctx, tt.user, tt.password)
			if tt.ok {
				if err != nil || u.Name != "alice" {
					t.Fatalf("Authenticate = %+v, %v", u, err)
				}
				return
			}
			if deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
				t.Fatalf("Authenticate = %+v, %v; want unauthorized", u, err)
			}
			if failure == "" {
				failure = err.Error()
			}
			if err.Error() != failure {
				t.Errorf("failure %q differs from %q: it tells one failure from another", err, failure)
			}
		})
	}
}

// testAuthenticateConcurrent: many phones with the same and with other
// credentials at once, while a user is removed; once RemoveUser returns,
// that user never authenticates again.
func testAuthenticateConcurrent(t *testing.T, open Opener) {
	db := open(t)
	ctx := context.Background()
	AddUser(t, db, "alice", AlicePassword)
	AddUser(t, db, "carol", "carol's long password")

	var removed atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if i%2 == 0 {
					if _, err := db.Authenticate(ctx, "alice", AlicePassword); err != nil {
						errs <- "alice: " + err.Error()
					}
					continue
				}
				wasRemoved := removed.Load()
				_, err := db.Authenticate(ctx, "carol", "carol's long password")
				if wasRemoved && err == nil {
					errs <- "carol authenticated after her removal"
				}
			}
		}()
	}
	if _, err := db.RemoveUser("carol"); err != nil {
		t.Fatal(err)
	}
	removed.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func testAuthenticateCancelled(t *testing.T, open Opener) {
	db := open(t)
	AddUser(t, db, "alice", AlicePassword)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Authenticate(ctx, "alice", AlicePassword); err == nil {
		// A free slot may be taken before the cancellation is seen; then
		// the check simply succeeds.
		t.Log("the check ran before the cancellation was seen")
	}
	if _, err := db.Authenticate(context.Background(), "alice", AlicePassword); err != nil {
		t.Fatalf("after a cancelled check: %v", err)
	}
}

func testRemembered(t *testing.T, open Opener) {
	db := open(t)
	AddUser(t, db, "alice", AlicePassword)
	if _, ok := db.Remembered("alice", AlicePassword); ok {
		t.Fatal("remembered before any sign-in")
	}
	if _, err := db.Authenticate(context.Background(), "alice", AlicePassword); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, password string
		want                 bool
	}{
		{"verified", "alice", AlicePassword, true},
		{"another password", "alice", AlicePassword + "x", false},
		{"another user", "bob", AlicePassword, false},
	} {
		if u, ok := db.Remembered(tc.user, tc.password); ok != tc.want || (ok && u.Name != "alice") {
			t.Errorf("%s: Remembered = %v, %v; want %v", tc.name, u.Name, ok, tc.want)
		}
	}
	AddUser(t, db, "bob", "another long password")
	if _, ok := db.Remembered("alice", AlicePassword); ok {
		t.Error("still remembered after the users changed")
	}
	// Removed by an audited change: forgotten once it commits, not before
	// (a check meanwhile would remember her again).
	if _, err := db.Authenticate(context.Background(), "alice", AlicePassword); err != nil {
		t.Fatal(err)
	}
	err := db.Audited(audit.Entry{Actor: "admin", Action: "user.remove", Target: "alice"}, func(tx store.Store, _ *audit.Entry) error {
		_, err := tx.RemoveUser("alice")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := db.Remembered("alice", AlicePassword); ok {
		t.Error("still remembered after an audited change removed the user")
	}
	if _, err := db.Authenticate(context.Background(), "alice", AlicePassword); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Errorf("a user removed by an audited change authenticates: %v", err)
	}
}
