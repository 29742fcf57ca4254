package audit

import "fmt"

// Hold runs fn while no entry can be appended, with the trail file's size
// and its last entry's sequence number at that moment. The file is only
// ever appended to, so its first size bytes stay the whole trail up to
// that entry. A backup takes its snapshot of the store inside fn: the
// trail it copies then holds every entry written before the snapshot and
// none after it.
func (t *Trail) Hold(fn func(size int64, seq uint64) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	fi, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("audit trail %s: %w", t.path, err)
	}
	return fn(fi.Size(), t.seq)
}
