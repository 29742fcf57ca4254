package blobstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/blobstore"
)

// TestDirDiskFull: a Put that fills the file system fails with ENOSPC
// and leaves no object and no partial file; the next Put that fits
// succeeds. It needs root to mount a small tmpfs.
func TestDirDiskFull(t *testing.T) {
	s, err := blobstore.Dir(smallDisk(t, "256k"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	big := content(3, 512<<10)
	for _, c := range []struct {
		name string
		want string
		size int64
	}{
		{"known hash", keyOf(big), int64(len(big))},
		{"unknown hash", "", -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Put(ctx, bytes.NewReader(big), c.size, c.want)
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Put on a full disk = %v, want ENOSPC", err)
			}
			assertEmpty(t, backend{leftovers: dirLeftovers}, s, keyOf(big))
		})
	}
	small := []byte("fits")
	if key := mustPut(t, s, small); key != keyOf(small) {
		t.Fatalf("the next small Put: key %s", key)
	}
}

// smallDisk mounts a tmpfs of size in a temporary folder. It needs root:
// elsewhere the test is skipped, except under CI, which runs as root.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err == nil {
		t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
		return dir
	}
	msg := fmt.Sprintf("mount a %s tmpfs (as root): %v %s", size, err, bytes.TrimSpace(out))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestDirStrayFiles: what the layout does not name (files an operator
// or another program left, a key in the wrong folder, a link) is never
// listed, and a key in the wrong folder is not found.
func TestDirStrayFiles(t *testing.T) {
	s := openDir(t).(*blobstore.DirStore)
	data := []byte("an update file")
	key := mustPut(t, s, data)
	other := keyOf([]byte("elsewhere"))
	objects := filepath.Join(s.Root(), "sha256")
	write := func(rel string) {
		p := filepath.Join(objects, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("stray"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write("README")
	write("zz/00/" + other)
	write(key[:2] + "/" + key[2:4] + "/notes.txt")
	write(key[:2] + "/" + key[2:4] + "/.tmp-123")
	write(key[:2] + "/" + key[2:4] + "/" + other) // the wrong folder for other
	write(key[:2] + "/" + other)
	if err := os.Symlink("/etc", filepath.Join(objects, "ee")); err != nil {
		t.Fatal(err)
	}
	page, err := s.List(context.Background(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].Key != key || page[0].Size != int64(len(data)) {
		t.Errorf("List = %+v, want only %s", page, key)
	}
	if _, err := s.Stat(context.Background(), other); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Stat of a key in the wrong folder = %v, want ErrNotFound", err)
	}
}

// TestDirRemoveStale: temporary files a crash left are removed once
// old; a fresh one (a Put in progress elsewhere) and the objects stay.
func TestDirRemoveStale(t *testing.T) {
	s := openDir(t).(*blobstore.DirStore)
	key := mustPut(t, s, []byte("kept"))
	folder := filepath.Dir(objectPath(s, key))
	now := time.Now()
	old := []string{filepath.Join(folder, ".tmp-1"), filepath.Join(s.Root(), ".incoming", ".tmp-2")}
	fresh := filepath.Join(folder, ".tmp-3")
	for _, p := range append(slices.Clone(old), fresh) {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range old {
		if err := os.Chtimes(p, now.Add(-2*time.Hour), now.Add(-2*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.RemoveStale(context.Background(), time.Hour, now)
	if err != nil || n != 2 {
		t.Fatalf("RemoveStale = %d, %v; want 2", n, err)
	}
	left := dirLeftovers(t, s)
	if !slices.Equal(left, []string{"sha256/" + key[:2] + "/" + key[2:4] + "/.tmp-3"}) {
		t.Errorf("left %v, want only the fresh file", left)
	}
	if _, err := s.Stat(context.Background(), key); err != nil {
		t.Errorf("the object: %v", err)
	}
}
