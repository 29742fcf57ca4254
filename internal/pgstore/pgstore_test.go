package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

func TestMain(m *testing.M) {
	store.LowerBcryptCostForTests() // the users' and admins' cases hash passwords
	pgtest.Main(m)
}

// openDSN opens a store on dsn, closed when the test ends.
func openDSN(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// open opens a store on a fresh database.
func open(t *testing.T) *DB {
	t.Helper()
	return openDSN(t, pgtest.DB(t))
}

func TestMigrationsNumbered(t *testing.T) {
	if _, err := loadMigrations(migrationFiles); err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
	tests := []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{"gap", fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}}, "numbered 3, want 2"},
		{"bad name", fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/2_b.sql": {}}, "want a name like"},
		{"not from 1", fstest.MapFS{"migrations/0002_b.sql": {}}, "numbered 2, want 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadMigrations(tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadMigrations = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// Three nodes starting at once on an empty database migrate it once.
func TestOpenConcurrentlyMigratesOnce(t *testing.T) {
	dsn := pgtest.DB(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			db, err := Open(context.Background(), dsn, Options{})
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	var n, v int
	if err := pgtest.Conn(t, dsn).QueryRow(context.Background(), "SELECT count(*), max(version) FROM schema_version").Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion || v != SchemaVersion {
		t.Errorf("schema_version has %d rows up to %d, want %d", n, v, SchemaVersion)
	}
	db := openDSN(t, dsn)
	if got, err := db.SchemaVersion(); err != nil || got != SchemaVersion {
		t.Errorf("SchemaVersion = %d, %v", got, err)
	}
}

// A database a newer build migrated is refused, and left as it is.
func TestOpenRefusesNewerSchema(t *testing.T) {
	dsn := pgtest.DB(t)
	openDSN(t, dsn).Close()
	conn := pgtest.Conn(t, dsn)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, 'from_the_future.sql')", SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, dsn, Options{})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open = %v, want ErrNewerSchema", err)
	}
	t.Log(err)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM schema_version").Scan(&n); err != nil || n != SchemaVersion+1 {
		t.Errorf("schema_version has %d rows (%v), want it left alone", n, err)
	}
}

// waitFor polls cond for up to ten seconds: a generous deadline for what
// should take milliseconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A change on one node advances the generation of another (NOTIFY), and
// of its own at once.
func TestGenerationAcrossNodes(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	ga, gb := a.Generation(), b.Generation()
	if err := a.Audited(audit.Entry{Actor: "ops", Action: "config.set", Target: "global"}, nil); err != nil {
		t.Fatal(err)
	}
	if a.Generation() == ga {
		t.Error("the node that made the change did not advance its generation")
	}
	committed := time.Now()
	waitFor(t, "the other node's generation", func() bool { return b.Generation() != gb })
	t.Logf("the other node saw the change %v after it committed", time.Since(committed))
}

// A node runs the hooks of what another node changed (a users cache
// forgets credentials), and not those of other changes, nor of its own.
func TestNotifyHooks(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	var users, ownUsers atomic.Int32
	b.onNotify("users", func() { users.Add(1) })
	a.onNotify("users", func() { ownUsers.Add(1) })
	change := func(what string) {
		t.Helper()
		if err := a.write(what, func(pgx.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	change("config")
	change("users")
	gen := b.Generation()
	waitFor(t, "the users hook", func() bool { return users.Load() == 1 })
	change("sites") // notifications arrive in commit order: once this one is in, "config" was too
	waitFor(t, "the sites change", func() bool { return b.Generation() > gen })
	if n := users.Load(); n != 1 {
		t.Errorf("users hook ran %d times for one users change among others", n)
	}
	if n := ownUsers.Load(); n != 0 {
		t.Errorf("a node ran its hook for its own change %d times", n)
	}
}

// A lock is held by one node at a time, until it is released or its
// holder's connection ends.
func TestTryLock(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	ctx := context.Background()
	unlock, ok := a.TryLock(ctx, "rollouts")
	if !ok {
		t.Fatal("first TryLock failed")
	}
	if _, ok := b.TryLock(ctx, "rollouts"); ok {
		t.Fatal("two nodes hold the lock")
	}
	other, ok := b.TryLock(ctx, "logs")
	if !ok {
		t.Fatal("a lock of another name was refused")
	}
	other()
	unlock()
	unlock() // twice is harmless
	u2, ok := b.TryLock(ctx, "rollouts")
	if !ok {
		t.Fatal("the lock was not released")
	}
	// A node that dies loses its locks with its connection.
	if _, err := pgtest.Conn(t, dsn).Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted", lockClass); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lock of a dead connection", func() bool {
		u3, ok := a.TryLock(ctx, "rollouts")
		if ok {
			u3()
		}
		return ok
	})
	u2() // its connection is gone: unlocking it must neither hang nor fail
}

// Audited changes from two nodes at once form one chain that verifies;
// entries keep their bytes (before/after with keys out of order).
func TestAuditedOneChain(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	const each = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*4*each)
	for _, db := range nodes {
		for w := range 4 {
			wg.Go(func() {
				for i := range each {
					e := audit.Entry{Actor: "ops", Action: "rule.approve", Target: fmt.Sprintf("w%d-%d", w, i),
						Before: json.RawMessage(`{"z":1,"a":[2,3]}`), After: json.RawMessage(`{"pendingVersion":"1.0","approvedVersion":""}`)}
					errs <- db.Audited(e, nil)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	brk, err := nodes[1].AuditEntries(func(e audit.Entry, verified bool) {
		if verified {
			seqs = append(seqs, e.Seq)
		}
	})
	if err != nil || brk != nil {
		t.Fatalf("AuditEntries = %v, %v", brk, err)
	}
	if len(seqs) != 2*4*each || seqs[len(seqs)-1] != uint64(2*4*each) {
		t.Errorf("%d entries verified, the last %v; want %d", len(seqs), seqs[len(seqs)-1:], 2*4*each)
	}
	head, _, err := nodes[0].AuditHead()
	if err != nil || head.Seq != uint64(2*4*each) {
		t.Errorf("head = %+v, %v", head, err)
	}
	anchoring, err := nodes[0].AnchorAudit()
	if err != nil || !anchoring.Recorded || anchoring.Last != head || len(anchoring.Unapplied) != 0 || nodes[0].AuditBroken() != nil {
		t.Errorf("AnchorAudit = %+v, %v (broken %v); want the head, recorded, nothing unapplied", anchoring, err, nodes[0].AuditBroken())
	}

	// Entries cut off the end show against the head.
	if _, err := pgtest.Conn(t, dsn).Exec(context.Background(), "DELETE FROM audit_entries WHERE seq = $1", 2*4*each); err != nil {
		t.Fatal(err)
	}
	brk, err = nodes[0].AuditEntries(func(audit.Entry, bool) {})
	if err != nil || brk == nil {
		t.Errorf("AuditEntries after the last entry was deleted = %v, %v; want a break", brk, err)
	}
	if nodes[0].AuditBroken() != brk {
		t.Errorf("AuditBroken = %v, want the break AuditEntries found", nodes[0].AuditBroken())
	}
}
