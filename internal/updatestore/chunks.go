package updatestore

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/deviceupdate/deviceupdate"
)

// chunkKey names a file's content: its SHA-256 and size.
type chunkKey struct {
	sha256 string
	size   int64
}

// chunkEntry computes one content's chunk list once, however many polls
// ask for it at the same time.
type chunkEntry struct {
	once sync.Once
	cl   *deviceupdate.ChunkList
	err  error
}

// ChunkList returns the chunk list of an update's file f, read from the
// store once per content (its SHA-256 and size) and kept. A failure is
// not kept, so a later call tries again.
func (s *Store) ChunkList(k deviceupdate.RuleKey, v deviceupdate.Version, f deviceupdate.UpdateFile) (*deviceupdate.ChunkList, error) {
	key := chunkKey{f.SHA256, f.Size}
	s.chunksMu.Lock()
	e := s.chunks[key]
	if e == nil {
		e = &chunkEntry{}
		s.chunks[key] = e
	}
	s.chunksMu.Unlock()
	e.once.Do(func() { e.cl, e.err = s.readChunks(k, v, f) })
	if e.err != nil {
		s.chunksMu.Lock()
		if s.chunks[key] == e {
			delete(s.chunks, key)
		}
		s.chunksMu.Unlock()
	}
	return e.cl, e.err
}

// readChunks computes a chunk list from the file's content, checked
// against its SHA-256 when it comes from a pool's file store.
func (s *Store) readChunks(k deviceupdate.RuleKey, v deviceupdate.Version, f deviceupdate.UpdateFile) (*deviceupdate.ChunkList, error) {
	var file io.ReadCloser
	var err error
	if s.Shared() {
		file, err = s.openBlob(context.Background(), Rel(k, v)+"/"+f.Name, f)
	} else {
		file, err = s.open(k, v, f.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("chunk list of %s/%s: %w", Rel(k, v), f.Name, err)
	}
	defer file.Close()
	cl, err := deviceupdate.NewChunkList(file, f.Size)
	if err != nil {
		return nil, fmt.Errorf("chunk list of %s/%s: %w", Rel(k, v), f.Name, err)
	}
	return cl, nil
}
