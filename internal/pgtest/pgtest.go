// Package pgtest starts throwaway PostgreSQL servers for tests: initdb
// into a fresh folder, a server on a free 127.0.0.1 port (and a unix
// socket in that folder) with fsync off, stopped and deleted when the
// test, or the test binary, ends. Start gives a test a server of its own;
// a package whose tests all need one calls Main from its TestMain and DB
// in each test, which makes a fresh database on one server per binary.
//
// The PostgreSQL binaries are looked for in /usr/lib/postgresql/*/bin (as
// Debian's postgresql package installs them), then on PATH. When they are
// missing, the test is skipped, or fails when the environment variable CI
// is set: CI installs them (.ci/run) and must not pass without them.
//
// initdb runs once per set of binaries: its result is kept in the temp
// folder (pgtest-initdb-*) and copied for each server, which then starts
// in about half a second. A server left running by a test binary that was
// killed is stopped by the next start.
//
// PostgreSQL refuses to run as root; as root, initdb and pg_ctl run as
// the postgres user (runuser -u postgres), which owns the folder.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrMissing means the PostgreSQL binaries (initdb, pg_ctl, postgres) are
// not installed, or, as root, runuser or the postgres user is missing.
var ErrMissing = errors.New("PostgreSQL is not installed")

// Server is a running throwaway server.
type Server struct {
	Dir  string // its folder: data/, the socket and the log
	Port int    // its TCP port on 127.0.0.1
	bin  string
	run  []string // the command prefix that runs a binary as postgres
}

// DSN returns the URL of database name on the server, as the postgres
// superuser over TCP.
func (s *Server) DSN(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, name)
}

// Start starts a server of the test's own and returns the DSN of its
// postgres database; the server is stopped and its folder deleted when
// the test ends.
func Start(t testing.TB) string {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s.DSN("postgres")
}

// skipOrFail skips the test when PostgreSQL is missing locally, and fails
// it otherwise.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrMissing) && os.Getenv("CI") == "" {
		t.Skipf("pgtest: %v", err)
	}
	t.Fatalf("pgtest: %v", err)
}

// NewServer initialises and starts a server; the caller stops it with
// Stop. Errors wrap ErrMissing when PostgreSQL is not installed.
func NewServer() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return nil, fmt.Errorf("%w: running as root needs runuser: %v", ErrMissing, err)
		}
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("%w: running as root needs the postgres user: %v", ErrMissing, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		s.run = []string{runuser, "-u", "postgres", "--"}
	}
	base, err := reachableTempDir()
	if err != nil {
		return nil, err
	}
	sweep(base, s)
	if s.Dir, err = s.folder(base, "pgtest-", uid, gid); err != nil {
		return nil, err
	}
	if err := s.start(base, uid, gid); err != nil {
		_ = os.RemoveAll(s.Dir)
		return nil, err
	}
	return s, nil
}

// start runs initdb and starts the server on a free port, trying another
// port when the one picked was taken meanwhile.
func (s *Server) start(base string, uid, gid int) error {
	data := filepath.Join(s.Dir, "data")
	tmpl, err := s.template(base, uid, gid)
	if err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", tmpl, data).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the initdb template %s: %v: %s", tmpl, err, lastLines(out))
	}
	for try := 0; try < 3; try++ {
		if s.Port, err = freePort(); err != nil {
			return err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
			s.Port, s.Dir)
		logFile := filepath.Join(s.Dir, "server.log")
		var out []byte
		out, err = s.command("pg_ctl", "start", "-D", data, "-w", "-t", "60", "-l", logFile, "-o", opts).CombinedOutput()
		if err == nil {
			return nil
		}
		log, _ := os.ReadFile(logFile)
		err = fmt.Errorf("pg_ctl start: %v: %s %s", err, lastLines(out), lastLines(log))
		if !strings.Contains(string(log), "already in use") {
			return err
		}
	}
	return err
}

// initdbArgs are initdb's options after -D DIR.
var initdbArgs = []string{"-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"}

// template returns the data folder initdb made for these binaries, made
// now when there is none: initdb takes seconds, a copy of its result a
// fraction. It is kept in base as pgtest-initdb-KEY, KEY naming the
// binaries and initdbArgs. Test binaries that make it at once each make
// their own and rename it into place; the first one stays.
func (s *Server) template(base string, uid, gid int) (string, error) {
	h := fnv.New64a()
	fmt.Fprintln(h, s.bin, initdbArgs)
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(s.bin, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, fi.Size(), fi.ModTime().UnixNano())
	}
	dir := filepath.Join(base, fmt.Sprintf("pgtest-initdb-%016x", h.Sum64()))
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return dir, nil
	}
	tmp, err := s.folder(base, "pgtest-", uid, gid)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	data := filepath.Join(tmp, "data")
	if out, err := s.command("initdb", append([]string{"-D", data}, initdbArgs...)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v: %s", err, lastLines(out))
	}
	if err := os.Rename(data, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "PG_VERSION")); serr != nil {
			return "", fmt.Errorf("keep the initdb template: %w", err)
		}
	}
	return dir, nil
}

// ownerFile, in a server's folder, holds the PID of the test binary that
// made it: sweep deletes the folders whose binary is gone.
const ownerFile = "pgtest.pid"

// folder makes a folder in base, owned by uid:gid (when not -1), with
// the owner file.
func (s *Server) folder(base, prefix string, uid, gid int) (string, error) {
	dir, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", fmt.Errorf("make the server's folder: %w", err)
	}
	err = os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
	if err == nil && uid >= 0 {
		err = os.Chown(dir, uid, gid)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("make the server's folder: %w", err)
	}
	return dir, nil
}

// sweep stops the servers, and deletes the folders, that test binaries
// killed before their clean-up left in base (a test timeout kills the
// binary): on a shared machine they would hold memory and ports for good.
// A folder whose binary still runs is left alone.
func sweep(base string, s *Server) {
	dirs, _ := filepath.Glob(filepath.Join(base, "pgtest-*", ownerFile))
	for _, f := range dirs {
		raw, err := os.ReadFile(f)
		pid, perr := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || perr != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		dir := filepath.Dir(f)
		if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			_ = s.command("pg_ctl", "stop", "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w").Run()
		}
		_ = os.RemoveAll(dir)
	}
}

// Stop stops the server at once (no checkpoint: its data is thrown away)
// and deletes its folder.
func (s *Server) Stop() error {
	out, err := s.command("pg_ctl", "stop", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w").CombinedOutput()
	rmErr := os.RemoveAll(s.Dir)
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, lastLines(out))
	}
	return rmErr
}

// command runs one of the server's binaries, as postgres when we are
// root.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, s.run...), filepath.Join(s.bin, name)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.Dir
	// The server pg_ctl leaves running must not get the signals of the
	// test's terminal (a ^C stops the test, whose Stop stops the server).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// findBin returns the folder of initdb, pg_ctl and postgres: the newest
// of Debian's /usr/lib/postgresql/N/bin, else the folder of initdb on
// PATH.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if hasAll(d, "initdb", "pg_ctl", "postgres") {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: no initdb, pg_ctl and postgres in /usr/lib/postgresql/*/bin or on PATH (Debian: apt-get install postgresql)", ErrMissing)
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func hasAll(dir string, names ...string) bool {
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// reachableTempDir returns os.TempDir() when the postgres user can reach
// a folder inside it (each folder on the way is searchable by others),
// else /tmp: t.TempDir's folders are 0700 root, which postgres cannot
// enter.
func reachableTempDir() (string, error) {
	for _, base := range []string{os.TempDir(), "/tmp"} {
		if os.Geteuid() != 0 || searchable(base) {
			return base, nil
		}
	}
	return "", fmt.Errorf("neither %s nor /tmp can be entered by the postgres user", os.TempDir())
}

// searchable reports whether others may enter dir and every folder above.
func searchable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// freePort returns a TCP port of 127.0.0.1 free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lastLines keeps the end of a tool's output for an error message.
func lastLines(out []byte) string {
	s := strings.TrimSpace(string(out))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

// The server shared by the tests of one binary (Main and DB).
var shared struct {
	mu      sync.Mutex
	inMain  bool
	started bool
	server  *Server
	err     error
	n       atomic.Uint64
}

// Main runs the tests of a package that uses DB, then stops the server
// they shared. Call it from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	if shared.server != nil {
		if err := shared.server.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// DB makes a fresh, empty database on the binary's shared server (started
// by the first call) and returns its DSN; the database is dropped when the
// test ends. The package's TestMain must call Main.
func DB(t testing.TB) string {
	t.Helper()
	s, err := sharedServer()
	if err != nil {
		skipOrFail(t, err)
	}
	name := fmt.Sprintf("test_%d", shared.n.Add(1))
	admin := s.DSN("postgres")
	if err := exec1(admin, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := exec1(admin, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s.DSN(name)
}

func sharedServer() (*Server, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		return nil, errors.New("pgtest.DB needs the package's TestMain to call pgtest.Main, which stops the shared server")
	}
	if !shared.started {
		shared.started = true
		shared.server, shared.err = NewServer()
	}
	return shared.server, shared.err
}

// exec1 runs one statement on its own connection.
func exec1(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// Conn is a plain connection to dsn, for looking behind a store; it is
// closed when the test ends.
func Conn(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
