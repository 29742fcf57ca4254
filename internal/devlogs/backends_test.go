package devlogs_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/blobstore"
	"github.com/deviceupdate/deviceupdate/internal/devlogs"
	"github.com/deviceupdate/deviceupdate/internal/pgstore"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// node opens device logs as a front end would: opts gives the settings,
// quota and clock; the backend its index.
type node func(t *testing.T, o devlogs.Options) *devlogs.Store

// pool is a pool of front ends sharing one database and one file store.
type pool struct {
	dsn   string
	files *blobstore.DirStore
}

func newPool(t *testing.T) *pool {
	t.Helper()
	files, err := blobstore.Dir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &pool{dsn: pgtest.DB(t), files: files}
}

// node opens one front end of the pool, with a --data of its own.
func (p *pool) node(t *testing.T, o devlogs.Options) *devlogs.Store {
	t.Helper()
	db, err := pgstore.Open(context.Background(), p.dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	o.Dir, o.Index, o.Blobs, o.Locks = t.TempDir(), db, p.files, db
	return openWith(t, o)
}

// objects lists the keys in the pool's file store.
func (p *pool) objects(t *testing.T) []string {
	t.Helper()
	infos, err := p.files.List(context.Background(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, i := range infos {
		keys = append(keys, i.Key)
	}
	return keys
}

func openWith(t *testing.T, o devlogs.Options) *devlogs.Store {
	t.Helper()
	s, err := devlogs.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// backends are the two indexes: a single server's folder, and a pool's
// database and file store.
var backends = []struct {
	name string
	open func(t *testing.T) node
}{
	{"single server", func(t *testing.T) node {
		dir := t.TempDir()
		return func(t *testing.T, o devlogs.Options) *devlogs.Store {
			o.Dir = dir
			return openWith(t, o)
		}
	}},
	{"pool", func(t *testing.T) node { return newPool(t).node }},
}

// read opens a log and returns its content, or the error's code.
func read(t *testing.T, s *devlogs.Store, logType, device, name string) string {
	t.Helper()
	f, _, err := s.OpenLog(context.Background(), logType, device, name)
	if err != nil {
		return "error " + deviceupdate.ErrorCode(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// names lists the stored logs' paths in the list's order.
func names(t *testing.T, s *devlogs.Store) string {
	t.Helper()
	list, err := s.Logs(context.Background(), deviceupdate.LogFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range list.Logs {
		out = append(out, l.Path())
	}
	return strings.Join(out, " ")
}

const dev = "00-04-F2-AA-BB-CC"

// TestBackends: what an admin sees of the logs is the same on a single
// server and in a pool: uploads listed newest first and opened, a
// re-upload replacing a log, logs sharing bytes, clean-up by age and
// logs clear, the quota deleting the oldest.
func TestBackends(t *testing.T) {
	ctx := context.Background()
	put := func(t *testing.T, s *devlogs.Store, u deviceupdate.LogUpload, body string) {
		t.Helper()
		if _, err := s.Upload(ctx, u, strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatalf("upload %s: %v", u.FileName, err)
		}
	}
	st := func() *settings {
		return &settings{m: map[string]string{"MaxLogCacheLimit": "0", "LogCleanUpInterval": "10"}}
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("upload, list, open, replace", func(t *testing.T) {
				c := &clock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
				s := b.open(t)(t, devlogs.Options{Settings: st().get, Now: c.now})
				put(t, s, upload("a.txt", "CELog"), "first")
				c.add(time.Minute)
				put(t, s, upload("b.clg", "Watson"), "second")
				if got, want := names(t, s), "Watson/"+dev+"/b.clg CELog/"+dev+"/a.txt"; got != want {
					t.Fatalf("listed %q, want %q", got, want)
				}
				c.add(time.Minute)
				put(t, s, upload("a.txt", "CELog"), "replaced, longer")
				if got, want := names(t, s), "CELog/"+dev+"/a.txt Watson/"+dev+"/b.clg"; got != want {
					t.Fatalf("after a re-upload, listed %q, want %q", got, want)
				}
				if got := read(t, s, "CELog", "00:04:f2:aa:bb:cc", "a.txt"); got != "replaced, longer" {
					t.Fatalf("re-uploaded log reads %q", got)
				}
				if got := read(t, s, "CELog", dev, "missing.txt"); got != "error "+deviceupdate.ENOTFOUND {
					t.Fatalf("a log never uploaded: %q", got)
				}
				list, err := s.Logs(ctx, deviceupdate.LogFilter{Type: "watson"})
				if err != nil || len(list.Logs) != 1 || list.Logs[0].Size != 6 || !list.Logs[0].Modified.Equal(c.now().Add(-time.Minute)) {
					t.Fatalf("logs of type watson: %+v, %v", list, err)
				}
			})
			t.Run("age and logs clear", func(t *testing.T) {
				c := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
				s := b.open(t)(t, devlogs.Options{Settings: st().get, Now: c.now})
				// Uploaded 40, 20, 11, 9 and 1 days before the last.
				for _, name := range []string{"d40.txt", "d20.txt", "d11.txt", "d9.txt", "d1.txt"} {
					put(t, s, upload(name, "CELog"), name)
					c.add(map[string]time.Duration{"d40.txt": 20, "d20.txt": 9, "d11.txt": 2, "d9.txt": 8, "d1.txt": 1}[name] * 24 * time.Hour)
				}
				res, err := s.CleanUp()
				if err != nil || res.Deleted != 3 || res.Bytes != 21 {
					t.Fatalf("CleanUp (10 days) = %+v, %v; want d40, d20 and d11 deleted", res, err)
				}
				res, err = s.ClearLogs(ctx, 5, "admin")
				if err != nil || res.Deleted != 1 {
					t.Fatalf("ClearLogs(5) = %+v, %v", res, err)
				}
				if got := names(t, s); got != "CELog/"+dev+"/d1.txt" {
					t.Fatalf("left %q, want d1.txt alone", got)
				}
			})
			t.Run("two logs of the same bytes", func(t *testing.T) {
				c := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
				s := b.open(t)(t, devlogs.Options{Settings: st().get, Now: c.now})
				other := upload("same.txt", "CELog")
				other.MAC = "00:04:f2:00:00:02"
				put(t, s, upload("same.txt", "CELog"), "identical")
				c.add(48 * time.Hour)
				put(t, s, other, "identical")
				if res, err := s.ClearLogs(ctx, 1, "admin"); err != nil || res.Deleted != 1 {
					t.Fatalf("ClearLogs(1) = %+v, %v", res, err)
				}
				if got := read(t, s, "CELog", "00-04-F2-00-00-02", "same.txt"); got != "identical" {
					t.Fatalf("the log left reads %q", got)
				}
			})
			t.Run("quota", func(t *testing.T) {
				c := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
				s := b.open(t)(t, devlogs.Options{Settings: st().get, Now: c.now, Quota: 250})
				for _, name := range []string{"old.txt", "mid.txt", "new.txt"} {
					put(t, s, upload(name, "CELog"), strings.Repeat(name[:1], 100))
					c.add(time.Minute)
				}
				// A single server enforces it as it flushes; a pool in
				// its round, once a second.
				want := "CELog/" + dev + "/new.txt CELog/" + dev + "/mid.txt"
				for end := time.Now().Add(10 * time.Second); names(t, s) != want && time.Now().Before(end); {
					time.Sleep(50 * time.Millisecond)
				}
				if got := names(t, s); got != want {
					t.Fatalf("under a 250-byte quota: %q, want %q", got, want)
				}
			})
		})
	}
}

// TestPoolNodes: in a pool, a log uploaded to one front end is listed and
// read on another and cleared from a third; the file store keeps one
// object per distinct content that a log names, and none once no log
// does; a front end's --data keeps no log.
func TestPoolNodes(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	c := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	st := &settings{m: map[string]string{}}
	var nodes []*devlogs.Store
	for range 3 {
		nodes = append(nodes, p.node(t, devlogs.Options{Settings: st.get, Now: c.now}))
	}
	if _, err := nodes[0].Upload(ctx, upload("crash.dmp", "Watson"), strings.NewReader("one"), -1); err != nil {
		t.Fatal(err)
	}
	if got := names(t, nodes[1]); got != "Watson/"+dev+"/crash.dmp" {
		t.Fatalf("node 2 lists %q", got)
	}
	if got := read(t, nodes[1], "Watson", dev, "crash.dmp"); got != "one" {
		t.Fatalf("node 2 reads %q", got)
	}
	// A re-upload of other bytes on node 2: node 1 reads them, and the
	// first bytes, which no log names now, are gone.
	c.add(time.Minute)
	if _, err := nodes[1].Upload(ctx, upload("crash.dmp", "Watson"), strings.NewReader("two"), 3); err != nil {
		t.Fatal(err)
	}
	if got := read(t, nodes[0], "Watson", dev, "crash.dmp"); got != "two" {
		t.Fatalf("node 1 reads %q after a re-upload on node 2", got)
	}
	if got := p.objects(t); len(got) != 1 {
		t.Fatalf("file store holds %d objects after a re-upload, want 1", len(got))
	}
	c.add(48 * time.Hour)
	if res, err := nodes[2].ClearLogs(ctx, 1, "admin"); err != nil || res.Deleted != 1 || res.Bytes != 3 {
		t.Fatalf("ClearLogs on node 3 = %+v, %v", res, err)
	}
	for i, n := range nodes {
		if got := names(t, n); got != "" {
			t.Fatalf("node %d lists %q after the clear", i+1, got)
		}
	}
	if got := read(t, nodes[0], "Watson", dev, "crash.dmp"); got != "error "+deviceupdate.ENOTFOUND {
		t.Fatalf("node 1 after the clear: %q", got)
	}
	if got := p.objects(t); len(got) != 0 {
		t.Fatalf("file store holds %v after the clear, want nothing", got)
	}
}

// TestPoolDamagedLog: a log whose bytes in the file store were altered
// is not served whole.
func TestPoolDamagedLog(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	s := p.node(t, devlogs.Options{Settings: (&settings{m: map[string]string{}}).get})
	if _, err := s.Upload(ctx, upload("a.txt", "CELog"), strings.NewReader("genuine"), -1); err != nil {
		t.Fatal(err)
	}
	keys := p.objects(t)
	if len(keys) != 1 {
		t.Fatalf("objects %v", keys)
	}
	damage(t, p.files, keys[0], "forgery")
	f, _, err := s.OpenLog(ctx, "CELog", dev, "a.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, err := io.ReadAll(f); err == nil || string(b) == "forgery" {
		t.Fatalf("a damaged log read %q, %v; want an error", b, err)
	}
}

// damage overwrites the object of key in a Dir file store with other
// bytes of the same length.
func damage(t *testing.T, files *blobstore.DirStore, key, with string) {
	t.Helper()
	p := filepath.Join(files.Root(), "sha256", key[:2], key[2:4], key)
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(with), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPoolUploadRacingDelete: bytes one front end deletes, as no log
// names them, while another uploads the same bytes (its Put finding them
// stored, so writing nothing) are put again: the upload's log reads whole.
func TestPoolUploadRacingDelete(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	s := p.node(t, devlogs.Options{Settings: (&settings{m: map[string]string{}}).get})
	deleter, err := pgstore.Open(ctx, p.dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer deleter.Close()
	look, err := pgx.Connect(ctx, p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer look.Close(ctx)
	key, err := p.files.Put(ctx, strings.NewReader("racing"), 6, "") // left by a log deleted since
	if err != nil {
		t.Fatal(err)
	}
	uploaded := make(chan error, 1)
	err = deleter.DropUnnamed(ctx, key, func() error {
		go func() {
			_, err := s.Upload(ctx, upload("a.txt", "CELog"), strings.NewReader("racing"), 6)
			uploaded <- err
		}()
		// The upload has put (found) the bytes and waits to record them.
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			var n int
			if err := look.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				break
			}
			if time.Now().After(end) {
				t.Fatal("the upload never waited for the delete")
			}
		}
		return p.files.Delete(ctx, key)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-uploaded; err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, "CELog", dev, "a.txt"); got != "racing" {
		t.Fatalf("the log reads %q", got)
	}
}

// TestPoolRoundTakesTheLock: a pool's quota is enforced by one front end
// at a time, holding the pool's lock: while another holds it, no log goes;
// once it is released, the oldest do.
func TestPoolRoundTakesTheLock(t *testing.T) {
	ctx := context.Background()
	p := newPool(t)
	c := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	s := p.node(t, devlogs.Options{Settings: (&settings{m: map[string]string{}}).get, Now: c.now, Quota: 250})
	other, err := pgstore.Open(ctx, p.dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	unlock, ok := other.TryLock(ctx, "device-logs")
	if !ok {
		t.Fatal("the round's lock is taken")
	}
	defer unlock() // once: unlock may run twice
	for _, name := range []string{"old.txt", "mid.txt", "new.txt"} {
		if _, err := s.Upload(ctx, upload(name, "CELog"), strings.NewReader(strings.Repeat("x", 100)), 100); err != nil {
			t.Fatal(err)
		}
		c.add(time.Minute)
	}
	// The node tries its round every second: give it a few.
	time.Sleep(2500 * time.Millisecond)
	if got := strings.Count(names(t, s), " ") + 1; got != 3 {
		t.Fatalf("%d logs while another front end holds the round's lock, want all 3", got)
	}
	unlock()
	want := "CELog/" + dev + "/new.txt CELog/" + dev + "/mid.txt"
	for end := time.Now().Add(10 * time.Second); names(t, s) != want && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	if got := names(t, s); got != want {
		t.Fatalf("once the lock is released: %q, want %q", got, want)
	}
}
