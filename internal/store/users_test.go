package store_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
)

// TestAuthenticateCache: a success is remembered (the stored hash is not
// read again) until it expires or the users change; a failure never is.
func TestAuthenticateCache(t *testing.T) {
	db := MustOpen(t, t.TempDir())
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC).UnixNano())
	store.SetAuthClock(db, func() time.Time { return time.Unix(0, now.Load()) })
	ctx := context.Background()
	storetest.AddUser(t, db, "alice", storetest.AlicePassword)

	if _, err := db.Authenticate(ctx, "alice", "wrong password!"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if _, err := db.Authenticate(ctx, "alice", storetest.AlicePassword); err != nil {
		t.Fatal(err)
	}
	// Break the stored hash behind the cache's back: only the cache can
	// answer now.
	if err := store.SetUserHash(db, "alice", "$2a$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinv"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "alice", storetest.AlicePassword); err != nil {
		t.Fatalf("a remembered success was checked again: %v", err)
	}
	if _, err := db.Authenticate(ctx, "alice", "wrong password!"); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Fatalf("a wrong password after a success = %v", err)
	}
	now.Add(int64(6 * time.Minute))
	if _, err := db.Authenticate(ctx, "alice", storetest.AlicePassword); err == nil {
		t.Fatal("an expired success was still trusted")
	}

	// A removal forgets at once; adding the user back with another
	// password does not revive the old one.
	storetest.AddUser(t, db, "bob", "bob's long password")
	if _, err := db.Authenticate(ctx, "bob", "bob's long password"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RemoveUser("bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "bob", "bob's long password"); deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
		t.Fatalf("a removed user authenticated: %v", err)
	}
	storetest.AddUser(t, db, "bob", "bob's new long password")
	if _, err := db.Authenticate(ctx, "bob", "bob's long password"); err == nil {
		t.Fatal("the old password of a re-added user still works")
	}
	if _, err := db.Authenticate(ctx, "bob", "bob's new long password"); err != nil {
		t.Fatal(err)
	}
}

// TestUserRecordHoldsHashOnly: the stored record of a user holds a bcrypt
// hash, never the password.
func TestUserRecordHoldsHashOnly(t *testing.T) {
	db := MustOpen(t, t.TempDir())
	storetest.AddUser(t, db, "alice", storetest.AlicePassword)
	rec, err := store.StoredUserRecord(db, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec, []byte(storetest.AlicePassword)) || !bytes.Contains(rec, []byte(`"passwordHash":"$2a$`)) {
		t.Errorf("stored record = %s, want a bcrypt hash and no password", rec)
	}
}
