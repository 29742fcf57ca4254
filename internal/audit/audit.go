// Package audit keeps the admin audit trail: an append-only file of JSON
// lines under <data>/Logs/Server/Audit/admin/, one per admin action, each
// carrying the hash of the line before it. Altering, removing or reordering
// any entry breaks the chain, which Verify reports; Read reads past the
// break, so that what is left of a tampered trail can still be shown.
//
// The chain alone cannot show that entries were removed from its end, so
// the store keeps its head (the last entry's sequence number and hash),
// written in the same transaction as the change the entry records
// (store.DB.Audited). Once anchored to that head, a trail that ends before
// it, or holds another entry there, is broken too.
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
	"slices"
	"strconv"
	"strings"
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

// Entries the server writes itself, with ServerActor as their actor.
const (
	// ActionAbandoned marks entries written whose change the store did
	// not commit (a crash or a failed commit between the two): its After
	// names them, {"entries": [7], "reason": "..."}.
	ActionAbandoned = "audit.abandoned"
	// ActionAnchored is the first entry of a trail whose head the store
	// did not keep yet (a store made before it did).
	ActionAnchored = "audit.anchored"
	// ServerActor is the actor of the entries the server writes itself.
	ServerActor = "deviceupdate"
)

// Head is the chain's last entry, as the store keeps it apart from the
// trail.
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// HeadReader reads the head the store keeps; ok is false when it keeps
// none yet.
type HeadReader interface {
	AuditHead() (h Head, ok bool, err error)
}

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
	size   int64 // bytes of whole entries; a failed append is cut back to it
	torn   bool  // a failed append could not be cut back yet
	now    func() time.Time
	heads  atomic.Pointer[headReader]  // set by Anchor
	broken atomic.Pointer[BrokenError] // as last found, nil while intact
}

type headReader struct{ HeadReader }

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
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit trail %s: %w", path, err)
	}
	t := &Trail{f: f, path: path, now: now, size: fi.Size()}
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
// knows how far this process wrote, and, once anchored, the head the
// store keeps: a trail that ends before either lost entries from its end.
func (t *Trail) Read(fn func(e Entry, verified bool)) (*BrokenError, error) {
	sum, err := t.read(fn)
	if err != nil {
		return nil, err
	}
	t.broken.Store(sum.brk)
	return sum.brk, nil
}

// summary is what one read of the trail found.
type summary struct {
	brk      *BrokenError
	head     Head // the head the store keeps, read before the file
	recorded bool // the store keeps a head
	last     Head // the last entry that reads, verified or not
	atHead   Head // the entry that reads with the head's number, if any
	lines    int  // lines read as verified entries
	// pastHead holds each entry past the head: true when it is an
	// audit.abandoned entry or a later one names it.
	pastHead map[uint64]bool
}

// read reads the head (first: an append in flight lands in the file
// before its head in the store), then the file, and says where the chain
// breaks, in the file or against the head.
func (t *Trail) read(fn func(e Entry, verified bool)) (*summary, error) {
	sum := &summary{}
	if hr := t.heads.Load(); hr != nil {
		h, ok, err := hr.AuditHead()
		if err != nil {
			return nil, fmt.Errorf("read audit trail head: %w", err)
		}
		sum.head, sum.recorded = h, ok
		sum.pastHead = map[uint64]bool{}
	}
	t.mu.Lock()
	wrote := t.seq
	t.mu.Unlock()
	f, err := os.Open(t.path)
	if err != nil {
		return nil, fmt.Errorf("read audit trail: %w", err)
	}
	defer f.Close()
	var last uint64 // of the verified entries
	brk, err := Read(f, func(e Entry, verified bool) {
		if verified {
			last = e.Seq
			sum.lines++
		}
		sum.last = Head{e.Seq, e.Hash}
		if sum.recorded {
			switch {
			case e.Seq == sum.head.Seq:
				sum.atHead = sum.last
			case e.Seq > sum.head.Seq:
				sum.notePastHead(e)
			}
		}
		fn(e, verified)
	})
	if err != nil {
		return nil, fmt.Errorf("read audit trail %s: %w", t.path, err)
	}
	if brk == nil && sum.recorded {
		brk = sum.headBreak(last)
	}
	if brk == nil && last < wrote {
		brk = &BrokenError{Line: sum.lines + 1, Seq: last + 1,
			Reason: fmt.Sprintf("the trail ends at entry %d, but this server wrote up to entry %d (entries were removed from its end)", last, wrote)}
	}
	sum.brk = brk
	return sum, nil
}

// notePastHead records an entry past the head, and the entries an
// audit.abandoned entry names as not applied.
func (sum *summary) notePastHead(e Entry) {
	if e.Action != ActionAbandoned || e.Actor != ServerActor {
		if _, seen := sum.pastHead[e.Seq]; !seen {
			sum.pastHead[e.Seq] = false
		}
		return
	}
	sum.pastHead[e.Seq] = true
	var named struct {
		Entries []uint64 `json:"entries"`
	}
	if json.Unmarshal(e.After, &named) == nil {
		for _, seq := range named.Entries {
			if seq > sum.head.Seq && seq < e.Seq {
				sum.pastHead[seq] = true
			}
		}
	}
}

// headBreak compares an intact chain whose last entry is last with the
// head the store keeps.
func (sum *summary) headBreak(last uint64) *BrokenError {
	h := sum.head
	switch {
	case last < h.Seq:
		return &BrokenError{Line: sum.lines + 1, Seq: last + 1,
			Reason: fmt.Sprintf("the trail ends at entry %d, but the store records entry %d as written (entries were removed from its end)", last, h.Seq)}
	case sum.atHead.Hash != h.Hash:
		return &BrokenError{Line: int(h.Seq), Seq: h.Seq,
			Reason: "it is not the entry the store records as written with that number (the trail was altered or replaced)"}
	}
	return nil
}

// Anchoring is what Anchor found.
type Anchoring struct {
	Recorded bool // the store keeps a head; when false, Last should become it
	Last     Head // the trail's last entry that reads
	// Unapplied lists the entries past the head that no audit.abandoned
	// entry names: written, but the store did not commit their change.
	Unapplied []uint64
}

// Anchor reads the head hr keeps, and from now on Read checks the trail
// against it. When the trail ends before the head, or holds another entry
// there, the next entry follows the head, not the file: the trail breaks
// there for good, and a later change cannot hide the loss. A trail that
// agrees with the head may run past it: those entries, written but not
// committed, are returned in Unapplied for the caller to mark.
func (t *Trail) Anchor(hr HeadReader) (*Anchoring, error) {
	t.heads.Store(&headReader{hr})
	sum, err := t.read(func(Entry, bool) {})
	if err != nil {
		return nil, err
	}
	t.broken.Store(sum.brk)
	a := &Anchoring{Recorded: sum.recorded, Last: sum.last}
	if !sum.recorded {
		return a, nil
	}
	if sum.last.Seq < sum.head.Seq || sum.atHead.Hash != sum.head.Hash {
		t.mu.Lock()
		t.seq, t.prev = max(t.seq, sum.head.Seq), sum.head.Hash
		t.mu.Unlock()
		return a, nil
	}
	for seq, marked := range sum.pastHead {
		if !marked {
			a.Unapplied = append(a.Unapplied, seq)
		}
	}
	slices.Sort(a.Unapplied)
	return a, nil
}

// Abandoned returns the entry that marks entries as not applied, for the
// reason given.
func Abandoned(seqs []uint64, reason string) Entry {
	nums := make([]string, len(seqs))
	for i, seq := range seqs {
		nums[i] = strconv.FormatUint(seq, 10)
	}
	target := "entry " + nums[0]
	if len(nums) > 1 {
		target = "entries " + strings.Join(nums, ", ")
	}
	after, _ := json.Marshal(struct {
		Entries []uint64 `json:"entries"`
		Reason  string   `json:"reason"`
	}{seqs, reason})
	return Entry{Actor: ServerActor, Action: ActionAbandoned, Target: target, Result: ResultOK, After: after}
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
// writes it and syncs the file before returning it. When that fails, the
// part of the line written is cut off again, so the trail holds only
// whole entries, each acknowledged. Only store.DB.Audited calls it,
// inside the transaction that records the new head.
func (t *Trail) Append(e Entry) (Entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.torn {
		if err := t.cut(); err != nil {
			return e, fmt.Errorf("append audit entry: cut off an earlier failed append: %w", err)
		}
	}
	e, err := Seal(e, Head{Seq: t.seq, Hash: t.prev}, t.now())
	if err != nil {
		return e, err
	}
	line, err := json.Marshal(e)
	if err != nil {
		return e, fmt.Errorf("append audit entry: %w", err)
	}
	line = append(line, '\n')
	_, err = t.f.Write(line)
	if err == nil {
		err = t.f.Sync()
	}
	if err != nil {
		if cerr := t.cut(); cerr != nil {
			t.torn = true
		}
		return e, fmt.Errorf("append audit entry: %w", err)
	}
	t.seq, t.prev, t.size = e.Seq, e.Hash, t.size+int64(len(line))
	return e, nil
}

// cut truncates the file to its whole entries.
func (t *Trail) cut() error {
	if err := t.f.Truncate(t.size); err != nil {
		return err
	}
	t.torn = false
	return t.f.Sync()
}

// Close closes the trail file.
func (t *Trail) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.f.Close()
}

// Seal chains e after the entry prev names: it stamps e with the time
// now, the sequence number after prev's and prev's hash, and sets its own
// hash. The file trail seals each entry it appends; a trail kept in a
// database (pgstore) seals them the same way, so one Verify checks both.
func Seal(e Entry, prev Head, now time.Time) (Entry, error) {
	e.Seq = prev.Seq + 1
	e.Time = now.UTC()
	e.Prev = prev.Hash
	e.Hash = ""
	h, err := entryHash(e)
	if err != nil {
		return e, err
	}
	e.Hash = h
	return e, nil
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
