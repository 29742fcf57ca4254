package main_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/blobstore"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
	"github.com/deviceupdate/deviceupdate/internal/phone"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// pgServer starts a PostgreSQL server of the test's own.
func pgServer(t *testing.T) *pgtest.Server {
	t.Helper()
	s, err := pgtest.NewServer()
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("pgtest: %v", err)
		}
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// newDatabase creates an empty database on s and returns its DSN.
func newDatabase(t *testing.T, s *pgtest.Server, name string) string {
	t.Helper()
	conn := pgtest.Conn(t, s.DSN("postgres"))
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return s.DSN(name)
}

// poolTables are the tables of a pool's state (internal/pgstore).
var poolTables = []string{"rules", "updates", "in_progress", "test_devices", "config", "sites", "device_configs",
	"users", "admins", "admin_tokens", "sessions", "devices", "rollouts", "rollout_devices", "audit_entries"}

// poolRows counts the rows of each table of a pool's state, and the
// audit head's seq; a database without the tables is "no schema".
func poolRows(t *testing.T, dsn string) string {
	t.Helper()
	conn := pgtest.Conn(t, dsn)
	ctx := context.Background()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('rules') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return "no schema"
	}
	var out []string
	for _, table := range poolTables {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d", table, n))
	}
	var seq int64
	if err := conn.QueryRow(ctx, "SELECT seq FROM audit_head").Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return strings.Join(append(out, fmt.Sprintf("head=%d", seq)), " ")
}

// offered is the version a poll of a CX600 phone running 4.0.7577.4100
// is offered, "" for none.
func offered(t *testing.T, srv *e2e.Server, mac string) string {
	t.Helper()
	code, body := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(mac, "CX600", "4.0.7577.4100"))
	var res upx.Response
	if err := xml.Unmarshal([]byte(body), &res); code != http.StatusOK || err != nil {
		t.Fatalf("poll %s: %d %v\n%s", mac, code, err, body)
	}
	return res.Version
}

// auditList returns the entries `audit list` shows.
func auditList(t *testing.T, env []string) []audit.Entry {
	t.Helper()
	var list struct {
		Entries []audit.Entry `json:"entries"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, env, "audit", "list", "--json")), &list); err != nil || len(list.Entries) == 0 {
		t.Fatalf("audit list: %d entries, %v", len(list.Entries), err)
	}
	return list.Entries
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("%s holds %d entries (%v), want none", dir, len(entries), err)
	}
}

// TestMigrate: a single server's state (rules, updates, test devices,
// settings, sites, users, admins and their tokens, the inventory, a
// running rollout, the audit trail), stopped and migrated into an empty
// pool, is what `serve --store` on that pool answers: the same lists, a
// token made on the single server, a trail that verifies with the file
// trail's head, and a phone offered the same version, which it
// downloads. A running server, a bad URL and a pool that is not empty are
// refused and change nothing.
func TestMigrate(t *testing.T) {
	pg := pgServer(t)
	srv := e2e.Start(t, e2e.Options{})
	env := adminEnv(srv)
	_, oliviaToken, ca := fillSingleServer(t, srv)
	mustRun(t, env, "rule", "approve", "UCPhone/Polycom/CX600/A/ENU/CPE", "--waves", "50,100", "--soak", "1h")
	macs := make([]string, 8)
	offers := map[string]string{}
	for i := range macs {
		macs[i] = fmt.Sprintf("00-04-F2-00-02-%02d", i)
		offers[macs[i]] = offered(t, srv, macs[i])
	}
	if code, msg := uploadLog(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/Files", logQuery(macs[0], "CELog", "celog.clg"), []byte("CE log line\r\n"), false); code != 200 {
		t.Fatalf("log upload: %d %s", code, msg)
	}
	before := views(t, env)
	trailBefore := auditList(t, env)

	files := t.TempDir()
	dsn := newDatabase(t, pg, "pool")
	migrate := func(args ...string) e2e.Result {
		return e2e.Run(t, "", nil, append([]string{"migrate", "--data", srv.Data}, args...)...)
	}
	t.Run("refused while the server runs", func(t *testing.T) {
		res := migrate("--to", dsn, "--files", files)
		if res.Code != 1 || !strings.Contains(res.Stderr, "a serve holds the store") || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
			t.Fatalf("exit %d: %s", res.Code, res.Stderr)
		}
		if got := poolRows(t, dsn); got != "no schema" {
			t.Errorf("the refusal changed the database: %s", got)
		}
		emptyDir(t, files)
	})
	if code := srv.Stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	t.Run("bad command lines", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			args []string
			code int
			msg  string
		}{
			{"no --to", []string{"--files", files}, 2, "migrate needs --to"},
			{"no --files", []string{"--to", dsn}, 2, "migrate needs --to"},
			{"not a PostgreSQL URL", []string{"--to", "mysql://db/x", "--files", files}, 1, "--to: not a PostgreSQL URL"},
			{"no database", []string{"--to", "postgres://u:secret@db/", "--files", files}, 1, "names no database"},
			{"bad --files", []string{"--to", dsn, "--files", "s3://"}, 1, "--files"},
			{"an argument", []string{"x", "--to", dsn, "--files", files}, 2, "takes no arguments"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				res := migrate(tt.args...)
				if res.Code != tt.code || !strings.Contains(res.Stderr, tt.msg) || strings.Contains(res.Stderr, "secret") {
					t.Fatalf("exit %d, want %d with %q: %s", res.Code, tt.code, tt.msg, res.Stderr)
				}
			})
		}
		if got := poolRows(t, dsn); got != "no schema" {
			t.Errorf("a refusal changed the database: %s", got)
		}
		emptyDir(t, files)
	})

	var moved struct {
		Records    map[string]int `json:"records"`
		Updates    int            `json:"updates"`
		AuditHead  audit.Head     `json:"auditHead"`
		DeviceLogs int            `json:"deviceLogs"`
	}
	res := migrate("--to", dsn, "--files", files, "--json")
	if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &moved) != nil {
		t.Fatalf("migrate: exit %d: %s%s", res.Code, res.Stdout, res.Stderr)
	}
	last := trailBefore[len(trailBefore)-1]
	if moved.Records[store.KindDevices] != len(macs) || moved.Records[store.KindRules] != 1 || moved.Updates != 2 ||
		moved.Records[store.KindRollouts] != 1 || moved.Records["audit"] != len(trailBefore) || moved.AuditHead.Hash != last.Hash || moved.DeviceLogs != 1 {
		t.Errorf("migrate moved %s", res.Stdout)
	}

	t.Run("a pool that is not empty", func(t *testing.T) {
		was := poolRows(t, dsn)
		other := t.TempDir()
		res := migrate("--to", dsn, "--files", other)
		if res.Code != 1 || !strings.Contains(res.Stderr, "the pool is not empty: it holds rules") || !strings.Contains(res.Stderr, "CREATE DATABASE") {
			t.Fatalf("exit %d: %s", res.Code, res.Stderr)
		}
		if got := poolRows(t, dsn); got != was {
			t.Errorf("the refusal changed the database: %s, was %s", got, was)
		}
		emptyDir(t, other)
	})

	t.Run("the summary line, files into S3", func(t *testing.T) {
		s3 := fakeS3Bucket(t)
		res := e2e.Run(t, "", s3.env, append([]string{"migrate", "--data", srv.Data, "--to", newDatabase(t, pg, "second")}, s3.args...)...)
		dir, err := blobstore.Dir(files)
		if err != nil {
			t.Fatal(err)
		}
		inDir, err := dir.List(context.Background(), "", "", 100)
		if err != nil {
			t.Fatal(err)
		}
		inS3, err := s3.store.List(context.Background(), "", "", 100)
		if err != nil || len(inS3) != len(inDir) || len(inS3) == 0 {
			t.Errorf("%d files in S3 (%v), %d in the folder", len(inS3), err, len(inDir))
		}
		want := []string{"1 rule, 2 updates, 1 test device, 2 setting scopes, 1 site, 0 device settings, 1 user, 1 admin, 1 admin token, 0 console sessions, 8 devices, 1 rollout, ",
			fmt.Sprintf("; %d audit entries, head %d\n", len(trailBefore), last.Seq), "and 1 device log (13 bytes) into the file store\n"}
		for _, w := range want {
			if !strings.Contains(res.Stdout, w) {
				t.Errorf("the summary lacks %q", w)
			}
		}
		if res.Code != 0 || strings.Count(res.Stdout, "\n") != 2 {
			t.Errorf("exit %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
	})

	node := e2e.Start(t, e2e.Options{Certs: srv.Certs, Args: []string{"--store", dsn, "--files", files}})
	penv := adminEnv(node)
	t.Run("the pool answers as the single server did", func(t *testing.T) {
		after := views(t, penv)
		for view, want := range before {
			if after[view] != want {
				t.Errorf("%s on the pool:\n%s\nwant\n%s", view, after[view], want)
			}
		}
		if out := mustRun(t, append(penv, oliviaToken), "rule", "list"); !strings.Contains(out, "CX600") {
			t.Errorf("olivia's token on the pool: %s", out)
		}
		res := e2e.Run(t, "", penv, "audit", "verify")
		if res.Code != 0 {
			t.Fatalf("audit verify on the pool: exit %d: %s%s", res.Code, res.Stdout, res.Stderr)
		}
		trail := auditList(t, penv)
		if len(trail) < len(trailBefore) {
			t.Fatalf("audit list on the pool: %d entries, want at least %d", len(trail), len(trailBefore))
		}
		if got := trail[len(trailBefore)-1]; got.Seq != last.Seq || got.Hash != last.Hash {
			t.Errorf("the pool's entry %d is %+v, want the file trail's last %+v", last.Seq, got, last)
		}
	})
	t.Run("the device log is the pool's", func(t *testing.T) {
		name := "CELog/" + macs[0] + "/celog.clg"
		if out := mustRun(t, penv, "logs", "list"); !strings.Contains(out, "celog.clg") {
			t.Fatalf("logs list on the pool:\n%s", out)
		}
		if got := mustRun(t, penv, "logs", "get", name, "-o", "-"); got != "CE log line\r\n" {
			t.Errorf("logs get %s on the pool: %q", name, got)
		}
	})
	t.Run("a phone is offered the same and downloads it", func(t *testing.T) {
		for _, mac := range macs {
			if got := offered(t, node, mac); got != offers[mac] {
				t.Errorf("%s is offered %q by the pool, %q by the single server", mac, got, offers[mac])
			}
		}
		trust := filepath.Join(t.TempDir(), "publisher.pem")
		testpki.WriteCert(t, trust, ca.Cert)
		res := e2e.Run(t, "", nil, "phone", "run", "--server", node.InternalURL(), "--mac", macs[1],
			"--model", "CX600", "--version", "4.0.7577.4100", "--trust", trust, "--state", filepath.Join(t.TempDir(), "phone"),
			"--once", "--peer-sharing", "off", "--json")
		var got phone.Result
		if err := json.Unmarshal([]byte(res.Stdout), &got); res.Code != 0 || err != nil || !got.Updated || got.Running != offers[macs[1]] {
			t.Fatalf("phone run against the pool: exit %d, %+v (%v), want running %s\nstderr: %s", res.Code, got, err, offers[macs[1]], res.Stderr)
		}
	})
}

// TestMigrateKilled: a migrate killed with SIGKILL in the middle of
// copying a large inventory leaves the database with none of the state,
// and a second migrate then moves it all.
func TestMigrateKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 devices")
	}
	const devices = 100_000
	data := t.TempDir()
	db, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for from := 0; from < devices; from += 10_000 {
		if err := db.PutDevices(storetest.FakeDevices(from, 10_000, "4.0.7577.4100")); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	pg := pgServer(t)
	dsn := newDatabase(t, pg, "pool")
	conn := pgtest.Conn(t, dsn)
	args := []string{"migrate", "--data", data, "--to", dsn, "--files", t.TempDir()}

	cmd := exec.Command(e2e.Binary(t), args...)
	cmd.Env = e2e.Env()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Mid-way: the import's transaction is copying devices.
	copying := false
	for !copying {
		select {
		case err := <-done:
			t.Fatalf("migrate ended (%v) before it was seen copying devices", err)
		default:
		}
		if err := conn.QueryRow(context.Background(),
			`SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query ILIKE 'copy "devices"%')`).Scan(&copying); err != nil {
			t.Fatal(err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	// The server ends the dead client's transaction when it reads the
	// closed connection; wait for that, not for a time.
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var left int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE datname = 'pool' AND pid <> pg_backend_pid()").Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the killed migrate's sessions are still open")
		}
	}
	want := strings.Join(func() []string {
		var out []string
		for _, table := range poolTables {
			out = append(out, table+"=0")
		}
		return out
	}(), " ") + " head=0"
	if got := poolRows(t, dsn); got != want {
		t.Fatalf("after a migrate killed mid-way the database holds %s", got)
	}
	start := time.Now()
	res := e2e.Run(t, "", nil, args...)
	t.Logf("migrate of %d devices: %s", devices, time.Since(start).Round(time.Millisecond))
	if res.Code != 0 || !strings.Contains(res.Stdout, fmt.Sprintf("%d devices", devices)) {
		t.Fatalf("migrate again: exit %d: %s%s", res.Code, res.Stdout, res.Stderr)
	}
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM devices").Scan(&n); err != nil || n != devices {
		t.Fatalf("devices after the second migrate: %d, %v", n, err)
	}
}

// rewriteFile replaces the file at path by what edit makes of it.
func rewriteFile(t *testing.T, path string, edit func(string) string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(edit(string(raw))), 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateUnsettled: a single server's state between two steps of a
// change, or with a damaged trail, is refused before anything is put in
// the pool, with what to do.
func TestMigrateUnsettled(t *testing.T) {
	pg := pgServer(t)
	dsn := newDatabase(t, pg, "pool")
	files := t.TempDir()
	tests := []struct {
		name  string
		spoil func(t *testing.T, db *store.DB, tr *audit.Trail)
		msg   string
	}{
		{"an import in progress", func(t *testing.T, db *store.DB, _ *audit.Trail) {
			if err := db.BeginImport([]*deviceupdate.StoredUpdate{storetest.StoredUpdate(storetest.CX600, "4.0.7577.4366", "aa")}, time.Now()); err != nil {
				t.Fatal(err)
			}
		}, store.FileName + " was interrupted; start the server once and stop it"},
		{"an entry past the head", func(t *testing.T, _ *store.DB, tr *audit.Trail) {
			if _, err := tr.Append(audit.Entry{Actor: "admin", Action: "user.add", Target: "bob"}); err != nil {
				t.Fatal(err)
			}
		}, "runs past the head the store records; start the server once and stop it"},
		{"entries removed from the end", func(t *testing.T, _ *store.DB, tr *audit.Trail) {
			rewriteFile(t, tr.Path(), func(s string) string { return strings.SplitAfter(s, "\n")[0] })
		}, "ends at entry 1, the store's head is entry 2: entries were removed or altered"},
		{"an entry altered", func(t *testing.T, _ *store.DB, tr *audit.Trail) {
			rewriteFile(t, tr.Path(), func(s string) string { return strings.Replace(s, `"alice"`, `"mallory"`, 1) })
		}, "does not verify (audit trail is broken at line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := t.TempDir()
			db, err := store.Open(data, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			tr, err := audit.Open(data, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.SetTrail(tr)
			for _, name := range []string{"alice", "carol"} {
				err := db.Audited(audit.Entry{Actor: "admin", Action: "user.add", Target: name}, func(tx store.Store, _ *audit.Entry) error {
					return tx.AddUser(deviceupdate.User{Name: name}, "")
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			tt.spoil(t, db, tr)
			tr.Close()
			db.Close()
			res := e2e.Run(t, "", nil, "migrate", "--data", data, "--to", dsn, "--files", files)
			if res.Code != 1 || !strings.Contains(res.Stderr, tt.msg) || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
				t.Fatalf("exit %d, want 1 with %q: %s", res.Code, tt.msg, res.Stderr)
			}
			if got := poolRows(t, dsn); got != "no schema" {
				t.Errorf("the refusal changed the database: %s", got)
			}
			emptyDir(t, files)
		})
	}
	res := e2e.Run(t, "", nil, "migrate", "--data", t.TempDir(), "--to", dsn, "--files", files)
	if res.Code != 1 || !strings.Contains(res.Stderr, "no single server's store in --data") {
		t.Errorf("migrate of an empty folder: exit %d: %s", res.Code, res.Stderr)
	}
}
