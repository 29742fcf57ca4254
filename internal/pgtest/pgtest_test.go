package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}

// A server of its own answers over TCP and its unix socket, runs with
// fsync off, and is gone, folder and all, once stopped.
func TestNewServer(t *testing.T) {
	began := time.Now()
	s, err := NewServer()
	if err != nil {
		skipOrFail(t, err)
	}
	t.Logf("initdb and start took %v", time.Since(began))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = s.Stop()
		}
	})
	ctx := context.Background()
	conn := connect(t, s.DSN("postgres"))
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "off" {
		t.Errorf("fsync = %s, want off", fsync)
	}
	sock := filepath.Join(s.Dir, ".s.PGSQL."+strconv.Itoa(s.Port))
	if _, err := os.Stat(sock); err != nil {
		t.Errorf("no unix socket: %v", err)
	}
	viaSocket := connect(t, "host="+s.Dir+" port="+strconv.Itoa(s.Port)+" user=postgres dbname=postgres")
	if err := viaSocket.Ping(ctx); err != nil {
		t.Errorf("ping over the socket: %v", err)
	}
	conn.Close(ctx)
	viaSocket.Close(ctx)

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("folder %s left behind: %v", s.Dir, err)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still answers after Stop", s.Port)
	}
}

// Start's server serves the test and is stopped with it.
func TestStart(t *testing.T) {
	var dir string
	t.Run("server", func(t *testing.T) {
		dsn := Start(t)
		conn := connect(t, dsn)
		if err := conn.QueryRow(context.Background(), "SELECT current_setting('data_directory')").Scan(&dir); err != nil {
			t.Fatal(err)
		}
	})
	if dir == "" {
		t.Skip("no server")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data folder %s outlived the test: %v", dir, err)
	}
}

// Each DB is a database of its own, dropped when its test ends.
func TestDB(t *testing.T) {
	ctx := context.Background()
	var first string
	t.Run("first", func(t *testing.T) {
		first = DB(t)
		conn := connect(t, first)
		if _, err := conn.Exec(ctx, "CREATE TABLE mine (x int)"); err != nil {
			t.Fatal(err)
		}
		second := DB(t)
		if second == first {
			t.Fatalf("two calls gave the same database %s", first)
		}
		var n int
		err := connect(t, second).QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'mine'").Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("a table made in one database shows in another")
		}
	})
	if first == "" {
		t.Skip("no server")
	}
	_, err := pgx.Connect(ctx, first)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		t.Errorf("connecting to a finished test's database: %v, want it not to exist", err)
	}
}

// leakEnv makes TestLeakHelper start a server and wait to be killed.
const leakEnv = "PGTEST_LEAK_HELPER"

func TestLeakHelper(t *testing.T) {
	if os.Getenv(leakEnv) == "" {
		t.Skip("run by TestSweepKilled")
	}
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("server %s %d\n", s.Dir, s.Port)
	select {} // until killed
}

// A server whose test binary was killed (a test timeout) is stopped, and
// its folder deleted, by the next server's start.
func TestSweepKilled(t *testing.T) {
	if _, err := findBin(); err != nil {
		skipOrFail(t, err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeakHelper$", "-test.v")
	cmd.Env = append(os.Environ(), leakEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	var port int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, _ := fmt.Sscanf(sc.Text(), "server %s %d", &dir, &port); n == 2 {
			break
		}
	}
	if dir == "" {
		_ = cmd.Process.Kill()
		t.Fatalf("the helper started no server: %v", cmd.Wait())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed binary's folder is not there to sweep: %v", err)
	}

	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed binary's folder %s is still there: %v", dir, err)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
		c.Close()
		t.Errorf("the killed binary's server still answers on port %d", port)
	}
}
