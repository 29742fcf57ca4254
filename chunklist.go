package deviceupdate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// ChunkSize is the piece of an update file that phones sharing it
// verify and forward on their own (SPEC §9): about 1 MiB.
const ChunkSize = 1 << 20

// ChunkListSuffix names a file's chunk list next to it in the download
// folder: CPE.nbt's is CPE.nbt.chunks.
const ChunkListSuffix = ".chunks"

// ChunkList is the SHA-256 of every ChunkSize piece of a file, which a
// phone checks a peer's piece against before it keeps or forwards it.
// Its text form, served as <file>.chunks, is one lowercase hex hash per
// line; SHA256 is the hash of that text, given in the poll's answer.
type ChunkList struct {
	Size      int64
	ChunkSize int64
	Hashes    [][sha256.Size]byte
	Text      []byte
	SHA256    string
}

// NewChunkList reads a whole file of the given size and lists its
// chunks' hashes. A file that is not size bytes long is an error.
func NewChunkList(r io.Reader, size int64) (*ChunkList, error) {
	cl := &ChunkList{Size: size, ChunkSize: ChunkSize}
	buf := make([]byte, ChunkSize)
	var read int64
	for read < size {
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), size-read)])
		if err != nil {
			return nil, fmt.Errorf("hash chunks: %w", err)
		}
		h := sha256.Sum256(buf[:n])
		cl.Hashes = append(cl.Hashes, h)
		cl.Text = append(hex.AppendEncode(cl.Text, h[:]), '\n')
		read += int64(n)
	}
	if n, _ := r.Read(buf[:1]); n != 0 {
		return nil, fmt.Errorf("hash chunks: the file is longer than %d bytes", size)
	}
	sum := sha256.Sum256(cl.Text)
	cl.SHA256 = hex.EncodeToString(sum[:])
	return cl, nil
}
