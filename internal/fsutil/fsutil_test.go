package fsutil_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/fsutil"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	for _, content := range []string{"first", "second, longer content"} {
		if err := fsutil.WriteFileAtomic(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Fatalf("content = %q, want %q", got, content)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %o, want 600", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only key.pem (no staging files left)", len(entries))
	}
}

func TestWriteFileAtomicLeavesNothingOnFailure(t *testing.T) {
	dir := t.TempDir()
	// A folder where the file should be makes the rename fail.
	target := filepath.Join(dir, "taken")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.WriteFileAtomic(target, []byte("data"), 0o600); err == nil {
		t.Fatal("WriteFileAtomic over a non-empty folder succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after a failed write, want 1", len(entries))
	}
}

// TestWriteFilesAtomic: a pair written together replaces both files; a
// pair whose second file cannot be staged leaves both as they were.
func TestWriteFilesAtomic(t *testing.T) {
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "server.key"), filepath.Join(dir, "server.crt")
	if err := fsutil.WriteFilesAtomic(
		fsutil.File{Path: key, Data: []byte("key 1"), Mode: 0o600},
		fsutil.File{Path: cert, Data: []byte("cert 1"), Mode: 0o644},
	); err != nil {
		t.Fatal(err)
	}
	err := fsutil.WriteFilesAtomic(
		fsutil.File{Path: key, Data: []byte("key 2"), Mode: 0o600},
		fsutil.File{Path: filepath.Join(dir, "missing", "server.crt"), Data: []byte("cert 2"), Mode: 0o644},
	)
	if err == nil {
		t.Fatal("a pair whose certificate could not be staged was written")
	}
	for path, want := range map[string]string{key: "key 1", cert: "cert 1"} {
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", filepath.Base(path), got, err, want)
		}
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("server.key: %v, %v; want mode 600", fi, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("folder holds %d entries, want the pair only (no staging files left)", len(entries))
	}
}
