package main_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// serveOnce runs `serve` on data and certs until it exits or logs
// "started"; a server that started is stopped with SIGTERM. It returns what
// the process printed, its exit code, and whether it started.
func serveOnce(t *testing.T, data, certsDir string) (res e2e.Result, started bool) {
	t.Helper()
	cmd := exec.Command(e2e.Binary(t), "serve", "--data", data, "--certs", certsDir, "--domain", "contoso.com",
		"--https", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "debug")
	cmd.Env = e2e.Env()
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(&stderr, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(exited)
	}()
	sawStart := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"msg":"started"`) {
				close(sawStart)
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case <-exited:
	case <-sawStart:
		started = true
		_ = cmd.Process.Signal(os.Interrupt)
		<-exited
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("serve neither started nor exited within 90 s\n%s", stderr.String())
	}
	return e2e.Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}, started
}

// treeSums maps every file under dir (relative path) to its SHA-256.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyTree copies the regular files and folders of from into to.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLostStoreKeepsFirmware: beside a DeviceUpdateStore full of imported
// updates, a store that was deleted, emptied or truncated to half refuses
// the start with one line naming the fix, and every update file is still
// there afterwards; an update folder no record names is left in place and
// named in a warning.
func TestLostStoreKeepsFirmware(t *testing.T) {
	// A real store: a server that imported two packages, approved one and
	// answered phones.
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	for i, v := range []string{"4.0.7577.4100", "4.0.7577.4366"} {
		files := testpkg.Files{}
		testpkg.AddUpdate(t, files, "", v, testpkg.Image(64<<10, byte(i)), sign)
		testpkg.AddUpdate(t, files, "CX700/", v, testpkg.Image(48<<10, byte(i+10)), sign)
		if res := e2e.Run(t, "", env, "import", testpkg.MakeCab(t, files)); res.Code != 0 {
			t.Fatal(res.Stderr)
		}
	}
	if res := e2e.Run(t, "", env, "rule", "approve", "UCPhone/Polycom/CX600/A/ENU/CPE"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	for i := range 50 {
		mac := "00-04-F2-01-00-" + strings.ToUpper(hex.EncodeToString([]byte{byte(i)}))
		if code, body := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(mac, "CX600", "4.0.7577.4000")); code != 200 {
			t.Fatalf("poll: %d %s", code, body)
		}
	}
	if code := srv.Stop(); code != 0 {
		t.Fatalf("stop: %d\n%s", code, srv.Stderr())
	}
	stored := treeSums(t, filepath.Join(srv.Data, updatestore.Dir))
	if len(stored) != 4*3 {
		t.Fatalf("the imports stored %d files, want 12: %v", len(stored), stored)
	}
	dbPath := filepath.Join(srv.Data, store.FileName)
	fi, err := os.Stat(dbPath)
	if err != nil {
		t.Fatal(err)
	}

	unknown := filepath.Join(updatestore.Dir, "UCPhone", "Polycom", "CX600", "A", "ENU", "4.0.7577.9000", "CPE")
	tests := []struct {
		name        string
		damage      func(t *testing.T, data string)
		wantStart   bool
		wantStderr  []string // in the one line of a refusal; {data} is the data folder
		wantWarning string   // a log line of a start
	}{
		{"store deleted", func(t *testing.T, data string) {
			os.Remove(filepath.Join(data, store.FileName))
		}, false, []string{"the store is missing", "{data}/DeviceUpdateStore holds update files", "restore deviceupdate.db from a backup (deviceupdate restore)", "move {data}/DeviceUpdateStore aside"}, ""},
		{"store emptied", func(t *testing.T, data string) {
			os.Truncate(filepath.Join(data, store.FileName), 0)
		}, false, []string{"the store is empty (0 bytes)", "restore deviceupdate.db from a backup (deviceupdate restore)"}, ""},
		{"store truncated to half", func(t *testing.T, data string) {
			os.Truncate(filepath.Join(data, store.FileName), fi.Size()/2)
		}, false, []string{"deviceupdate.db is damaged (", "): restore it from a backup (deviceupdate restore)"}, ""},
		{"a folder no record names", func(t *testing.T, data string) {
			dir := filepath.Join(data, unknown)
			os.MkdirAll(dir, 0o750)
			os.WriteFile(filepath.Join(dir, "CPE.nbt"), []byte("firmware the store does not know"), 0o640)
		}, true, nil, "update folder unaccounted for: no record names it; left in place"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "DeviceUpdateFiles")
			copyTree(t, srv.Data, data)
			tt.damage(t, data)
			want := treeSums(t, filepath.Join(data, updatestore.Dir))

			res, started := serveOnce(t, data, srv.Certs)
			if started != tt.wantStart {
				t.Errorf("started = %v, want %v (exit %d)\nstderr:\n%s", started, tt.wantStart, res.Code, res.Stderr)
			}
			t.Logf("exit %d: %s", res.Code, strings.SplitN(res.Stderr, "\n", 2)[0])
			if !tt.wantStart {
				lines := strings.Split(strings.TrimRight(res.Stderr, "\n"), "\n")
				if res.Code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "deviceupdate: ") {
					t.Errorf("exit %d, stderr is not one deviceupdate: line:\n%s", res.Code, res.Stderr)
				}
				for _, s := range tt.wantStderr {
					if s = strings.ReplaceAll(s, "{data}", data); !strings.Contains(res.Stderr, s) {
						t.Errorf("stderr lacks %q:\n%s", s, res.Stderr)
					}
				}
			}
			if tt.wantWarning != "" && !strings.Contains(res.Stderr, tt.wantWarning) ||
				tt.wantWarning != "" && !strings.Contains(res.Stderr, jsonString(filepath.Join(data, unknown))) {
				t.Errorf("no warning %q naming %s:\n%s", tt.wantWarning, unknown, res.Stderr)
			}
			got := treeSums(t, filepath.Join(data, updatestore.Dir))
			for f, sum := range want {
				if got[f] != sum {
					t.Errorf("%s: gone or changed after the start", f)
				}
			}
		})
	}
}

// jsonString returns s as a JSON log line writes it, without the quotes.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
