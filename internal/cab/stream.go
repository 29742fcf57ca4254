package cab

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// blockDecoder decodes the data blocks of one folder in order.
type blockDecoder interface {
	// reset prepares for the first block of a folder with compression c
	// and size uncompressed bytes.
	reset(c Compression, size int64)
	// decode decodes one block's compressed bytes into exactly n bytes.
	// The result is valid until the next call.
	decode(in []byte, n int) ([]byte, error)
}

// storedDecoder passes stored blocks through.
type storedDecoder struct{}

func (storedDecoder) reset(Compression, int64) {}

func (storedDecoder) decode(in []byte, n int) ([]byte, error) {
	if len(in) != n {
		return nil, fmt.Errorf("stored block of %d bytes declares %d uncompressed bytes", len(in), n)
	}
	return in, nil
}

// decoders caches one decoder per method so that a walk over many folders
// allocates each window once.
type decoders struct {
	stored storedDecoder
	mszip  *mszipDecoder
	lzx    *lzxDecoder
}

func (d *decoders) get(f *Folder) blockDecoder {
	c := f.Compression
	var bd blockDecoder
	switch c.Method() {
	case CompressMSZIP:
		if d.mszip == nil {
			d.mszip = new(mszipDecoder)
		}
		bd = d.mszip
	case CompressLZX:
		if d.lzx == nil {
			d.lzx = new(lzxDecoder)
		}
		bd = d.lzx
	default:
		bd = d.stored
	}
	bd.reset(c, f.UncompressedSize)
	return bd
}

// folderStream decodes a folder's uncompressed stream block by block.
type folderStream struct {
	r      *Reader
	folder *Folder
	dec    blockDecoder
	buf    []byte // raw data block: header, reserve, data
	block  int    // index of the next block to read
	off    int64  // cabinet offset of the next block
	out    []byte // undelivered bytes of the current block
	pos    int64  // folder offset of out[0]
	budget *int64 // bytes left to decode, shared by a Walk; nil: no limit
}

func newFolderStream(r *Reader, f *Folder, ds *decoders, buf []byte) *folderStream {
	return &folderStream{r: r, folder: f, dec: ds.get(f), buf: buf, off: f.DataOffset}
}

// newBlockBuffer allocates a buffer for the largest data block.
func (r *Reader) newBlockBuffer() []byte {
	return make([]byte, dataHeaderSize+r.DataReserveSize+maxCompBlock)
}

// blockItem names a data block in errors; it is formatted only when an
// error occurs, keeping the per-block path free of allocations.
type blockItem struct{ folder, block int }

func (b blockItem) String() string { return fmt.Sprintf("folder %d: data block %d", b.folder, b.block) }

// nextBlock reads, verifies and decodes the next data block into fs.out.
func (fs *folderStream) nextBlock() error {
	f := fs.folder
	item := blockItem{f.Index, fs.block}
	off := fs.off
	if fs.block >= f.NumBlocks {
		return formatErr(item.String(), off, "folder data ends before the member (%d blocks)", f.NumBlocks)
	}
	end := fs.r.CabinetSize
	hdrLen := int64(dataHeaderSize + fs.r.DataReserveSize)
	if off < 0 || off > end || end-off < hdrLen {
		return formatErr(item.String(), off, "data block header past the end of the cabinet")
	}
	// One read for header and data: the data is at most maxCompBlock long.
	want := min(int64(len(fs.buf)), end-off)
	n, err := fs.r.ra.ReadAt(fs.buf[:want], off)
	if int64(n) < hdrLen {
		if err == nil || errors.Is(err, io.EOF) {
			return formatErr(item.String(), off, "unexpected end of file")
		}
		return fmt.Errorf("cab: reading %s at offset %#x: %w", item, off, err)
	}
	b := fs.buf[:n]
	le := binary.LittleEndian
	sum := le.Uint32(b[0:])
	cbData := int64(le.Uint16(b[4:]))
	cbUncomp := int64(le.Uint16(b[6:]))
	if err := checkBlockSizes(f.Compression, cbData, cbUncomp); err != nil {
		return formatErr(item.String(), off, "%s", err)
	}
	if hdrLen+cbData > int64(n) {
		if int64(n) == want && (err == nil || errors.Is(err, io.EOF)) {
			return formatErr(item.String(), off, "%d bytes of data past the end of the cabinet", cbData)
		}
		if err == nil || errors.Is(err, io.EOF) {
			return formatErr(item.String(), off, "unexpected end of file")
		}
		return fmt.Errorf("cab: reading %s at offset %#x: %w", item, off, err)
	}
	if fs.budget != nil {
		if *fs.budget -= cbUncomp; *fs.budget < 0 {
			return limitErr("%s: decoding overlapping members again exceeds the total size limit of %d bytes",
				item, fs.r.limits.MaxTotalSize)
		}
	}
	data := b[hdrLen : hdrLen+cbData]
	if sum != 0 {
		if got := blockChecksum(data, b[4:8]); got != sum {
			return &FormatError{Item: item.String(), Offset: off, err: ErrChecksum,
				Msg: fmt.Sprintf("checksum mismatch (stored %#08x, computed %#08x)", sum, got)}
		}
	}
	out, derr := fs.dec.decode(data, int(cbUncomp))
	if derr != nil {
		return formatErr(item.String(), off, "%s", derr)
	}
	fs.out = out
	fs.block++
	fs.off = off + hdrLen + cbData
	return nil
}

// fill makes fs.out non-empty.
func (fs *folderStream) fill() error {
	for len(fs.out) == 0 {
		if err := fs.nextBlock(); err != nil {
			return err
		}
	}
	return nil
}

// skip discards n decoded bytes.
func (fs *folderStream) skip(n int64) error {
	for n > 0 {
		if err := fs.fill(); err != nil {
			return err
		}
		k := int64(len(fs.out))
		if k > n {
			k = n
		}
		fs.out = fs.out[k:]
		fs.pos += k
		n -= k
	}
	return nil
}

// blockChecksum computes the CFDATA checksum: the XOR of the data taken as
// little-endian 32-bit words (a trailing partial word packed with its first
// byte highest), then of the cbData and cbUncomp fields.
func blockChecksum(data, sizes []byte) uint32 {
	le := binary.LittleEndian
	var x uint64
	i := 0
	for ; i+32 <= len(data); i += 32 {
		x ^= le.Uint64(data[i:]) ^ le.Uint64(data[i+8:]) ^ le.Uint64(data[i+16:]) ^ le.Uint64(data[i+24:])
	}
	for ; i+8 <= len(data); i += 8 {
		x ^= le.Uint64(data[i:])
	}
	sum := uint32(x) ^ uint32(x>>32)
	if i+4 <= len(data) {
		sum ^= le.Uint32(data[i:])
		i += 4
	}
	var last uint32
	for _, c := range data[i:] {
		last = last<<8 | uint32(c)
	}
	return sum ^ last ^ le.Uint32(sizes)
}

// memberReader streams one member from a folderStream.
type memberReader struct {
	fs        *folderStream
	remaining int64
	err       error // sticky decoding error
	done      error // set when the reader may no longer be used
}

var (
	errReaderDone = errors.New("cab: member reader used after its Walk callback returned")
	errClosed     = errors.New("cab: read from closed member")
)

// Read implements io.Reader.
func (m *memberReader) Read(p []byte) (int, error) {
	if m.done != nil {
		return 0, m.done
	}
	if m.err != nil {
		return 0, m.err
	}
	if m.remaining <= 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	fs := m.fs
	if err := fs.fill(); err != nil {
		m.err = err
		return 0, err
	}
	n := len(fs.out)
	if int64(n) > m.remaining {
		n = int(m.remaining)
	}
	n = copy(p, fs.out[:n])
	fs.out = fs.out[n:]
	fs.pos += int64(n)
	m.remaining -= int64(n)
	return n, nil
}

// WriteTo implements io.WriterTo, writing decoded blocks straight to w.
func (m *memberReader) WriteTo(w io.Writer) (int64, error) {
	if m.done != nil {
		return 0, m.done
	}
	var total int64
	for m.remaining > 0 {
		if m.err != nil {
			return total, m.err
		}
		fs := m.fs
		if err := fs.fill(); err != nil {
			m.err = err
			return total, err
		}
		chunk := fs.out
		if int64(len(chunk)) > m.remaining {
			chunk = chunk[:m.remaining]
		}
		n, err := w.Write(chunk)
		fs.out = fs.out[n:]
		fs.pos += int64(n)
		m.remaining -= int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
		if n < len(chunk) {
			return total, io.ErrShortWrite
		}
	}
	if m.err != nil {
		return total, m.err
	}
	return total, nil
}

// Close implements io.Closer; further reads fail.
func (m *memberReader) Close() error {
	m.fs, m.done = nil, errClosed
	return nil
}

// Open returns a reader of the member's uncompressed bytes. It decodes the
// member's folder from its start, so opening each member of a large folder
// in turn costs time quadratic in the folder size: use [Reader.Walk] to
// read many members. Memory use is one decoder window plus one data block.
func (f *File) Open() (io.ReadCloser, error) {
	if err := f.openErr(); err != nil {
		return nil, err
	}
	if f.Size == 0 {
		return &memberReader{}, nil // nothing to decode
	}
	r := f.r
	fs := newFolderStream(r, r.Folders[f.FolderIndex], new(decoders), r.newBlockBuffer())
	if err := fs.skip(f.Offset); err != nil {
		return nil, err
	}
	return &memberReader{fs: fs, remaining: f.Size}, nil
}

// Walk calls fn for every member, in folder order and, within a folder, in
// order of offset (the order of the file table for cabinets written by
// common tools), decoding each folder once. The reader passed to fn is valid
// only until fn returns; fn need not read it to the end. Members whose
// ranges overlap an earlier member's make Walk decode their folder again
// from the start; the data decoded in all may not exceed the MaxTotalSize
// limit, which a cabinet without overlapping members never reaches.
//
// Before a member of an undecodable folder (see [ErrUnsupported]) Walk stops
// with that error. It also stops at the first error from fn, which it
// returns unchanged, or from decoding.
func (r *Reader) Walk(fn func(f *File, rd io.Reader) error) error {
	order := slices.Clone(r.Files)
	slices.SortStableFunc(order, func(a, b *File) int {
		if c := cmp.Compare(a.FolderIndex, b.FolderIndex); c != 0 {
			return c
		}
		return cmp.Compare(a.Offset, b.Offset)
	})
	var (
		ds     decoders
		buf    []byte
		fs     *folderStream
		budget = r.limits.MaxTotalSize
	)
	for _, f := range order {
		if err := f.openErr(); err != nil {
			return err
		}
		if f.Size == 0 {
			// Nothing to decode: leave the folder stream where it is.
			m := &memberReader{}
			err := fn(f, m)
			m.done = errReaderDone
			if err != nil {
				return err
			}
			continue
		}
		folder := r.Folders[f.FolderIndex]
		if fs == nil || fs.folder != folder || f.Offset < fs.pos {
			if buf == nil {
				buf = r.newBlockBuffer()
			}
			fs = newFolderStream(r, folder, &ds, buf)
			fs.budget = &budget
		}
		if err := fs.skip(f.Offset - fs.pos); err != nil {
			return err
		}
		m := &memberReader{fs: fs, remaining: f.Size}
		err := fn(f, m)
		if err == nil && m.err != nil {
			// A decoding error the callback swallowed: the stream is
			// no longer usable, so report it.
			err = m.err
		}
		m.fs, m.done = nil, errReaderDone
		if err != nil {
			return err
		}
	}
	return nil
}
