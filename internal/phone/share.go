package phone

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/peer"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// Sharer fetches a file with the phones around, and serves it to them
// until released: internal/peer's *Node.
type Sharer interface {
	Fetch(ctx context.Context, m peer.Manifest, src peer.Source, dst io.WriterAt) (peer.Stats, error)
	Release(k peer.Key)
}

var _ Sharer = (*peer.Node)(nil)

// sharedFile is a file the agent serves to peers: open until released.
type sharedFile struct {
	key     peer.Key
	version string
	file    *os.File
}

// fetchShared fetches an image through the peer tree: it downloads the
// file's chunk list from the server and checks it against the offer's
// ChunksSHA256, so every chunk a peer sends is checked before it is kept
// or forwarded, then lets the Sharer fill the part file, and checks the
// whole file's size and SHA-256. The file stays open, served to peers,
// until the version is replaced or the agent closes.
func (a *Agent) fetchShared(ctx context.Context, o *offer, f upx.File, counts *counters, d *diag) (string, error) {
	list := chunkList{name: f.Chunks, chunkSize: f.ChunkSize, sha256: f.ChunksSHA256}
	if list.name == "" {
		// An answer that does not turn sharing on names no chunk list
		// (sharing is forced on here): read the one the server keeps
		// next to every file. Only the final check of the whole file
		// vouches for it.
		list = chunkList{name: f.Name + deviceupdate.ChunkListSuffix, chunkSize: deviceupdate.ChunkSize}
		d.printf("%s: the offer names no chunk list; reading %s", f.Name, list.name)
	}
	hashes, err := a.fetchChunkList(ctx, o, f, list, counts)
	if err != nil {
		return "", err
	}
	m := peer.Manifest{
		Key:       peer.Key{Model: a.cfg.Identity.Model, UpdateType: o.updateType, Version: o.version, Name: f.Name, SHA256: strings.ToLower(f.SHA256)},
		Size:      f.Size,
		ChunkSize: list.chunkSize,
		Chunks:    hashes,
	}
	p := a.partPath(f)
	file, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", f.Name, err)
	}
	src := &serverSource{a: a, url: fileURL(o.base, f.Name), size: f.Size, counts: counts}
	st, err := a.cfg.Peer.Fetch(ctx, m, src, file)
	counts.peer.Add(st.PeerBytes)
	if err == nil {
		// Fetch returns only once the whole file has the offer's SHA-256
		// (m.Key.SHA256): hashing it again would double a phone's work.
		err = checkSize(file, f)
	}
	if err != nil {
		a.cfg.Peer.Release(m.Key)
		file.Close()
		os.Remove(p)
		return "", fmt.Errorf("share %s: %w", f.Name, err)
	}
	d.printf("%s: %d bytes from peers, %d from the server (root %v, %d bad chunks, %d reattachments)",
		f.Name, st.PeerBytes, st.ServerBytes, st.Root, st.BadChunks, st.Reattached)
	a.log.Debug("shared fetch", zap.String("file", f.Name), zap.Int64("peer_bytes", st.PeerBytes),
		zap.Int64("server_bytes", st.ServerBytes), zap.Bool("root", st.Root), zap.Int("bad_chunks", st.BadChunks))
	a.mu.Lock()
	a.shared[o.updateType] = append(a.shared[o.updateType], &sharedFile{key: m.Key, version: o.version, file: file})
	a.mu.Unlock()
	return p, nil
}

// chunkList names a file's chunk list: its name in the offer's folder,
// the chunk size, and its SHA-256 (hex; "" when the offer gives none).
type chunkList struct {
	name      string
	chunkSize int64
	sha256    string
}

// fetchChunkList downloads a file's chunk list (one hex SHA-256 per line,
// chunk i covering bytes [i*ChunkSize, min(Size, (i+1)*ChunkSize))) and
// checks it against the offer's ChunksSHA256, when there is one.
func (a *Agent) fetchChunkList(ctx context.Context, o *offer, f upx.File, list chunkList, counts *counters) ([][32]byte, error) {
	if !plainName(list.name) || list.chunkSize <= 0 || list.chunkSize > peer.MaxChunkSize {
		return nil, fmt.Errorf("%w: %s: chunk list %q of %d-byte chunks", ErrOffer, f.Name, list.name, list.chunkSize)
	}
	var want []byte
	if list.sha256 != "" {
		var err error
		if want, err = decodeSHA256(list.sha256); err != nil {
			return nil, fmt.Errorf("%w: %s: ChunksSHA256 %q", ErrOffer, f.Name, list.sha256)
		}
	}
	n := (f.Size + list.chunkSize - 1) / list.chunkSize
	limit := n*(2*sha256.Size+2) + 1 // a line, maybe CRLF, per chunk
	var data []byte
	for attempt := 0; ; attempt++ {
		body, _, err := a.openRange(ctx, fileURL(o.base, list.name), 0, 0)
		if err == nil {
			data, err = io.ReadAll(&countingReader{r: wanReader(ctx, a.cfg.WAN, io.LimitReader(body, limit)), n: &counts.server})
			body.Close()
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil || attempt >= a.cfg.Retries {
			return nil, fmt.Errorf("chunk list %s: %w", list.name, err)
		}
		if se, ok := err.(*statusError); ok && se.status != http.StatusServiceUnavailable {
			return nil, fmt.Errorf("chunk list %s: %w", list.name, err)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return nil, err
		}
	}
	if got := sha256.Sum256(data); want != nil && !bytes.Equal(got[:], want) {
		return nil, fmt.Errorf("chunk list %s: SHA-256 %x, the offer says %s: %w", list.name, got, list.sha256, ErrMismatch)
	}
	hashes := make([][32]byte, 0, n)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		var h [32]byte
		if len(line) != 2*len(h) {
			return nil, fmt.Errorf("chunk list %s: line %d is not a SHA-256: %w", list.name, len(hashes)+1, ErrOffer)
		}
		if _, err := hex.Decode(h[:], []byte(line)); err != nil {
			return nil, fmt.Errorf("chunk list %s: line %d is not a SHA-256: %w", list.name, len(hashes)+1, ErrOffer)
		}
		hashes = append(hashes, h)
	}
	if int64(len(hashes)) != n {
		return nil, fmt.Errorf("chunk list %s: %d hashes for %d chunks: %w", list.name, len(hashes), n, ErrOffer)
	}
	return hashes, nil
}

// serverSource reads a file from the server for the peer tree: the root's
// download, and a child's fall-back when its parent fails. It reads
// through the WAN limiter and counts what it reads.
type serverSource struct {
	a      *Agent
	url    string
	size   int64
	counts *counters
}

var _ peer.Source = (*serverSource)(nil)

// Open returns the file from offset to its end, waiting out 503s.
func (s *serverSource) Open(ctx context.Context, offset int64) (io.ReadCloser, error) {
	for attempt := 0; ; attempt++ {
		body, start, err := s.a.openRange(ctx, s.url, offset, s.size)
		if err == nil {
			r := io.Reader(&countingReader{r: wanReader(ctx, s.a.cfg.WAN, io.LimitReader(body, s.size-start)), n: &s.counts.server})
			if start < offset { // a 200 to a Range request: skip to offset
				if _, err := io.CopyN(io.Discard, r, offset-start); err != nil {
					body.Close()
					return nil, fmt.Errorf("open %s at %d: %w", s.url, offset, err)
				}
			}
			return readCloser{r, body}, nil
		}
		se, isStatus := err.(*statusError)
		if ctx.Err() != nil || attempt >= s.a.cfg.Retries || isStatus && se.status != http.StatusServiceUnavailable {
			return nil, fmt.Errorf("open %s at %d: %w", s.url, offset, err)
		}
		wait := backoff(attempt)
		if isStatus {
			wait = se.wait
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// switchShared stops serving an update type's files of versions other
// than version.
func (a *Agent) switchShared(updateType, version string) {
	a.mu.Lock()
	var keep, drop []*sharedFile
	for _, s := range a.shared[updateType] {
		if s.version == version {
			keep = append(keep, s)
		} else {
			drop = append(drop, s)
		}
	}
	a.shared[updateType] = keep
	a.mu.Unlock()
	a.unshare(drop)
}

func (a *Agent) unshare(files []*sharedFile) {
	for _, s := range files {
		a.cfg.Peer.Release(s.key)
		s.file.Close()
	}
}
