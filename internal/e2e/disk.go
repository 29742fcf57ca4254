package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TinyDisk mounts a tmpfs of size bytes on a temporary folder for the
// test, and unmounts it when the test ends. It needs root: without, it
// skips the test, except under CI (CI set), where the test must run.
func TinyDisk(tb testing.TB, size int) string {
	tb.Helper()
	skip := tb.Skipf
	if os.Getenv("CI") != "" {
		skip = tb.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("needs root to mount a small tmpfs")
	}
	dir := tb.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		skip("cannot mount tmpfs: %v %s", err, out)
	}
	tb.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// FillDisk writes a file in dir until its file system is full, and
// returns a function that deletes the file.
func FillDisk(tb testing.TB, dir string) (free func()) {
	tb.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for n := len(block); n > 0; n /= 2 {
		for {
			_, err := f.Write(block[:n])
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
	return func() {
		if err := os.Remove(path); err != nil {
			tb.Fatal(err)
		}
	}
}
