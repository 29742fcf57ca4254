package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// adminEnv is the environment that points admin commands at srv.
func adminEnv(srv *e2e.Server) []string {
	return []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
}

// mustRun runs an admin command that must succeed and returns its stdout.
func mustRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	res := e2e.Run(t, "", env, args...)
	if res.Code != 0 {
		t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), res.Code, res.Stderr)
	}
	return res.Stdout
}

// stateViews are the read-only commands whose answers a restored server
// must give exactly as the original did.
var stateViews = [][]string{
	{"rule", "list", "--json"},
	{"testdevice", "list", "--json"},
	{"user", "list", "--json"},
	{"admin", "list", "--json"},
	{"admin", "token", "olivia", "--list", "--json"},
	{"config", "get", "--json"},
	{"config", "get", "--site", "Redmond", "--json"},
	{"site", "list", "--json"},
	{"device", "list", "--json"},
}

func views(t *testing.T, env []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, args := range stateViews {
		out[strings.Join(args, " ")] = mustRun(t, env, args...)
	}
	return out
}

// download fetches an internal update file and returns its SHA-256.
func download(t *testing.T, srv *e2e.Server, path string) string {
	t.Helper()
	resp, err := http.Get(srv.InternalURL() + "/DeviceUpdateFiles_Int/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("download %s: %d %v", path, resp.StatusCode, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fillSingleServer gives a running server some of every kind of state: two
// updates of CX600's rule, the first approved, the second pending; a site
// Redmond, a global and a site setting, a test device, a user, and an
// operator olivia with a token. It returns the updates' images by
// version, the environment variable of olivia's token, and the CA that
// signed the packages.
func fillSingleServer(t *testing.T, srv *e2e.Server) (images map[string][]byte, oliviaToken string, ca *testpki.Authority) {
	t.Helper()
	env := adminEnv(srv)
	ca = testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	images = map[string][]byte{}
	for i, v := range []string{"4.0.7577.4366", "4.0.7577.4400"} {
		files := testpkg.Files{}
		images[v] = testpkg.Image(300<<10+i, byte(i+1))
		testpkg.AddUpdate(t, files, "", v, images[v], sign)
		mustRun(t, env, "import", testpkg.MakeCab(t, files))
		if i == 0 {
			mustRun(t, env, "rule", "approve", "UCPhone/Polycom/CX600/A/ENU/CPE")
		}
	}
	mustRun(t, env, "site", "set", "Redmond", "--subnet", "10.1.0.0/16")
	mustRun(t, env, "config", "set", "PollIntervalSeconds=3600")
	mustRun(t, env, "config", "set", "--site", "Redmond", "PeerFirmwareSharing=true")
	mustRun(t, env, "testdevice", "add", "--name", "lab", "--mac", "00-04-F2-00-00-99")
	if res := runStdin(t, env, "a long phone password\n", "user", "add", "phone.redmond", "--password-stdin"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	mustRun(t, env, "admin", "add", "olivia", "--role", "operator", "--no-password")
	return images, "DEVICEUPDATE_TOKEN=" + strings.TrimSpace(mustRun(t, env, "admin", "token", "olivia")), ca
}

// TestBackupRestoreThroughCLI: a backup of a running server, restored into
// empty folders, starts a server with the same rules, test devices, users,
// configuration, sites, admins and their tokens, inventory, device logs
// and files, and a trail
// that verifies; the backup is written with mode 0600 and audited.
func TestBackupRestoreThroughCLI(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	env := adminEnv(srv)
	images, oliviaToken, _ := fillSingleServer(t, srv)
	for i := range 3 {
		mac := fmt.Sprintf("00-04-F2-00-01-%02d", i)
		if code, body := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(mac, "CX600", "4.0.7577.4100")); code != 200 {
			t.Fatalf("poll: %d %s", code, body)
		}
	}
	if code, msg := uploadLog(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/Files", logQuery("00-04-F2-00-01-00", "CELog", "celog.clg"), []byte("CE log line\r\n"), false); code != 200 {
		t.Fatalf("log upload: %d %s", code, msg)
	}
	before := views(t, env)
	logsBefore := mustRun(t, env, "logs", "list", "--json")
	trailBefore := mustRun(t, env, "audit", "list", "--json")

	backup := filepath.Join(t.TempDir(), "state.tar")
	res := e2e.Run(t, "", env, "backup", "-o", backup, "--logs")
	if res.Code != 0 {
		t.Fatalf("backup: exit %d: %s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stdout, "wrote "+backup) || !strings.Contains(res.Stdout, "secret") {
		t.Errorf("backup output does not name the file and warn of its secrets:\n%s", res.Stdout)
	}
	fi, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(backup + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("%s.tmp left behind: %v", backup, err)
	}
	var trail struct{ Entries []deviceupdate.AuditEntry }
	if err := json.Unmarshal([]byte(mustRun(t, env, "audit", "list", "--action", "backup", "--json")), &trail); err != nil || len(trail.Entries) != 1 || trail.Entries[0].Result != "ok" {
		t.Errorf("the backup is not audited once as ok: %v %+v", err, trail.Entries)
	}
	// An existing file is never overwritten.
	if res := e2e.Run(t, "", env, "backup", "-o", backup); res.Code != 1 || !strings.Contains(res.Stderr, "exists") {
		t.Errorf("backup over an existing file: exit %d %q", res.Code, res.Stderr)
	}

	parent := t.TempDir()
	data2, certs2 := filepath.Join(parent, "DeviceUpdateFiles"), filepath.Join(parent, "certs")
	res = e2e.Run(t, "", nil, "restore", backup, "--data", data2, "--certs", certs2)
	if res.Code != 0 {
		t.Fatalf("restore: exit %d: %s", res.Code, res.Stderr)
	}
	for _, secret := range []string{"ca.key", "server.key", "admin.token"} {
		if fi, err := os.Stat(filepath.Join(certs2, secret)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("restored %s: %v %v, want mode 0600", secret, err, fi)
		}
	}
	srv.Stop()
	// The backup's own entry is a change like any other: the store's
	// head names it, so a restart finds nothing to mark as not applied.
	orig := e2e.Start(t, e2e.Options{Data: srv.Data, Certs: srv.Certs})
	if out := mustRun(t, adminEnv(orig), "audit", "list", "--action", "audit.", "--json"); strings.Contains(out, `"seq"`) {
		t.Errorf("after a backup and a restart, the trail marks entries: %s", out)
	}
	if out := mustRun(t, adminEnv(orig), "audit", "verify"); !strings.Contains(out, "intact") {
		t.Errorf("audit verify after a backup and a restart: %s", out)
	}
	orig.Stop()

	again := e2e.Start(t, e2e.Options{Data: data2, Certs: certs2})
	env2 := adminEnv(again)
	// Admins and their tokens are in the backup: olivia's token works on
	// the restored server.
	mustRun(t, append(adminEnv(again), oliviaToken), "rule", "list")
	after := views(t, env2)
	for view, want := range before {
		if after[view] != want {
			t.Errorf("%s differs after restore:\nbefore %s\nafter  %s", view, want, after[view])
		}
	}
	// The service lists a log with the time of its upload, and the file
	// keeps the time it was written, a few milliseconds apart: a restart
	// moves the one to the other, a restore too.
	var logs1, logs2 []deviceupdate.DeviceLog
	if err := json.Unmarshal([]byte(logsBefore), &logs1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(mustRun(t, env2, "logs", "list", "--json")), &logs2); err != nil {
		t.Fatal(err)
	}
	if len(logs1) != 1 || len(logs2) != 1 || logs1[0].Path() != logs2[0].Path() || logs1[0].Size != logs2[0].Size ||
		logs1[0].Modified.Sub(logs2[0].Modified).Abs() > time.Second {
		t.Errorf("logs differ after restore: %+v, before %+v", logs2, logs1)
	}
	if got := mustRun(t, env2, "audit", "list", "--json"); got != trailBefore {
		t.Errorf("the restored trail differs from the trail at the backup:\nbefore %s\nafter  %s", trailBefore, got)
	}
	if out := mustRun(t, env2, "audit", "verify"); !strings.Contains(out, "intact") {
		t.Errorf("audit verify on the restored server: %s", out)
	}
	for v, image := range images {
		sum := sha256.Sum256(image)
		if got := download(t, again, "UCPhone/Polycom/CX600/A/ENU/"+v+"/CPE/CPE.nbt"); got != hex.EncodeToString(sum[:]) {
			t.Errorf("download of %s after restore: sha256 %s, want %x", v, got, sum)
		}
	}
	// The restored server goes on working: its token, its trail.
	mustRun(t, env2, "rule", "approve", "UCPhone/Polycom/CX600/A/ENU/CPE")
	mustRun(t, env2, "audit", "verify")
}

// TestBackupDuringImports: backups taken while packages are being
// imported and files clear removes old versions hold exactly the updates
// their store records: no file without a record, no record without its
// files.
func TestBackupDuringImports(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{NoHTTP: true})
	env := adminEnv(srv)
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	const nPackages = 8
	packages := twoModelPackages(t, sign, nPackages, 6000, 2<<20)

	var imported atomic.Int32
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := srv.Client("UCUpdates-R2.contoso.com")
			for i := w; i < nPackages; i += 2 {
				req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/admin/api/v1/packages?name=p.cab", bytes.NewReader(packages[i]))
				req.Header.Set("Authorization", "Bearer "+srv.Token())
				resp, err := c.Do(req)
				if err != nil {
					t.Errorf("import %d: %v", i, err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("import %d: %s", i, resp.Status)
				}
				imported.Add(1)
			}
		}()
	}
	// files clear removes the versions imports push out of the rules,
	// records and folders, as backups run.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for imported.Load() < nPackages {
			if res := e2e.Run(t, "", env, "files", "clear", "--yes"); res.Code != 0 {
				t.Errorf("files clear: %s", res.Stderr)
				return
			}
		}
	}()
	go func() { wg.Wait(); close(done) }()

	var backups []string
	during := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			during++
		}
		out := filepath.Join(t.TempDir(), fmt.Sprintf("b%d.tar", len(backups)))
		mustRun(t, env, "backup", "-o", out)
		backups = append(backups, out)
	}
	t.Logf("%d backups, %d of them while imports ran", len(backups), during)

	for i, b := range backups {
		parent := t.TempDir()
		data, certsDir := filepath.Join(parent, "data"), filepath.Join(parent, "certs")
		if res := e2e.Run(t, "", nil, "restore", b, "--data", data, "--certs", certsDir); res.Code != 0 {
			t.Fatalf("restore of backup %d: %s", i, res.Stderr)
		}
		records := checkStoreMatchesFiles(t, data)
		t.Logf("backup %d: %d updates", i, records)
	}
}

// checkStoreMatchesFiles checks that every update the store in data
// records has its files, with their recorded bytes, and that no update
// folder lacks a record; it returns the number of records.
func checkStoreMatchesFiles(t *testing.T, data string) int {
	t.Helper()
	db, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	updates, err := db.Updates()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, u := range updates {
		dir := updatestore.Folder(data, u.RuleKey, u.Version)
		known[dir] = true
		for _, f := range u.Files() {
			b, err := os.ReadFile(filepath.Join(dir, f.Name))
			sum := sha256.Sum256(b)
			if err != nil || int64(len(b)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
				t.Errorf("record without its file: %s/%s (%v)", dir, f.Name, err)
			}
		}
	}
	root := filepath.Join(data, updatestore.Dir)
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if rel, _ := filepath.Rel(root, p); strings.Count(rel, string(filepath.Separator)) == 6 && d.IsDir() {
			if !known[p] {
				t.Errorf("files without a record: %s", p)
			}
			return filepath.SkipDir
		}
		return nil
	})
	return len(updates)
}

// cutProxy relays TCP connections to target and cuts each one after
// limit bytes have come back from the server, as a broken link would.
func cutProxy(t *testing.T, target string, limit int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c) }()
				_, _ = io.CopyN(c, s, limit)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestBackupFailures: a backup whose connection breaks, or that the
// server stops because a stored file no longer matches its record, leaves
// neither the file nor its .tmp behind and says why in one line; the API
// takes the admin token only.
func TestBackupFailures(t *testing.T) {
	srv, env, _ := startWithApprovedUpdate(t)
	_, port, _ := net.SplitHostPort(cutProxy(t, srv.HTTPSAddr, 64<<10))
	image := filepath.Join(srv.Data, updatestore.Dir, "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt")
	tests := []struct {
		name    string
		env     []string
		prepare func(t *testing.T)
		want    string
	}{
		{name: "connection cut", env: append(env, "DEVICEUPDATE_SERVER=https://127.0.0.1:"+port), want: "backup incomplete: the backup is truncated"},
		{name: "a stored file damaged", env: env, prepare: func(t *testing.T) {
			b, err := os.ReadFile(image)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := os.WriteFile(image, b, 0o640); err != nil {
				t.Fatal(err)
			}
		}, want: "backup incomplete: the server stopped it: a stored update file differs from its record"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prepare != nil {
				tc.prepare(t)
			}
			out := filepath.Join(t.TempDir(), "b.tar")
			res := e2e.Run(t, "", tc.env, "backup", "-o", out)
			if res.Code != 1 || strings.Count(res.Stderr, "\n") != 1 || !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("exit %d %q, want one line with %q", res.Code, res.Stderr, tc.want)
			}
			for _, p := range []string{out, out + ".tmp"} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a failed backup: %v", p, err)
				}
			}
		})
	}

	c := srv.Client("UCUpdates-R2.contoso.com")
	for _, tc := range []struct {
		name, query, token string
		want               int
	}{
		{"no token", "", "", 401},
		{"a wrong token", "", "Bearer not-the-token", 401},
		{"logs neither true nor false", "?logs=yes", "Bearer " + srv.Token(), 400},
	} {
		code, body, _ := send(t, c, "GET", srv.URL()+"/admin/api/v1/backup"+tc.query, "", map[string]string{"Authorization": tc.token})
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
}

// TestRestoreRefuses: a damaged or truncated backup, or folders that are
// not empty, are refused with one line, and the folders stay as they were:
// absent, empty, or with their content, and nothing beside them.
func TestRestoreRefuses(t *testing.T) {
	srv, env, _ := startWithApprovedUpdate(t)
	backup := filepath.Join(t.TempDir(), "good.tar")
	mustRun(t, env, "backup", "-o", backup)
	good, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	image := bytes.Index(good, testpkg.Image(4096, 9)) // the image's content in the tar
	if image < 0 {
		t.Fatal("the image is not in the backup")
	}

	tests := []struct {
		name string
		file func() []byte
		prep func(t *testing.T, data, certsDir string)
		want string
	}{
		{name: "truncated to half", file: func() []byte { return good[:len(good)/2] }, want: "truncated"},
		{name: "truncated before its manifest", file: func() []byte { return good[:bytes.LastIndex(good, []byte("manifest.json"))] }, want: "truncated"},
		{name: "truncated inside its manifest", file: func() []byte { return good[:bytes.LastIndex(good, []byte("manifest.json"))+512+10] }, want: "truncated"},
		{name: "a byte of an image changed", file: func() []byte {
			b := bytes.Clone(good)
			b[image+1000] ^= 0x55
			return b
		}, want: "SHA-256"},
		{name: "not a backup", file: func() []byte { return bytes.Repeat([]byte("not a tar file "), 1000) }, want: "not a deviceupdate backup"},
		{name: "empty file", file: func() []byte { return nil }, want: "not a deviceupdate backup"},
		{name: "data not empty", file: func() []byte { return good }, prep: func(t *testing.T, data, _ string) {
			if err := os.MkdirAll(data, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(data, "deviceupdate.db"), []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, want: "is not empty"},
		{name: "certs not empty", file: func() []byte { return good }, prep: func(t *testing.T, _, certsDir string) {
			if err := os.MkdirAll(filepath.Join(certsDir, "trusted"), 0o750); err != nil {
				t.Fatal(err)
			}
		}, want: "is not empty"},
		{name: "damaged, into empty folders", file: func() []byte { return good[:len(good)/3] }, prep: func(t *testing.T, data, certsDir string) {
			for _, d := range []string{data, certsDir} {
				if err := os.MkdirAll(d, 0o750); err != nil {
					t.Fatal(err)
				}
			}
		}, want: "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			data, certsDir := filepath.Join(parent, "data"), filepath.Join(parent, "certs")
			if tc.prep != nil {
				tc.prep(t, data, certsDir)
			}
			beforeTree := treeOf(t, parent)
			file := filepath.Join(t.TempDir(), "backup.tar")
			if err := os.WriteFile(file, tc.file(), 0o600); err != nil {
				t.Fatal(err)
			}
			res := e2e.Run(t, "", nil, "restore", file, "--data", data, "--certs", certsDir)
			if res.Code != 1 || strings.Count(res.Stderr, "\n") != 1 || !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("restore: exit %d %q, want one line with %q", res.Code, res.Stderr, tc.want)
			}
			if got := treeOf(t, parent); got != beforeTree {
				t.Errorf("the folders changed:\nbefore %s\nafter  %s", beforeTree, got)
			}
		})
	}
}

// treeOf lists every path under dir with its size, one string.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s:%d", rel, fi.Size()*int64(btoi(!d.IsDir()))))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
