package importer

// Hold runs fn while no import moves files into the update store or
// commits them, and no files clear removes any: meanwhile the update
// folders are exactly those the store's records name, with their files. A
// backup snapshots the store and opens the files it names inside fn.
func (im *Importer) Hold(fn func() error) error {
	im.mu.Lock()
	defer im.mu.Unlock()
	return fn()
}
