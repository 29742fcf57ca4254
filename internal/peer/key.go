package peer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
)

// DefaultPort is the UDP discovery and TCP transfer port, as Cisco's.
const DefaultPort = 4051

// MaxChunkSize bounds Manifest.ChunkSize, and so every buffer and TCP
// frame of a transfer.
const MaxChunkSize = 16 << 20

// MaxChunks bounds the number of chunks of one file.
const MaxChunks = 1 << 24

// MaxChildren is how many children a node serves one file to at most.
const MaxChildren = 2

// Key names one shared file: one tree per Key (and Manifest, see
// [Manifest]).
type Key struct {
	Model, UpdateType, Version, Name string
	SHA256                           string // lowercase hex of the whole file
}

// Manifest is what the phone learned from the service about the file.
// Nodes share a file only when their manifests are identical: the tree ID
// is a hash of the Key, the sizes and every chunk hash.
type Manifest struct {
	Key       Key
	Size      int64
	ChunkSize int64      // e.g. 1 MiB, at most MaxChunkSize; the last chunk may be shorter
	Chunks    [][32]byte // SHA-256 of each chunk, len = ceil(Size/ChunkSize)
}

// Source is where a node reads the file when it is the root or falls back:
// the server.
type Source interface {
	// Open returns the file's bytes from offset to the end (an HTTP Range
	// GET in the agent). It should honour ctx.
	Open(ctx context.Context, offset int64) (io.ReadCloser, error)
}

// Discovery carries the UDP discovery datagrams of one LAN. Broadcast may
// be called from several goroutines at once; Receive from one.
type Discovery interface {
	// Broadcast sends one datagram to every phone of the LAN (itself
	// excluded or ignored).
	Broadcast(b []byte) error
	// Receive returns the next datagram and its sender's address; it fails
	// once Close is called.
	Receive() ([]byte, netip.AddrPort, error)
	Close() error
}

// Stats counts what one Fetch did.
type Stats struct {
	ServerBytes int64 // bytes read from src
	PeerBytes   int64 // verified bytes received from peers
	BadChunks   int   // chunks that failed verification
	Reattached  int   // parent changes: a new parent, or a switch between parent and server
	Root        bool  // whether this node was the root (at any time during the Fetch)
}

// treeID names a tree on the wire: see tree.
type treeID [32]byte

func (m *Manifest) validate() error {
	if !isLowerHex(m.Key.SHA256, 64) {
		return fmt.Errorf("%w: SHA256 %.80q is not 64 lowercase hex digits", ErrManifest, m.Key.SHA256)
	}
	if m.Size < 0 {
		return fmt.Errorf("%w: size %d", ErrManifest, m.Size)
	}
	if m.ChunkSize <= 0 || m.ChunkSize > MaxChunkSize {
		return fmt.Errorf("%w: chunk size %d not in 1..%d", ErrManifest, m.ChunkSize, MaxChunkSize)
	}
	want := m.Size / m.ChunkSize
	if m.Size%m.ChunkSize != 0 {
		want++
	}
	if want > MaxChunks {
		return fmt.Errorf("%w: %d chunks, more than %d", ErrManifest, want, MaxChunks)
	}
	if int64(len(m.Chunks)) != want {
		return fmt.Errorf("%w: %d chunk hashes for %d chunks", ErrManifest, len(m.Chunks), want)
	}
	return nil
}

// chunkLen is the length of chunk i of a validated manifest.
func (m *Manifest) chunkLen(i int) int {
	off := int64(i) * m.ChunkSize
	return int(min(m.ChunkSize, m.Size-off))
}

// tree is the ID of the manifest's tree: the SHA-256 of a domain string,
// each Key field prefixed by its length, the size, the chunk size and the
// chunk hashes. Two phones with different manifests for one Key (another
// chunk size, say) are in different trees and never exchange chunks.
func (m *Manifest) tree() treeID {
	h := sha256.New()
	h.Write([]byte("deviceupdate peer tree v1\x00"))
	var b [8]byte
	for _, s := range []string{m.Key.Model, m.Key.UpdateType, m.Key.Version, m.Key.Name, m.Key.SHA256} {
		binary.BigEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint64(b[:], uint64(m.Size))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(m.ChunkSize))
	h.Write(b[:])
	for i := range m.Chunks {
		h.Write(m.Chunks[i][:])
	}
	var id treeID
	h.Sum(id[:0])
	return id
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
