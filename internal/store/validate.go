package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The parts of bbolt's file format (version 2) that bbolt reads when it
// opens a file, before any transaction: the two meta pages, the page size,
// the freelist page and the root page's header. bbolt maps the file and
// trusts them; a file cut short or overwritten makes it fault (SIGSEGV,
// SIGBUS) or panic instead of failing. validateFile checks them first.
// Fields are in the machine's byte order, as bbolt writes them.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16 // id uint64, flags uint16, count uint16, overflow uint32
	metaSize         = 64 // magic, version, pageSize, flags uint32; root, sequence, freelist, pgid, txid, checksum uint64
	metaSumOffset    = 56 // the checksum covers the bytes before it
	minPageSize      = 1 << 10
	maxPageSize      = 1 << 24 // the largest bbolt looks for a second meta page at
	noFreelist       = ^uint64(0)
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
)

// damaged returns the reason validateFile gives.
func damaged(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

// meta is a decoded meta page.
type meta struct {
	pageSize              uint64
	root, freelist, pgid  uint64
	txid                  uint64
	magic, version, flags uint32
}

// readMeta decodes the meta of the page at off and checks its magic,
// version and checksum, as bbolt's Meta.Validate does.
func readMeta(r io.ReaderAt, off int64) (meta, error) {
	var b [pageHeaderSize + metaSize]byte
	if _, err := r.ReadAt(b[:], off); err != nil {
		return meta{}, fmt.Errorf("unreadable (%v)", err)
	}
	ne := binary.NativeEndian
	m := b[pageHeaderSize:]
	got := meta{
		magic: ne.Uint32(m[0:]), version: ne.Uint32(m[4:]), pageSize: uint64(ne.Uint32(m[8:])), flags: ne.Uint32(m[12:]),
		root: ne.Uint64(m[16:]), freelist: ne.Uint64(m[32:]), pgid: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:]),
	}
	switch {
	case got.magic != boltMagic:
		return got, errors.New("not a bbolt meta page")
	case got.version != boltVersion:
		return got, fmt.Errorf("bbolt format version %d, want %d", got.version, boltVersion)
	}
	h := fnv.New64a()
	h.Write(m[:metaSumOffset])
	if h.Sum64() != ne.Uint64(m[metaSumOffset:]) {
		return got, errors.New("checksum mismatch")
	}
	return got, nil
}

func validPageSize(n uint64) bool {
	return n >= minPageSize && n <= maxPageSize && n&(n-1) == 0
}

// validateFile checks, reading at most a few pages, that bbolt can open a
// file of size bytes without faulting: the page size as bbolt finds it, a
// valid meta page at page 0 or 1 (both are checked; bbolt survives one torn
// by a crash), every valid meta's high-water mark within the file, and the
// root and freelist pages of the meta bbolt will use where that meta says.
// The error says what is wrong.
func validateFile(r io.ReaderAt, size int64) error {
	if size < 2*minPageSize {
		return damaged("the file is %d bytes, too short for the two meta pages of a store", size)
	}
	pageSize, err := boltPageSize(r, size)
	if err != nil {
		return err
	}
	if int64(pageSize) > size-pageHeaderSize-metaSize {
		return damaged("the file is %d bytes, shorter than its two meta pages of %d bytes", size, pageSize)
	}
	m0, err0 := readMeta(r, 0)
	m1, err1 := readMeta(r, int64(pageSize))
	if err0 != nil && err1 != nil {
		return damaged("no valid meta page: meta page 0: %v; meta page 1: %v", err0, err1)
	}
	// bbolt uses the valid meta with the higher transaction ID.
	var use meta
	for i, m := range []meta{m0, m1} {
		if []error{err0, err1}[i] != nil {
			continue
		}
		if m.pageSize != pageSize {
			return damaged("meta page %d gives a page size of %d, the store's is %d", i, m.pageSize, pageSize)
		}
		if m.pgid < 4 || m.pgid > uint64(size)/pageSize {
			return damaged("the file is %d bytes, but meta page %d counts %d pages of %d bytes: it was cut short or overwritten",
				size, i, m.pgid, pageSize)
		}
		if use.pgid == 0 || m.txid > use.txid {
			use = m
		}
	}
	return checkPages(r, use, pageSize)
}

// boltPageSize finds the page size as bbolt does when it opens a file:
// that of meta page 0 when the file holds a whole first page and that meta
// is valid; else that of the first valid meta at 1 KiB, 2 KiB, ... 16 MiB;
// else the machine's page size. It must be one bbolt can work with.
func boltPageSize(r io.ReaderAt, size int64) (uint64, error) {
	var ps uint64
	if m, err := readMeta(r, 0); err == nil && size >= 4096 {
		ps = m.pageSize
	} else {
		ps = uint64(os.Getpagesize())
		for off := int64(minPageSize); off <= maxPageSize && off < size-minPageSize; off <<= 1 {
			if m, err := readMeta(r, off); err == nil {
				ps = m.pageSize
				break
			}
		}
	}
	if !validPageSize(ps) {
		return 0, damaged("the store's page size is %d bytes", ps)
	}
	return ps, nil
}

// checkPages checks the root and freelist pages that the meta m names,
// which bbolt reads as it opens the file.
func checkPages(r io.ReaderAt, m meta, pageSize uint64) error {
	if m.root < 2 || m.root >= m.pgid {
		return damaged("the root page %d is outside the %d pages of the store", m.root, m.pgid)
	}
	if _, err := pageHeader(r, m, pageSize, m.root, branchPageFlag, leafPageFlag); err != nil {
		return err
	}
	if m.freelist == noFreelist {
		return nil
	}
	if m.freelist < 2 || m.freelist >= m.pgid {
		return damaged("the freelist page %d is outside the %d pages of the store", m.freelist, m.pgid)
	}
	h, err := pageHeader(r, m, pageSize, m.freelist, freelistPageFlag)
	if err != nil {
		return err
	}
	return checkFreelist(r, m, pageSize, h)
}

type header struct {
	flags, count uint16
	overflow     uint32
}

// pageHeader reads the header of page id and checks that it says so, has
// one of the flags and, with its overflow pages, ends within the store.
func pageHeader(r io.ReaderAt, m meta, pageSize, id uint64, flags ...uint16) (header, error) {
	var b [pageHeaderSize]byte
	if _, err := r.ReadAt(b[:], int64(id*pageSize)); err != nil {
		return header{}, damaged("page %d is unreadable (%v)", id, err)
	}
	ne := binary.NativeEndian
	h := header{flags: ne.Uint16(b[8:]), count: ne.Uint16(b[10:]), overflow: ne.Uint32(b[12:])}
	if got := ne.Uint64(b[0:]); got != id {
		return h, damaged("page %d holds page %d", id, got)
	}
	ok := false
	for _, f := range flags {
		ok = ok || h.flags == f
	}
	if !ok {
		return h, damaged("page %d has type %#x, want %#x", id, h.flags, flags)
	}
	if id+uint64(h.overflow) >= m.pgid {
		return h, damaged("page %d runs %d pages past the %d pages of the store", id, h.overflow, m.pgid)
	}
	return h, nil
}

// checkFreelist checks that the freelist's page IDs fit in its pages and
// are strictly increasing (bbolt writes them sorted) within the store:
// bbolt would panic on a duplicate and hand out pages past the end. It
// reads the list in chunks, so its memory does not depend on the file.
func checkFreelist(r io.ReaderAt, m meta, pageSize uint64, h header) error {
	start := m.freelist*pageSize + pageHeaderSize
	end := (m.freelist + 1 + uint64(h.overflow)) * pageSize
	n := uint64(h.count)
	ne := binary.NativeEndian
	if h.count == 0xFFFF { // the count is the first element
		var b [8]byte
		if _, err := r.ReadAt(b[:], int64(start)); err != nil {
			return damaged("the freelist page %d is unreadable (%v)", m.freelist, err)
		}
		n, start = ne.Uint64(b[:]), start+8
	}
	if n > (end-start)/8 {
		return damaged("the freelist page %d counts %d free pages, more than its %d pages hold", m.freelist, n, 1+h.overflow)
	}
	buf := make([]byte, 8*min(n, 8192))
	var prev uint64
	for off := start; n > 0; {
		chunk := buf[:8*min(n, uint64(len(buf)/8))]
		if _, err := r.ReadAt(chunk, int64(off)); err != nil {
			return damaged("the freelist page %d is unreadable (%v)", m.freelist, err)
		}
		for i := 0; i < len(chunk); i += 8 {
			id := ne.Uint64(chunk[i:])
			if id < 2 || id >= m.pgid || id <= prev {
				return damaged("the freelist names page %d, out of order or outside the %d pages of the store", id, m.pgid)
			}
			prev = id
		}
		off += uint64(len(chunk))
		n -= uint64(len(chunk) / 8)
	}
	return nil
}
