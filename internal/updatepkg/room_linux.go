package updatepkg

import "syscall"

// available returns the bytes an unprivileged writer may still put on the
// file system holding dir; ok is false when it cannot be told.
func available(dir string) (n uint64, ok bool) {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
