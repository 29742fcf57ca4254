//go:build !linux

package doctor

// freeSpace is not implemented here: the disk check is skipped.
func freeSpace(string) (free, total uint64, err error) { return 0, 0, errNoFreeSpace }
