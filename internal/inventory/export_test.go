package inventory

// SetMaxPending changes how many devices' records may wait unwritten.
func SetMaxPending(r *Recorder, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.max = n
}
