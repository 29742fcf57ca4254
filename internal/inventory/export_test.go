package inventory

import "github.com/deviceupdate/deviceupdate"

// SetMaxPending changes how many devices' records may wait unwritten.
func SetMaxPending(r *Recorder, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.max = n
}

// WrapWrite makes every batch go to the store through wrap(write), where
// write is what wrote it before: a test acts while a batch is written.
func WrapWrite(r *Recorder, wrap func(write func([]deviceupdate.Device) error) func([]deviceupdate.Device) error) {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.put = wrap(r.put)
}
