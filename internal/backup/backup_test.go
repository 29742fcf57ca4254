package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/backup"
	"github.com/deviceupdate/deviceupdate/internal/backup/archive"
	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/fsutil"
	"github.com/deviceupdate/deviceupdate/internal/importer"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// service is a backup service over a real store, trail, importer and
// certificates in temporary folders.
type service struct {
	*backup.Service
	im   *importer.Importer
	sign testpkg.Signer
}

func newService(t *testing.T) *service {
	t.Helper()
	data, certsDir := t.TempDir(), filepath.Join(t.TempDir(), "certs")
	if _, err := certs.Ensure(certsDir, certs.Options{Domain: "contoso.com"}); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.SetTrail(trail)
	t.Cleanup(func() { db.Close(); trail.Close() })
	ca := testpki.NewCA(t, "Polycom Root")
	testpki.WriteCert(t, filepath.Join(certsDir, certs.TrustedDir, "polycom.pem"), ca.Cert)
	im := &importer.Importer{DB: db, Logger: zap.NewNop(), Files: updatestore.New(data, nil), CertsDir: certsDir}
	return &service{
		Service: &backup.Service{DB: db, Trail: trail, Imports: im, DataDir: data, CertsDir: certsDir,
			Info: deviceupdate.ServerInfo{Version: "test", Domain: "contoso.com", SchemaVersion: store.SchemaVersion}, Logger: zap.NewNop()},
		im: im, sign: testpkg.NewSigner(t, ca, testpki.Options{}),
	}
}

func (s *service) importVersion(t *testing.T, version string, seed byte) {
	t.Helper()
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", version, testpkg.Image(64<<10, seed), s.sign)
	b, err := os.ReadFile(testpkg.MakeCab(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.im.Import(context.Background(), bytes.NewReader(b), int64(len(b)), version+".cab", "admin@test"); err != nil {
		t.Fatal(err)
	}
}

func (s *service) take(t *testing.T, opts deviceupdate.BackupOptions) deviceupdate.Backup {
	t.Helper()
	b, err := s.Backup(context.Background(), opts, "admin@test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func write(t *testing.T, b deviceupdate.Backup) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func actions(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := audit.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Action+" "+e.Target)
	}
	return out
}

// TestBackupHoldsItsMoment: what happens after a backup is taken and
// before it is written (a files clear deleting a version it holds, an
// import, a new admin, a new token, a new trusted publisher, audit entries) changes
// nothing in it; the backup itself is audited.
func TestBackupHoldsItsMoment(t *testing.T) {
	s := newService(t)
	s.importVersion(t, "4.0.7577.4366", 1)
	s.importVersion(t, "4.0.7577.4400", 2) // 4366 is now referenced by no rule
	token, _ := os.ReadFile(filepath.Join(s.CertsDir, certs.TokenFile))
	if err := s.DB.AddAdmin(deviceupdate.Admin{Name: "olivia", Role: deviceupdate.RoleOperator}, ""); err != nil {
		t.Fatal(err)
	}
	b := s.take(t, deviceupdate.BackupOptions{})
	if err := s.DB.AddAdmin(deviceupdate.Admin{Name: "later", Role: deviceupdate.RoleAdmin}, ""); err != nil {
		t.Fatal(err)
	}

	res, err := s.im.ClearFiles(context.Background(), "admin@test")
	if err != nil || len(res.Removed) != 1 {
		t.Fatalf("files clear: %+v %v", res, err)
	}
	s.importVersion(t, "4.0.7577.4500", 3)
	if err := fsutil.WriteFileAtomic(filepath.Join(s.CertsDir, certs.TokenFile), []byte("a new token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testpki.WriteCert(t, filepath.Join(s.CertsDir, certs.TrustedDir, "later.pem"), testpki.NewCA(t, "Later").Cert)

	data, certsDir := filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "certs")
	if _, err := backup.Restore(context.Background(), bytes.NewReader(write(t, b)), data, certsDir); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	updates, err := db.Updates()
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, u := range updates {
		versions = append(versions, u.Version.String())
		for _, f := range u.Files() {
			got, err := os.ReadFile(filepath.Join(updatestore.Folder(data, u.RuleKey, u.Version), f.Name))
			sum := sha256.Sum256(got)
			if err != nil || hex.EncodeToString(sum[:]) != f.SHA256 {
				t.Errorf("%s %s: %v, not its recorded bytes", u.Version, f.Name, err)
			}
		}
	}
	if admins, err := db.Admins(); err != nil || len(admins) != 1 || admins[0].Name != "olivia" {
		t.Errorf("restored admins %+v %v, want those of the moment of the backup", admins, err)
	}
	if got := strings.Join(versions, " "); got != "4.0.7577.4366 4.0.7577.4400" {
		t.Errorf("restored updates %s, want those of the moment of the backup", got)
	}
	if _, err := os.Stat(filepath.Join(data, updatestore.Dir, "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4500")); !os.IsNotExist(err) {
		t.Errorf("the later import's files are in the backup: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(certsDir, certs.TokenFile)); !bytes.Equal(got, token) {
		t.Errorf("restored token %q, want the one of the moment of the backup", got)
	}
	if _, err := os.Stat(filepath.Join(certsDir, certs.TrustedDir, "later.pem")); !os.IsNotExist(err) {
		t.Errorf("a later trusted publisher is in the backup: %v", err)
	}
	if got := strings.Join(actions(t, filepath.Join(data, audit.Dir, audit.FileName)), ", "); got != "import 4.0.7577.4366.cab, import 4.0.7577.4400.cab" {
		t.Errorf("restored trail: %s", got)
	}
	live := actions(t, s.Trail.Path())
	if got := strings.Join(live[2:4], ", "); got != "backup state, files.clear DeviceUpdateStore" {
		t.Errorf("the live trail after the backup: %s", got)
	}
}

// TestBackupRefusesADamagedStore: an update file changed behind the
// service's back stops the backup with a message that says so, rather
// than copying the damage into a backup that would verify.
func TestBackupRefusesADamagedStore(t *testing.T) {
	s := newService(t)
	s.importVersion(t, "4.0.7577.4366", 1)
	image := filepath.Join(s.DataDir, updatestore.Dir, "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt")
	b, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 1
	if err := os.WriteFile(image, b, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = s.take(t, deviceupdate.BackupOptions{}).WriteTo(&bytes.Buffer{})
	if msg := deviceupdate.ErrorMessage(err); !strings.Contains(msg, "differs from its record") {
		t.Errorf("err = %v, message %q", err, msg)
	}
}

// TestBackupLogs: --logs adds the device logs and the request logs, never
// the upload cache; without it there are none.
func TestBackupLogs(t *testing.T) {
	s := newService(t)
	for p, content := range map[string]string{
		"Logs/Client/CELog/00-04-F2-00-00-01/celog.clg":                             "log",
		"Logs/Client/.staging/upload-1":                                             "half an upload",
		"Logs/Server/Audit/imageUpdates/RequestHandlerAuditLog_host_20260101.log":   "poll\n",
		"Logs/Client/Watson/00-04-F2-00-00-01/" + strings.Repeat("x", 250) + ".dmp": "dump",
	} {
		full := filepath.Join(s.DataDir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		logs bool
		want int
	}{{"without logs", false, 0}, {"with logs", true, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := archive.NewReader(bytes.NewReader(write(t, s.take(t, deviceupdate.BackupOptions{Logs: tc.logs}))))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for {
				f, err := r.Next()
				if err != nil {
					break
				}
				if strings.Contains(f.Name, ".staging") {
					t.Errorf("the upload cache is in the backup: %s", f.Name)
				}
				if strings.HasPrefix(f.Name, "data/Logs/") && f.Name != "data/Logs/Server/Audit/admin/audit.log" {
					n++
				}
			}
			if n != tc.want {
				t.Errorf("%d logs in the backup, want %d", n, tc.want)
			}
		})
	}
}

// storeFile returns the bytes of an empty, valid store.
func storeFile(t testing.TB) []byte {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := os.ReadFile(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type entry struct {
	name string
	mode fs.FileMode
	data []byte
}

// craft writes a backup of the given entries.
func craft(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf, archive.Header{Created: time.Now(), Meta: []byte(`{"server":"test","host":"h"}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := w.Add(e.name, e.mode, time.Now(), int64(len(e.data)), bytes.NewReader(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// listTree names every path below dir.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestRestoreRefuses(t *testing.T) {
	db := entry{"data/deviceupdate.db", 0o600, storeFile(t)}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	big := craft(t, db, entry{"data/DeviceUpdateStore/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt", 0o640, make([]byte, 1<<20)})
	tests := []struct {
		name      string
		backup    []byte
		failAfter int // the read fails past this many bytes, as when Ctrl-C closes the file
		ctx       context.Context
		prepare   func(t *testing.T, parent string) (data, certs string)
		want      string
	}{
		{name: "the file closed mid-way", backup: big, failAfter: len(big) / 2, want: "file already closed"},
		{name: "a file outside the layout", backup: craft(t, db, entry{"data/etc/cron.d/job", 0o644, []byte("x")}), want: "data/etc/cron.d/job: not a file a backup holds"},
		{name: "the upload cache", backup: craft(t, db, entry{"data/Logs/Client/.staging/x", 0o644, []byte("x")}), want: "not a file a backup holds"},
		{name: "a folder in trusted", backup: craft(t, db, entry{"certs/trusted/sub/x.pem", 0o644, []byte("x")}), want: "not a file a backup holds"},
		{name: "another top folder", backup: craft(t, db, entry{"etc/passwd", 0o644, []byte("x")}), want: "not a file a backup holds"},
		{name: "no store", backup: craft(t, entry{"certs/admin.token", 0o600, []byte("t")}), want: "it holds no store"},
		{name: "a store that is not one", backup: craft(t, entry{"data/deviceupdate.db", 0o600, bytes.Repeat([]byte{7}, 8192)}), want: "the backup's store does not open"},
		{name: "cancelled", backup: craft(t, db), ctx: cancelled, want: "context canceled"},
		{name: "certs inside data", backup: craft(t, db), prepare: func(_ *testing.T, parent string) (string, string) {
			return filepath.Join(parent, "data"), filepath.Join(parent, "data", "certs")
		}, want: "restore them into separate folders"},
		{name: "folders whose parents are missing", backup: craft(t, entry{"certs/admin.token", 0o600, nil}), prepare: func(_ *testing.T, parent string) (string, string) {
			return filepath.Join(parent, "srv", "du", "data"), filepath.Join(parent, "srv", "du", "certs")
		}, want: "holds no store"},
		{name: "data is a file", backup: craft(t, db), prepare: func(t *testing.T, parent string) (string, string) {
			if err := os.WriteFile(filepath.Join(parent, "data"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(parent, "data"), filepath.Join(parent, "certs")
		}, want: "is not a folder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			data, certsDir := filepath.Join(parent, "data"), filepath.Join(parent, "certs")
			if tc.prepare != nil {
				data, certsDir = tc.prepare(t, parent)
			}
			before := listTree(t, parent)
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var r io.Reader = bytes.NewReader(tc.backup)
			if tc.failAfter > 0 {
				r = io.MultiReader(bytes.NewReader(tc.backup[:tc.failAfter]), iotest.ErrReader(os.ErrClosed))
			}
			_, err := backup.Restore(ctx, r, data, certsDir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if after := listTree(t, parent); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("the restore left %v (before: %v)", after, before)
			}
		})
	}
}

// TestRestoreModes: keys, the token and the store are the owner's alone
// whatever the backup says; nothing is executable or writable by others;
// an empty folder restored into keeps its mode.
func TestRestoreModes(t *testing.T) {
	b := craft(t,
		entry{"data/deviceupdate.db", 0o644, storeFile(t)},
		entry{"certs/ca.key", 0o644, []byte("key")},
		entry{"certs/admin.token", 0o666, []byte("token")},
		entry{"certs/ca.crt", 0o777, []byte("cert")},
		entry{"data/DeviceUpdateStore/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt", 0o4755, []byte("image")},
	)
	parent := t.TempDir()
	data, certsDir := filepath.Join(parent, "data"), filepath.Join(parent, "certs")
	if err := os.Mkdir(certsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(context.Background(), bytes.NewReader(b), data, certsDir); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{
		"data/deviceupdate.db": 0o600, "certs/ca.key": 0o600, "certs/admin.token": 0o600, "certs/ca.crt": 0o644,
		"data/DeviceUpdateStore/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt": 0o644,
		"certs": fs.ModeDir | 0o700, "data": fs.ModeDir | 0o750,
	} {
		fi, err := os.Stat(filepath.Join(parent, p))
		if err != nil || fi.Mode() != want {
			t.Errorf("%s: %v %v, want %v", p, fi.Mode(), err, want)
		}
	}
	for _, p := range listTree(t, parent) {
		if strings.Contains(p, ".restore-") {
			t.Errorf("temporary folder left: %s", p)
		}
	}
}

// TestRestoreDiskFull: a restore that fills the disk leaves nothing.
func TestRestoreDiskFull(t *testing.T) {
	dir := t.TempDir()
	skip := t.Skipf
	if os.Getenv("CI") != "" {
		skip = t.Fatalf // CI runs as root: the test must run there
	}
	if os.Geteuid() != 0 {
		skip("needs root to mount a small tmpfs")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		skip("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	b := craft(t, entry{"data/deviceupdate.db", 0o600, storeFile(t)},
		entry{"data/DeviceUpdateStore/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt", 0o640, make([]byte, 1<<20)})
	_, err := backup.Restore(context.Background(), bytes.NewReader(b), filepath.Join(dir, "data"), filepath.Join(dir, "certs"))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want no space left", err)
	}
	if left := listTree(t, dir); len(left) != 0 {
		t.Errorf("a failed restore left %v", left)
	}
}

// FuzzRestore restores arbitrary bytes: no panic, and a refused restore
// leaves the parent folder as it was.
func FuzzRestore(f *testing.F) {
	f.Add(craft(f, entry{"data/deviceupdate.db", 0o600, storeFile(f)}, entry{"certs/admin.token", 0o600, []byte("t")}))
	f.Fuzz(func(t *testing.T, b []byte) {
		parent := t.TempDir()
		data, certsDir := filepath.Join(parent, "data"), filepath.Join(parent, "certs")
		_, err := backup.Restore(context.Background(), bytes.NewReader(b), data, certsDir)
		if err != nil {
			if left := listTree(t, parent); len(left) != 0 {
				t.Fatalf("a refused restore (%v) left %v", err, left)
			}
			return
		}
		for _, p := range listTree(t, parent) {
			if p != "data" && p != "certs" && !strings.HasPrefix(p, "data/") && !strings.HasPrefix(p, "certs/") {
				t.Fatalf("restored outside the folders: %s", p)
			}
		}
	})
}
