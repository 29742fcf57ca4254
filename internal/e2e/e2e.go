// Package e2e runs the real deviceupdate binary for end-to-end tests:
// it builds cmd/deviceupdate once per test process, starts `serve` on
// free loopback ports with temporary folders, waits until it answers,
// and stops it with SIGTERM. Tests talk to it over the network only.
//
// A package using it calls e2e.Main from its TestMain so that the built
// binary is removed afterwards.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	startTimeout = 90 * time.Second // a -race binary on a busy 2-core machine starts slowly
	stopTimeout  = 45 * time.Second
	pkgPath      = "github.com/deviceupdate/deviceupdate/cmd/deviceupdate"
)

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

// Main runs the tests and removes the built binary.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// Binary returns the path of the deviceupdate binary, building it on first
// use (with -race when the tests run with it, and the VCS information the
// go command stamps in a clone).
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "deviceupdate-e2e-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "deviceupdate")
		// -buildvcs=auto over a GOFLAGS=-buildvcs=false: in a git clone
		// the binary names its commit, as a release build does.
		args := []string{"build", "-buildvcs=auto", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, pkgPath)...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// Env returns the environment for the binary: this process's, without any
// DEVICEUPDATE_ variable, plus extra.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEVICEUPDATE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Result is what a finished command printed and its exit code.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs the binary to completion with args, in the folder dir ("" for
// the test's working folder) and the given extra environment.
func Run(tb testing.TB, dir string, env []string, args ...string) Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(tb), args...)
	cmd.Dir = dir
	cmd.Env = Env(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		tb.Fatalf("run deviceupdate %v: %v", args, err)
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// Options configure Start. Empty folders are made under t.TempDir().
type Options struct {
	Data   string   // --data
	Certs  string   // --certs
	Domain string   // --domain; default contoso.com
	NoHTTP bool     // start without the internal HTTP listener
	Args   []string // further flags
	Dir    string   // working folder; default a temporary one
	Env    []string // further environment variables (KEY=VALUE)
}

// Server is a running `deviceupdate serve`.
type Server struct {
	tb        testing.TB
	cmd       *exec.Cmd
	Data      string
	Certs     string
	Domain    string
	HTTPSAddr string // host:port of the HTTPS listener
	HTTPAddr  string // host:port of the internal HTTP listener, "" when off
	DNSAddr   string // host:port of the discovery responder (UDP and TCP), "" when off
	stdout    string // a file: the server writes it itself, so what it printed before logging "started" is there when Start returns
	stderr    *lockedBuffer
	done      chan struct{}
	waitErr   error

	// ExternalAddr and MetricsAddr are the --external (HTTPS) and
	// --metrics (plain HTTP) listeners' host:port, "" when off.
	ExternalAddr, MetricsAddr string
}

// Start runs `deviceupdate serve` on 127.0.0.1:0 and returns once it has
// logged "started". The server is killed when the test ends if it still runs.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	if o.Data == "" {
		o.Data = filepath.Join(tb.TempDir(), "DeviceUpdateFiles")
	}
	if o.Certs == "" {
		o.Certs = filepath.Join(tb.TempDir(), "certs")
	}
	if o.Domain == "" {
		o.Domain = "contoso.com"
	}
	if o.Dir == "" {
		o.Dir = tb.TempDir()
	}
	httpAddr := "127.0.0.1:0"
	if o.NoHTTP {
		httpAddr = ""
	}
	args := append([]string{"serve",
		"--data", o.Data, "--certs", o.Certs, "--domain", o.Domain,
		"--https", "127.0.0.1:0", "--http", httpAddr, "--log-level", "debug",
	}, o.Args...)
	s := &Server{
		tb: tb, Data: o.Data, Certs: o.Certs, Domain: o.Domain,
		stdout: filepath.Join(tb.TempDir(), "stdout"), stderr: &lockedBuffer{}, done: make(chan struct{}),
	}
	s.cmd = exec.Command(Binary(tb), args...)
	s.cmd.Dir = o.Dir
	s.cmd.Env = Env(o.Env...)
	stdout, err := os.Create(s.stdout)
	if err != nil {
		tb.Fatal(err)
	}
	defer stdout.Close() // the child holds its own copy
	s.cmd.Stdout = stdout
	pr, pw := io.Pipe()
	s.cmd.Stderr = io.MultiWriter(s.stderr, pw)
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})

	started := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		reported := false
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			switch line["msg"] {
			case "listening":
				switch line["listener"] {
				case "https":
					s.HTTPSAddr, _ = line["addr"].(string)
				case "http":
					s.HTTPAddr, _ = line["addr"].(string)
				case "dns":
					s.DNSAddr, _ = line["addr"].(string)
				case "external":
					s.ExternalAddr, _ = line["addr"].(string)
				case "metrics":
					s.MetricsAddr, _ = line["addr"].(string)
				}
			case "started":
				if !reported {
					started <- nil
					reported = true
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
		if !reported {
			started <- errors.New("the server exited before it started")
		}
	}()
	select {
	case err := <-started:
		if err != nil {
			<-s.done
			tb.Fatalf("%v: %v\nstderr:\n%s", err, s.waitErr, s.stderr)
		}
	case <-time.After(startTimeout):
		tb.Fatalf("the server did not start within %v\nstderr:\n%s", startTimeout, s.stderr)
	}
	return s
}

// URL returns the HTTPS base URL.
func (s *Server) URL() string { return "https://" + s.HTTPSAddr }

// InternalURL returns the plain-HTTP base URL.
func (s *Server) InternalURL() string { return "http://" + s.HTTPAddr }

// ExternalURL returns the base URL of the --external HTTPS listener.
func (s *Server) ExternalURL() string { return "https://" + s.ExternalAddr }

// MetricsURL returns the base URL of the --metrics listener.
func (s *Server) MetricsURL() string { return "http://" + s.MetricsAddr }

// CAPool returns the pool holding the server's ca.crt.
func (s *Server) CAPool() *x509.CertPool {
	s.tb.Helper()
	data, err := os.ReadFile(filepath.Join(s.Certs, "ca.crt"))
	if err != nil {
		s.tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		s.tb.Fatal("ca.crt holds no certificate")
	}
	return pool
}

// Client returns an HTTP client that trusts only ca.crt and verifies the
// server's certificate for serverName, whatever address it dials.
func (s *Server) Client(serverName string) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CAPool(), ServerName: serverName}}
	s.tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Token returns the admin token.
func (s *Server) Token() string {
	s.tb.Helper()
	data, err := os.ReadFile(filepath.Join(s.Certs, "admin.token"))
	if err != nil {
		s.tb.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// Metrics returns the text of /metrics, asked over HTTPS with the admin
// token.
func (s *Server) Metrics() string {
	s.tb.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+"/metrics", nil)
	if err != nil {
		s.tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token())
	resp, err := s.Client("127.0.0.1").Do(req)
	if err != nil {
		s.tb.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		s.tb.Fatalf("GET /metrics: %s %v: %.200s", resp.Status, err, body)
	}
	return string(body)
}

// Stop sends SIGTERM and returns the exit code.
func (s *Server) Stop() int {
	s.tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.tb.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.tb.Fatalf("the server did not stop within %v of SIGTERM\nstderr:\n%s", stopTimeout, s.stderr)
	}
	return s.cmd.ProcessState.ExitCode()
}

// Kill sends SIGKILL, as a crash or an OOM killer would, and waits for the
// process to end.
func (s *Server) Kill() {
	s.tb.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		s.tb.Fatalf("the server did not die within %v of SIGKILL", stopTimeout)
	}
}

// PID returns the server's process ID, e.g. to read its peak memory in
// /proc/PID/status.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stdout returns what the server printed on stdout so far.
func (s *Server) Stdout() string {
	data, err := os.ReadFile(s.stdout)
	if err != nil {
		s.tb.Fatal(err)
	}
	return string(data)
}

// Stderr returns the server's log so far.
func (s *Server) Stderr() string { return s.stderr.String() }

// Logs returns the server's JSON log lines so far.
func (s *Server) Logs() []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(s.stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// FindLog returns the first log line with the given message, or nil.
func (s *Server) FindLog(msg string) map[string]any {
	for _, l := range s.Logs() {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
