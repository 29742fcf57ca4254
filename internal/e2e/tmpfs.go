package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Tmpfs mounts a tmpfs of the given size on a new folder and returns it;
// it is unmounted when the test ends. A small one is a real disk that
// fills. It needs root: without it the test is skipped, except under CI
// (CI=1), which runs as root, where it fails.
func Tmpfs(tb testing.TB, size int64) string {
	tb.Helper()
	skip := tb.Skipf
	if os.Getenv("CI") != "" {
		skip = tb.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("needs root to mount a small tmpfs")
	}
	dir := tb.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "tmpfs", dir).CombinedOutput(); err != nil {
		skip("cannot mount tmpfs: %v %s", err, out)
	}
	tb.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Peak samples the bytes in use on the file system holding dir until stop
// is closed, and then sends the most it saw. Sampling may miss a short
// peak, so it is for reports; a test asserts on what a small Tmpfs refuses.
func Peak(dir string, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		for {
			var st syscall.Statfs_t
			if syscall.Statfs(dir, &st) == nil {
				peak = max(peak, int64(st.Blocks-st.Bfree)*st.Bsize)
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return out
}

// Fill writes a file into dir until the file system holding it is full,
// to the last byte, and returns a function that deletes it. A file that
// already has a partly used block may still grow within it: a full disk
// refuses only what needs a new block.
func Fill(tb testing.TB, dir string) (free func()) {
	tb.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	for chunk := make([]byte, 64<<10); len(chunk) > 0; {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				tb.Fatal(err)
			}
			chunk = chunk[:len(chunk)/2]
		}
	}
	return func() {
		tb.Helper()
		if err := os.Remove(path); err != nil {
			tb.Fatal(err)
		}
	}
}
