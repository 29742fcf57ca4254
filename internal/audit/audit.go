// Package audit keeps the admin audit trail: an append-only file of JSON
// lines under <data>/Logs/Server/Audit/admin/, one per admin action, each
// carrying the hash of the line before it. Altering, removing or reordering
// any entry breaks the chain, which Verify reports.
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

// Dir is the trail's folder below the data root.
const Dir = "Logs/Server/Audit/admin"

// FileName is the trail's file inside Dir.
const FileName = "audit.log"

// maxLine bounds one entry when reading the trail back.
const maxLine = 4 << 20

// ErrBroken means the trail was altered: an entry's hash, sequence number
// or link to its predecessor is wrong. Verify wraps it in a *BrokenError.
var ErrBroken = errors.New("audit trail is broken")

// Entry is one admin action (the domain's type).
type Entry = deviceupdate.AuditEntry

// ResultOK is the Result of an action that succeeded.
const ResultOK = "ok"

// BrokenError names the first entry where the chain breaks.
type BrokenError struct {
	Line   int    // 1-based line number in the file
	Seq    uint64 // the entry's sequence number, when it could be read
	Reason string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit trail is broken at line %d (entry %d): %s", e.Line, e.Seq, e.Reason)
}

// Unwrap returns ErrBroken.
func (e *BrokenError) Unwrap() error { return ErrBroken }

// Trail appends entries to the trail file. It is safe for concurrent use.
type Trail struct {
	mu   sync.Mutex
	f    *os.File
	path string
	seq  uint64
	prev string
	now  func() time.Time
}

// Open opens (or creates) the trail under dataDir, checking the whole
// chain so that appends continue an intact one.
func Open(dataDir string, now func() time.Time) (*Trail, error) {
	if now == nil {
		now = time.Now
	}
	dir := filepath.Join(dataDir, filepath.FromSlash(Dir))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open audit trail: %w", err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open audit trail: %w", err)
	}
	if err := dropTornTail(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit trail %s: %w", path, err)
	}
	t := &Trail{f: f, path: path, now: now}
	last, err := verify(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit trail %s: %w; run `deviceupdate audit verify` and restore the file from a backup", path, err)
	}
	if last != nil {
		t.seq, t.prev = last.Seq, last.Hash
	}
	return t, nil
}

// dropTornTail cuts off a last line without its newline: an append that a
// crash interrupted. Append syncs before it returns, so such an entry was
// never acknowledged to anyone.
func dropTornTail(f *os.File) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	size := fi.Size()
	buf := make([]byte, 4096)
	end := size
	for end > 0 {
		n := min(int64(len(buf)), end)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end == size {
		return nil
	}
	if err := f.Truncate(end); err != nil {
		return err
	}
	return f.Sync()
}

// Path returns the trail file's path.
func (t *Trail) Path() string { return t.path }

// Append stamps e with the time, its sequence number and the chain hashes,
// writes it and syncs the file before returning it.
func (t *Trail) Append(e Entry) (Entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.Seq = t.seq + 1
	e.Time = t.now().UTC()
	e.Prev = t.prev
	e.Hash = ""
	h, err := entryHash(e)
	if err != nil {
		return e, err
	}
	e.Hash = h
	line, err := json.Marshal(e)
	if err != nil {
		return e, fmt.Errorf("append audit entry: %w", err)
	}
	if _, err := t.f.Write(append(line, '\n')); err != nil {
		return e, fmt.Errorf("append audit entry: %w", err)
	}
	if err := t.f.Sync(); err != nil {
		return e, fmt.Errorf("append audit entry: %w", err)
	}
	t.seq, t.prev = e.Seq, e.Hash
	return e, nil
}

// Close closes the trail file.
func (t *Trail) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.f.Close()
}

// entryHash is the SHA-256 of the entry's JSON with Hash empty.
func entryHash(e Entry) (string, error) {
	e.Hash = ""
	data, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("hash audit entry: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// Verify reads a trail from the start and checks every entry: its hash,
// that sequence numbers run 1, 2, 3… and that each entry names its
// predecessor's hash. It returns a *BrokenError for the first bad entry.
func Verify(r io.Reader) error {
	_, err := verify(r)
	return err
}

// ReadAll returns every entry of an intact trail.
func ReadAll(r io.Reader) ([]Entry, error) {
	var out []Entry
	err := scan(r, func(e Entry) { out = append(out, e) })
	return out, err
}

func verify(r io.Reader) (*Entry, error) {
	var last *Entry
	err := scan(r, func(e Entry) { last = &e })
	return last, err
}

// Scan reads a trail from the start, checking the chain, and hands each
// intact entry to fn; it stops with a *BrokenError at the first bad one.
func Scan(r io.Reader, fn func(Entry)) error { return scan(r, fn) }

// scan checks the chain while handing each entry to fn.
func scan(r io.Reader, fn func(Entry)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var seq uint64
	prev := ""
	line := 0
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		if len(bytes.TrimSpace(raw)) == 0 {
			return &BrokenError{Line: line, Seq: seq + 1, Reason: "empty line"}
		}
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return &BrokenError{Line: line, Seq: seq + 1, Reason: "not an audit entry: " + err.Error()}
		}
		want, err := entryHash(e)
		if err != nil {
			return err
		}
		switch {
		case e.Hash != want:
			return &BrokenError{Line: line, Seq: e.Seq, Reason: "its content does not match its hash (the entry was altered)"}
		case e.Seq != seq+1:
			return &BrokenError{Line: line, Seq: e.Seq, Reason: fmt.Sprintf("sequence number %d follows %d (an entry was removed or moved)", e.Seq, seq)}
		case e.Prev != prev:
			return &BrokenError{Line: line, Seq: e.Seq, Reason: "it does not name the previous entry's hash (an entry was removed or moved)"}
		}
		seq, prev = e.Seq, e.Hash
		fn(e)
	}
	if err := sc.Err(); err != nil {
		return &BrokenError{Line: line + 1, Seq: seq + 1, Reason: err.Error()}
	}
	return nil
}
