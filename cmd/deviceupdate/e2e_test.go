package main_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/client"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

func TestMain(m *testing.M) { e2e.Main(m) }

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestServeOnEmptyFolders is issue 2's "done when": serve on empty folders
// answers /healthz over HTTPS verified against the generated ca.crt under
// the name ucupdates-r2.<domain>, and over internal HTTP; SIGTERM stops it
// cleanly.
func TestServeOnEmptyFolders(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Domain: "contoso.com"})

	for _, name := range []string{"created", "ca.crt", "ca.key", "server.crt", "server.key", "admin.token"} {
		if !strings.Contains(srv.Stdout(), name) {
			t.Errorf("stdout does not announce %s:\n%s", name, srv.Stdout())
		}
	}
	for _, name := range []string{"ucupdates-r2.contoso.com", "UCUpdates-R2"} {
		code, body := get(t, srv.Client(name), srv.URL()+"/healthz")
		if code != 200 || body != "ok\n" {
			t.Errorf("https /healthz as %s = %d %q", name, code, body)
		}
	}
	code, body := get(t, http.DefaultClient, srv.InternalURL()+"/healthz")
	if code != 200 || body != "ok\n" {
		t.Errorf("http /healthz = %d %q", code, body)
	}
	if code, _ := get(t, srv.Client("ucupdates-r2.contoso.com"), srv.URL()+"/healthz"); code != 200 {
		t.Fatal("second https request failed")
	}

	metrics := srv.Metrics()
	for _, want := range []string{
		`deviceupdate_http_requests_total{code="200",listener="https",method="GET",route="/healthz"} 3`,
		`deviceupdate_http_requests_total{code="200",listener="http",method="GET",route="/healthz"} 1`,
		"process_resident_memory_bytes",
		"go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The admin API, reached the way every admin command will reach it:
	// the server from the environment, the token and CA from the certs folder.
	opts, err := client.Resolve(client.Options{}, func(k string) string {
		return map[string]string{client.EnvServer: srv.URL(), client.EnvCerts: srv.Certs}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.ServerInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Domain != "contoso.com" || info.SchemaVersion != store.SchemaVersion {
		t.Errorf("server info = %+v", info)
	}

	if code := srv.Stop(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0\n%s", code, srv.Stderr())
	}
	// Every request is logged with its request ID (the log is buffered:
	// all of it is out once the server stopped).
	var logged int
	for _, l := range srv.Logs() {
		if l["msg"] == "request" {
			logged++
			if id, _ := l["request_id"].(string); id == "" {
				t.Errorf("request log line without request_id: %v", l)
			}
		}
	}
	if logged < 5 {
		t.Errorf("%d request log lines, want at least 5", logged)
	}

	if srv.FindLog("stopped") == nil {
		t.Error("no \"stopped\" log line")
	}
	for path, mode := range map[string]fs.FileMode{
		filepath.Join(srv.Data, "deviceupdate.db"):      0o600,
		filepath.Join(srv.Certs, "admin.token"):         0o600,
		filepath.Join(srv.Certs, "ca.key"):              0o600,
		filepath.Join(srv.Certs, "server.key"):          0o600,
		filepath.Join(srv.Certs, "trusted"):             0o755 | fs.ModeDir,
		filepath.Join(srv.Certs, "server.crt"):          0o644,
		filepath.Join(srv.Certs, "ca.crt"):              0o644,
		filepath.Join(srv.Data):                         0o750 | fs.ModeDir,
		filepath.Join(filepath.Dir(srv.Certs), "certs"): 0o700 | fs.ModeDir,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode() != mode {
			t.Errorf("%s mode = %v, want %v", path, fi.Mode(), mode)
		}
	}
	// The store was closed: it opens again at once.
	db, err := store.Open(srv.Data, store.Options{})
	if err != nil {
		t.Fatalf("store after stop: %v", err)
	}
	if err := db.Check(); err != nil {
		t.Error(err)
	}
	db.Close()
}

func TestServeRestartKeepsCertificatesAndToken(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	ca1, _ := os.ReadFile(filepath.Join(srv.Certs, "ca.crt"))
	tok1 := srv.Token()
	if code := srv.Stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	again := e2e.Start(t, e2e.Options{Data: srv.Data, Certs: srv.Certs})
	defer again.Stop()
	if strings.Contains(again.Stdout(), "created") {
		t.Errorf("restart created files:\n%s", again.Stdout())
	}
	ca2, _ := os.ReadFile(filepath.Join(srv.Certs, "ca.crt"))
	if string(ca1) != string(ca2) || again.Token() != tok1 {
		t.Error("restart replaced the CA or the token")
	}
	if code, _ := get(t, again.Client("ucupdates-r2.contoso.com"), again.URL()+"/healthz"); code != 200 {
		t.Errorf("/healthz after restart = %d", code)
	}
}

// TestServeRefusesBadStarts: each bad start exits non-zero with one line
// naming the cause and the fix, and leaves no files behind.
func TestServeRefusesBadStarts(t *testing.T) {
	running := e2e.Start(t, e2e.Options{})
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	otherCerts := t.TempDir()
	if _, err := certs.Ensure(otherCerts, certs.Options{Domain: "contoso.com"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		prepare  func(t *testing.T, dir string) []string // returns the serve flags
		wantCode int
		wantText string
	}{
		{"unknown flag", func(t *testing.T, dir string) []string {
			return []string{"--htps", ":8443"}
		}, 2, "unknown flag: --htps"},
		{"unreadable config", func(t *testing.T, dir string) []string {
			return []string{"--config", filepath.Join(dir, "missing.yaml")}
		}, 1, "read config: open"},
		{"config with an unknown key", func(t *testing.T, dir string) []string {
			cfg := filepath.Join(dir, "c.yaml")
			os.WriteFile(cfg, []byte("https: :8443\nhtps: :9443\n"), 0o600)
			return []string{"--config", cfg}
		}, 1, `line 2: unknown setting "htps"`},
		{"config that is not YAML", func(t *testing.T, dir string) []string {
			cfg := filepath.Join(dir, "c.yaml")
			os.WriteFile(cfg, []byte("https: [\n"), 0o600)
			return []string{"--config", cfg}
		}, 1, "c.yaml"},
		{"bad log level", func(t *testing.T, dir string) []string {
			return []string{"--log-level", "loud"}
		}, 1, "--log-level \"loud\""},
		{"rollouts judged never", func(t *testing.T, dir string) []string {
			return []string{"--rollout-every", "0s"}
		}, 2, "--rollout-every 0s"},
		{"https port in use", func(t *testing.T, dir string) []string {
			return []string{"--https", busy.Addr().String()}
		}, 1, "address already in use"},
		{"http port in use", func(t *testing.T, dir string) []string {
			return []string{"--http", busy.Addr().String()}
		}, 1, "choose another with --http"},
		{"store locked by a running server", func(t *testing.T, dir string) []string {
			return []string{"--data", running.Data}
		}, 1, "store is locked by another process"},
		{"certificate that does not match its key", func(t *testing.T, dir string) []string {
			c := filepath.Join(dir, "certs")
			os.Mkdir(c, 0o700)
			copyFile(t, filepath.Join(otherCerts, "server.crt"), filepath.Join(c, "server.crt"))
			copyFile(t, filepath.Join(otherCerts, "ca.key"), filepath.Join(c, "server.key"))
			return []string{"--certs", c}
		}, 1, "certificate does not match its key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"serve", "--https", "127.0.0.1:0", "--http", "127.0.0.1:0", "--domain", "contoso.com"}
			args = append(args, tt.prepare(t, dir)...)
			before := listFiles(t, dir)
			res := e2e.Run(t, dir, nil, args...)
			if res.Code != tt.wantCode {
				t.Fatalf("exit code = %d, want %d\nstderr: %s", res.Code, tt.wantCode, res.Stderr)
			}
			lines := strings.Split(strings.TrimRight(res.Stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "deviceupdate: ") {
				t.Errorf("stderr is not one deviceupdate: line:\n%s", res.Stderr)
			}
			if !strings.Contains(res.Stderr, tt.wantText) {
				t.Errorf("stderr %q lacks %q", res.Stderr, tt.wantText)
			}
			if after := listFiles(t, dir); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Errorf("a refused start left files: before %v, after %v", before, after)
			}
		})
	}
}

func TestCertsInitThenServe(t *testing.T) {
	dir := t.TempDir()
	certsDir := filepath.Join(dir, "certs")
	res := e2e.Run(t, dir, nil, "certs", "init", "--domain", "contoso.com", "--certs", certsDir, "--ip", "127.0.0.1")
	if res.Code != 0 {
		t.Fatalf("certs init: %d %s", res.Code, res.Stderr)
	}
	for _, f := range []string{"ca.crt", "ca.key", "server.crt", "server.key", "admin.token"} {
		if !strings.Contains(res.Stdout, filepath.Join(certsDir, f)) {
			t.Errorf("certs init did not report %s:\n%s", f, res.Stdout)
		}
	}
	again := e2e.Run(t, dir, []string{"DEVICEUPDATE_CERTS=" + certsDir}, "certs", "init", "--domain", "contoso.com")
	if again.Code != 0 || !strings.Contains(again.Stdout, "nothing created") {
		t.Errorf("second certs init (folder from $DEVICEUPDATE_CERTS): %d %q %q", again.Code, again.Stdout, again.Stderr)
	}
	srv := e2e.Start(t, e2e.Options{Certs: certsDir})
	defer srv.Stop()
	if srv.Stdout() != "" {
		t.Errorf("serve created files beside certs init's:\n%s", srv.Stdout())
	}
	if code, _ := get(t, srv.Client("UCUpdates-R2.contoso.com"), srv.URL()+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
}

// TestOperatorCertificateUsedAsIs: a server.crt/server.key the operator
// put in --certs is served unchanged, and a missing discovery name is
// reported in the log.
func TestOperatorCertificateUsedAsIs(t *testing.T) {
	issued := t.TempDir()
	if _, err := certs.Ensure(issued, certs.Options{Domain: "fabrikam.com", IPs: []net.IP{net.ParseIP("127.0.0.1")}}); err != nil {
		t.Fatal(err)
	}
	certsDir := t.TempDir()
	for _, f := range []string{"server.crt", "server.key", "ca.crt"} {
		copyFile(t, filepath.Join(issued, f), filepath.Join(certsDir, f))
	}
	srv := e2e.Start(t, e2e.Options{Certs: certsDir, Domain: "contoso.com"})
	defer srv.Stop()
	if code, _ := get(t, srv.Client("ucupdates-r2.fabrikam.com"), srv.URL()+"/healthz"); code != 200 {
		t.Errorf("/healthz with the operator's certificate = %d", code)
	}
	if _, err := os.Stat(filepath.Join(certsDir, "ca.key")); err == nil {
		t.Error("a CA key appeared beside the operator's certificate")
	}
	w := srv.FindLog("server certificate lacks a discovery name; phones finding the service by DNS will refuse it")
	fix, _ := w["fix"].(string)
	if w == nil || fmt.Sprint(w["missing"]) != "[UCUpdates-R2.contoso.com]" ||
		!strings.HasPrefix(fix, `have the CA that issued it ("deviceupdate CA fabrikam.com") reissue it with UCUpdates-R2 and UCUpdates-R2.contoso.com`) {
		t.Errorf("no warning naming UCUpdates-R2.contoso.com and the fix; log:\n%s", srv.Stderr())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// listFiles lists every path under dir.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil {
			out = append(out, path)
		}
		return nil
	})
	return out
}
