// Package audit keeps the admin audit trail: an append-only file of JSON
// lines under <data>/Logs/Server/Audit/admin/, one per admin action, each
// carrying the hash of the line before it. Altering, removing or reordering
// any entry breaks the chain, which Verify reports; Read reads past the
// break, so that what is left of a tampered trail can still be shown.
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
	"sync/atomic"
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
	mu     sync.Mutex
	f      *os.File
	path   string
	seq    uint64
	prev   string
	now    func() time.Time
	broken atomic.Pointer[BrokenError] // as last found, nil while intact
}

// Open opens (or creates) the trail under dataDir and checks the whole
// chain. A broken trail is opened all the same, so that the service, its
// admin API and its audit go on (the break is an incident to report, not
// a reason to stop serving phones): Broken reports it, and appends go on
// from the file's last entry that can be read.
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
	var last *Entry
	brk, err := Read(f, func(e Entry, _ bool) { last = &e })
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit trail %s: %w", path, err)
	}
	t.broken.Store(brk)
	if last != nil {
		t.seq, t.prev = last.Seq, last.Hash
	}
	return t, nil
}

// Broken returns where the chain broke when it was last read (by Open or
// Read), or nil when it was intact.
func (t *Trail) Broken() *BrokenError { return t.broken.Load() }

// Read reads the trail file from the start like the function Read, and
// remembers what it found for Broken. Besides what the file shows, it
// knows how far this process wrote: a trail that ends before that lost
// entries from its end.
func (t *Trail) Read(fn func(e Entry, verified bool)) (*BrokenError, error) {
	t.mu.Lock()
	wrote := t.seq
	t.mu.Unlock()
	f, err := os.Open(t.path)
	if err != nil {
		return nil, fmt.Errorf("read audit trail: %w", err)
	}
	defer f.Close()
	var last uint64
	lines := 0
	brk, err := Read(f, func(e Entry, verified bool) {
		if verified {
			last = e.Seq
			lines++
		}
		fn(e, verified)
	})
	if err != nil {
		return nil, fmt.Errorf("read audit trail %s: %w", t.path, err)
	}
	if brk == nil && last < wrote {
		brk = &BrokenError{Line: lines + 1, Seq: last + 1,
			Reason: fmt.Sprintf("the trail ends at entry %d, but this server wrote up to entry %d (entries were removed from its end)", last, wrote)}
	}
	t.broken.Store(brk)
	return brk, nil
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
	return Scan(r, func(Entry) {})
}

// ReadAll returns every entry of an intact trail, and a *BrokenError with
// the entries before the break when it is not.
func ReadAll(r io.Reader) ([]Entry, error) {
	var out []Entry
	err := Scan(r, func(e Entry) { out = append(out, e) })
	return out, err
}

// Scan reads a trail from the start, checking the chain, and hands each
// intact entry to fn; it stops with a *BrokenError at the first bad one.
func Scan(r io.Reader, fn func(Entry)) error {
	brk, err := Read(r, func(e Entry, verified bool) {
		if verified {
			fn(e)
		}
	})
	if err != nil {
		return err
	}
	if brk != nil {
		return brk
	}
	return nil
}

// Read reads a trail from the start and hands every entry it can read to
// fn, with whether the chain vouches for it: the entries before the first
// break are verified; from the break on, those that still read as entries
// are handed unverified, and lines that do not are skipped. It returns the
// first break, nil for an intact trail, and an error only when r fails.
// A last line without its newline is an append in progress, or one a crash
// cut off (Open drops it), and is not read.
func Read(r io.Reader, fn func(e Entry, verified bool)) (*BrokenError, error) {
	var brk *BrokenError
	var seq uint64
	prev := ""
	err := lines(r, func(line int, raw []byte, tooLong bool) {
		e, why := decodeEntry(raw, tooLong)
		parsed := why == ""
		if brk != nil {
			if parsed {
				fn(e, false)
			}
			return
		}
		if parsed {
			want, err := entryHash(e)
			switch {
			case err != nil:
				why = err.Error()
			case e.Hash != want:
				why = "its content does not match its hash (the entry was altered)"
			case e.Seq != seq+1:
				why = fmt.Sprintf("sequence number %d follows %d (an entry was removed or moved)", e.Seq, seq)
			case e.Prev != prev:
				why = "it does not name the previous entry's hash (an entry was removed or moved)"
			}
		}
		if why == "" {
			seq, prev = e.Seq, e.Hash
			fn(e, true)
			return
		}
		brk = &BrokenError{Line: line, Seq: seq + 1, Reason: why}
		if parsed {
			brk.Seq = e.Seq
			fn(e, false)
		}
	})
	return brk, err
}

// decodeEntry reads one line as an entry, or says why it is not one.
func decodeEntry(raw []byte, tooLong bool) (Entry, string) {
	var e Entry
	if tooLong {
		return e, fmt.Sprintf("a line longer than %d bytes is not an audit entry", maxLine)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return e, "empty line"
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, "not an audit entry: " + err.Error()
	}
	if dec.More() {
		return Entry{}, "not an audit entry: more than one JSON value on the line"
	}
	if e.Seq == 0 || e.Hash == "" {
		return Entry{}, "not an audit entry: it has no sequence number or no hash"
	}
	return e, ""
}

// lines hands fn each newline-terminated line of r, without its newline,
// numbered from 1. A line longer than maxLine is handed as tooLong, its
// bytes dropped as they come, so memory stays bounded whatever r holds.
func lines(r io.Reader, fn func(line int, raw []byte, tooLong bool)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	tooLong := false
	line := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLine+1 {
			tooLong, buf = true, buf[:0]
		} else if !tooLong {
			buf = append(buf, chunk...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil // a last line without its newline is not read
		case err != nil:
			return err
		}
		line++
		fn(line, bytes.TrimSuffix(buf, []byte("\n")), tooLong)
		buf, tooLong = buf[:0], false
	}
}
