package pgstore

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate/internal/pgtest"
)

// waiters counts the sessions waiting for one of deviceupdate's advisory
// locks.
func waiters(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var n int
	err := conn.QueryRow(context.Background(),
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND NOT granted", lockClass).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The pool's Locker: a node waits while another holds the lock, and gets
// it once released; a wait ends when its context does, leaving nothing
// waiting; a holder that dies releases it.
func TestLocker(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	look := pgtest.Conn(t, dsn)
	ctx := context.Background()

	unlock, err := a.Locker("files").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		unlock func()
		err    error
	}
	got := make(chan result, 1)
	go func() {
		u, err := b.Locker("files").Lock(ctx)
		got <- result{u, err}
	}()
	waitFor(t, "the second node waiting for the lock", func() bool { return waiters(t, look) == 1 })
	select {
	case r := <-got:
		t.Fatalf("the second node took the lock while the first held it: %v", r.err)
	default:
	}
	if u, err := a.Locker("other").Lock(ctx); err != nil {
		t.Fatalf("a lock of another name: %v", err)
	} else {
		u()
	}
	unlock()
	r := <-got
	if r.err != nil {
		t.Fatalf("after the release: %v", r.err)
	}

	// A wait cancelled: an error that says so, and no session left waiting.
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	go func() {
		_, err := a.Locker("files").Lock(cctx)
		cancelled <- err
	}()
	waitFor(t, "the first node waiting for the lock", func() bool { return waiters(t, look) == 1 })
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait: %v, want context.Canceled", err)
	}
	waitFor(t, "the cancelled wait gone", func() bool { return waiters(t, look) == 0 })

	// The holder's session ends (a node killed): the lock is free.
	if _, err := look.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted", lockClass); err != nil {
		t.Fatal(err)
	}
	u, err := a.Locker("files").Lock(ctx)
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	u()
	r.unlock() // its connection is gone: unlocking must neither hang nor fail
}
