package cab

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Search costs. Reading the file to find "MSCF" is linear; what a crafted
// file can multiply is the reading done by candidates that turn out not
// to be cabinets, each of which may walk a table or block chain. That
// reading is bounded by searchBaseBudget plus searchSizeFactor times the
// file size, each candidate costing at least candidateCost.
const (
	searchChunk      = 64 << 10
	searchBaseBudget = 16 << 20
	searchSizeFactor = 2
	candidateCost    = 512
)

var signature = []byte("MSCF")

// errBudget stops a candidate whose reading would exceed the search budget.
var errBudget = errors.New("cab: search budget spent")

// budgetReaderAt charges every read to a shared budget and fails once it
// is spent.
type budgetReaderAt struct {
	r    io.ReaderAt
	left *int64
}

func (b budgetReaderAt) ReadAt(p []byte, off int64) (int, error) {
	*b.left -= int64(len(p))
	if *b.left < 0 {
		return 0, errBudget
	}
	return b.r.ReadAt(p, off)
}

// Search finds the cabinets in the first size bytes of r with
// [DefaultLimits]; see [SearchLimits].
func Search(r io.ReaderAt, size int64) ([]*Reader, error) {
	return SearchLimits(r, size, Limits{})
}

// SearchLimits finds every cabinet in the first size bytes of r: a plain
// cabinet, or cabinets embedded in another file such as a vendor's
// self-extracting program. It searches as cabextract (libmspack's cabinet
// search) does, and returns the cabinets in file order, each with its
// [Reader.Offset].
//
// A file that starts with a cabinet is opened at once, as [NewReaderLimits]
// opens it; when that cabinet fills the file, nothing else is read. Any
// other part of the file is scanned for the signature "MSCF". A candidate
// whose header is not plausible (its declared size past the end of the
// file, its file table outside it, a format version other than 1.3, no
// folder or no file) is passed over; a plausible one is opened with
// NewReaderLimits on the rest of the file. A candidate that fails to open
// is skipped and the scan goes on just after its signature; a cabinet that
// opens is kept, and the scan goes on after its declared size, so a
// cabinet stored inside another is not reported separately. A cabinet
// without folders or files does not count, as with cabextract.
//
// The reading spent on candidates that are not cabinets is bounded by
// 16 MiB plus twice the file size; past it, and past lim.MaxCabinets
// cabinets, the search stops with an error wrapping [ErrLimit]. When no
// cabinet is found the error wraps [ErrNoCabinet], and names the first
// refused candidate if there was one, except that when a cabinet header
// at offset 0 was refused its own error is returned, so that a damaged
// plain cabinet is reported as such. Read errors end the search.
func SearchLimits(r io.ReaderAt, size int64, lim Limits) ([]*Reader, error) {
	s := &searcher{
		r:      r,
		size:   size,
		lim:    lim.withDefaults(),
		budget: searchBaseBudget + searchSizeFactor*max(size, 0),
	}
	if err := s.run(); err != nil {
		return nil, err
	}
	if len(s.found) > 0 {
		return s.found, nil
	}
	switch {
	case s.refusedAtZero != nil:
		return nil, s.refusedAtZero
	case s.refused > 0:
		return nil, fmt.Errorf("%w (%d cabinet %s refused, the first at offset %#x: %v)",
			ErrNoCabinet, s.refused, plural(s.refused, "header", "headers"), s.firstRefusedAt, s.firstRefused)
	}
	return nil, ErrNoCabinet
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

type searcher struct {
	r      io.ReaderAt
	size   int64
	lim    Limits
	budget int64

	found          []*Reader
	refused        int
	firstRefused   error
	firstRefusedAt int64
	refusedAtZero  error

	// The scan window: buf[:n] holds the file from offset start.
	buf   []byte
	start int64
	n     int
}

func (s *searcher) run() error {
	pos := int64(0)
	if s.size >= headerSize {
		var hdr [headerSize]byte
		if err := readAtFull(s.r, hdr[:], 0); err != nil {
			return err
		}
		if bytes.Equal(hdr[:4], signature) {
			// A plain cabinet: opened without the plausibility check,
			// so that a damaged one yields the reader's own error.
			var err error
			if pos, err = s.candidate(0); err != nil {
				return err
			}
		}
	}
	for pos < s.size {
		p, hdr, err := s.next(pos)
		if err != nil || p < 0 {
			return err
		}
		pos = p + int64(len(signature))
		if !plausible(hdr, s.size-p) {
			continue
		}
		if pos, err = s.candidate(p); err != nil {
			return err
		}
	}
	return nil
}

// plausible reports whether the header bytes at a signature can start a
// cabinet of at most rest bytes.
func plausible(hdr []byte, rest int64) bool {
	if len(hdr) < headerSize {
		return false
	}
	le := binary.LittleEndian
	cbCabinet := int64(le.Uint32(hdr[8:]))
	coffFiles := int64(le.Uint32(hdr[16:]))
	return cbCabinet >= headerSize && cbCabinet <= rest &&
		coffFiles >= headerSize && coffFiles < cbCabinet &&
		hdr[24] == 3 && hdr[25] == 1 &&
		le.Uint16(hdr[26:]) > 0 && le.Uint16(hdr[28:]) > 0
}

// candidate tries to open a cabinet at off and returns where the scan goes
// on. Only read errors and exceeded search limits are returned.
func (s *searcher) candidate(off int64) (int64, error) {
	s.budget -= candidateCost
	before := s.budget
	sec := io.NewSectionReader(s.r, off, s.size-off)
	cr := &Reader{ra: budgetReaderAt{sec, &s.budget}, limits: s.lim, Offset: off}
	err := cr.init(s.size - off)
	if err == nil && (len(cr.Folders) == 0 || len(cr.Files) == 0) {
		err = formatErr("header", 26, "the cabinet holds no files")
	}
	switch {
	case errors.Is(err, errBudget):
		return 0, limitErr("cabinet search stopped at offset %#x: the headers that were not cabinets took more than %d bytes of reading",
			off, searchBaseBudget+searchSizeFactor*s.size)
	case err == nil:
		if len(s.found) == s.lim.MaxCabinets {
			return 0, limitErr("more than %d cabinets in the file", s.lim.MaxCabinets)
		}
		s.budget = before // a cabinet's own reading is not wasted
		cr.ra = sec
		s.found = append(s.found, cr)
		return off + cr.CabinetSize, nil
	case !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrLimit):
		return 0, err // a read error
	}
	if off == 0 {
		s.refusedAtZero = err
	}
	if s.refused == 0 {
		s.firstRefused, s.firstRefusedAt = err, off
	}
	s.refused++
	return off + int64(len(signature)), nil
}

// next returns the offset of the first signature at or after pos with the
// header bytes that follow it (headerSize of them, fewer at the end of the
// file), or -1 when there is none.
func (s *searcher) next(pos int64) (int64, []byte, error) {
	for pos < s.size {
		if pos < s.start || pos >= s.start+int64(s.n) {
			if err := s.fill(pos); err != nil {
				return 0, nil, err
			}
		}
		window := s.buf[pos-s.start : s.n]
		atEOF := s.start+int64(s.n) == s.size
		i := bytes.Index(window, signature)
		if i < 0 {
			if atEOF {
				return -1, nil, nil
			}
			// A signature may straddle the end of the window.
			pos = max(pos, s.start+int64(s.n)-int64(len(signature)-1))
			if err := s.fill(pos); err != nil {
				return 0, nil, err
			}
			continue
		}
		p := pos + int64(i)
		if hdrEnd := int(p-s.start) + headerSize; hdrEnd > s.n && !atEOF {
			// The header straddles the end of the window.
			if err := s.fill(p); err != nil {
				return 0, nil, err
			}
			pos = p
			continue
		}
		return p, s.buf[p-s.start : min(int(p-s.start)+headerSize, s.n)], nil
	}
	return -1, nil, nil
}

// fill reads the window at pos.
func (s *searcher) fill(pos int64) error {
	if s.buf == nil {
		s.buf = make([]byte, int(min(searchChunk, s.size)))
	}
	n := int(min(int64(len(s.buf)), s.size-pos))
	if err := readAtFull(s.r, s.buf[:n], pos); err != nil {
		return err
	}
	s.start, s.n = pos, n
	return nil
}

// readAtFull reads len(p) bytes at off, which the caller knows to lie in
// the file: a short read is an error.
func readAtFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("cab: searching at offset %#x: %w", off, err)
}
