package cab

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"time"
	"unicode/utf8"
)

// Sizes and constants of the on-disk format.
const (
	headerSize     = 36 // fixed part of CFHEADER
	folderSize     = 8  // fixed part of CFFOLDER
	fileSize       = 16 // fixed part of CFFILE
	dataHeaderSize = 8  // fixed part of CFDATA

	maxHeaderReserve = 60000 // largest cbCFHeader the specification allows
	maxNameLen       = 256   // longest name (without NUL) accepted
	maxUncompBlock   = 32768 // largest cbUncomp of a data block
	maxCompBlock     = 32768 + 6144

	flagPrevCabinet    = 0x0001
	flagNextCabinet    = 0x0002
	flagReservePresent = 0x0004

	ifoldContinuedFromPrev    = 0xFFFD
	ifoldContinuedToNext      = 0xFFFE
	ifoldContinuedPrevAndNext = 0xFFFF
)

// Limits bounds what a cabinet may make the reader do. A field that is zero
// or negative takes its value from [DefaultLimits]. Exceeding a limit is an
// error wrapping [ErrLimit], detected by [NewReaderLimits] before any data is
// decoded.
type Limits struct {
	// MaxFiles is the largest accepted number of members (CFFILE entries).
	MaxFiles int
	// MaxFolders is the largest accepted number of folders.
	MaxFolders int
	// MaxFileSize is the largest accepted uncompressed size of one member.
	MaxFileSize int64
	// MaxTotalSize bounds both the sum of the members' sizes and the sum of
	// the folders' uncompressed sizes, that is the most data that
	// extracting the whole cabinet decodes.
	MaxTotalSize int64
	// MaxRatio is the largest accepted ratio, per folder, of uncompressed
	// bytes to the bytes its data blocks occupy in the cabinet (headers
	// included). Deflate and LZX cannot exceed about 1000 on real data;
	// the format's own ceiling is 32768/9.
	MaxRatio int64
	// MaxCabinets is the largest number of cabinets [SearchLimits]
	// returns from one file.
	MaxCabinets int
}

// DefaultLimits returns the limits used by [NewReader] and [Search]: 16384
// members, 4096 folders, 1 GiB per member, 4 GiB in total, a compression
// ratio of 1024 and 256 cabinets in one file.
func DefaultLimits() Limits {
	return Limits{
		MaxFiles:     16384,
		MaxFolders:   4096,
		MaxFileSize:  1 << 30,
		MaxTotalSize: 4 << 30,
		MaxRatio:     1024,
		MaxCabinets:  256,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxFolders <= 0 {
		l.MaxFolders = d.MaxFolders
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = d.MaxTotalSize
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.MaxCabinets <= 0 {
		l.MaxCabinets = d.MaxCabinets
	}
	return l
}

// Compression is a folder's typeCompress field: the method in the low four
// bits and method parameters (the LZX window size) in the high byte.
type Compression uint16

// Compression methods, the values of [Compression.Method].
const (
	CompressNone    Compression = 0
	CompressMSZIP   Compression = 1
	CompressQuantum Compression = 2
	CompressLZX     Compression = 3
)

// Method returns the compression method: CompressNone, CompressMSZIP,
// CompressQuantum, CompressLZX or an unknown value.
func (c Compression) Method() Compression { return c & 0x000F }

// LZXWindowBits returns the base-2 logarithm of the LZX window size (15 to
// 21 in a valid cabinet). It is meaningful only for LZX.
func (c Compression) LZXWindowBits() int { return int(c>>8) & 0x1F }

// String returns "none", "MSZIP", "Quantum", "LZX:N" with N the window
// bits, or "unknown(0xNNNN)".
func (c Compression) String() string {
	switch c.Method() {
	case CompressNone:
		return "none"
	case CompressMSZIP:
		return "MSZIP"
	case CompressQuantum:
		return "Quantum"
	case CompressLZX:
		return fmt.Sprintf("LZX:%d", c.LZXWindowBits())
	}
	return fmt.Sprintf("unknown(%#04x)", uint16(c))
}

// Attrs holds a member's attribute bits (CFFILE attribs).
type Attrs uint16

// Attribute bits.
const (
	AttrReadOnly Attrs = 0x01 // read-only
	AttrHidden   Attrs = 0x02 // hidden
	AttrSystem   Attrs = 0x04 // system file
	AttrArchive  Attrs = 0x20 // modified since last backup
	AttrExec     Attrs = 0x40 // run after extraction
	AttrNameUTF8 Attrs = 0x80 // the stored name is UTF-8
)

// Folder is one compressed stream of a cabinet (a CFFOLDER entry and the
// data blocks it names).
type Folder struct {
	// Index is the folder's position in Reader.Folders.
	Index int
	// Compression is the folder's compression method and parameters.
	Compression Compression
	// DataOffset is the offset in the cabinet of the first data block.
	DataOffset int64
	// NumBlocks is the number of data blocks.
	NumBlocks int
	// CompressedSize is the number of bytes the data blocks occupy in the
	// cabinet, block headers and reserve areas included.
	CompressedSize int64
	// UncompressedSize is the sum of the blocks' uncompressed sizes.
	UncompressedSize int64
	// Reserve is the per-folder reserve area (cbCFFolder bytes).
	Reserve []byte

	// unsupported, when not nil, is why the folder cannot be decoded.
	unsupported error
}

// File is one member of a cabinet (a CFFILE entry).
type File struct {
	// Name is the stored name converted to UTF-8, with the cabinet's `\`
	// separators kept as they are. Use [SafePath] before using it as a path.
	Name string
	// Size is the uncompressed size in bytes.
	Size int64
	// Modified is the stored MS-DOS date and time, read as UTC.
	Modified time.Time
	// Attrs holds the attribute bits.
	Attrs Attrs
	// FolderIndex is the index in Reader.Folders of the folder that holds
	// the member's data.
	FolderIndex int
	// Offset is the member's offset in its folder's uncompressed stream.
	Offset int64
	// Continued reports that the member's data starts in a previous cabinet
	// or ends in the next one of a set; such a member cannot be opened.
	Continued bool

	r         *Reader
	index     int
	dirOffset int64 // offset of the CFFILE entry
}

// Mode returns permissions suited to an extracted copy of the member:
// 0644, 0755 with AttrExec, without write bits with AttrReadOnly.
func (f *File) Mode() fs.FileMode {
	m := fs.FileMode(0o644)
	if f.Attrs&AttrExec != 0 {
		m = 0o755
	}
	if f.Attrs&AttrReadOnly != 0 {
		m &^= 0o222
	}
	return m
}

func (f *File) item() string { return fmt.Sprintf("file %d (%q)", f.index, f.Name) }

// Reader gives access to the contents of a cabinet. Opening members and
// walking keep their own decoding state, so several goroutines may read
// from one Reader at once when its io.ReaderAt allows concurrent ReadAt
// calls (as *os.File does).
type Reader struct {
	// Files lists the members in the order of the cabinet's file table.
	Files []*File
	// Folders lists the folders in the order of the folder table.
	Folders []*Folder

	// Offset is where the cabinet starts in the file [Search] found it
	// in; 0 for [NewReader]. Every other offset of the Reader, its folders
	// and its errors counts from the start of the cabinet.
	Offset int64
	// CabinetSize is the size the header declares (cbCabinet); it may be
	// smaller than the file, for example when a signature is appended.
	CabinetSize int64
	// Flags holds the header flags: 0x1 previous cabinet, 0x2 next
	// cabinet, 0x4 reserve areas present.
	Flags uint16
	// SetID identifies the cabinet set this cabinet belongs to.
	SetID uint16
	// CabinetIndex is the cabinet's number in its set, counting from 0.
	CabinetIndex int
	// HeaderReserve is the header reserve area (cbCFHeader bytes). Signed
	// cabinets keep their Authenticode signature directory here.
	HeaderReserve []byte
	// FolderReserveSize and DataReserveSize are the sizes of the
	// per-folder and per-data-block reserve areas.
	FolderReserveSize, DataReserveSize int
	// PrevCabinet, PrevDisk, NextCabinet and NextDisk name the neighbours
	// of a cabinet in a set, when the flags say there are some.
	PrevCabinet, PrevDisk, NextCabinet, NextDisk string

	ra     io.ReaderAt
	limits Limits
}

// NewReader parses the cabinet in the first size bytes of r with
// [DefaultLimits].
func NewReader(r io.ReaderAt, size int64) (*Reader, error) {
	return NewReaderLimits(r, size, Limits{})
}

// NewReaderLimits parses the cabinet in the first size bytes of r. Zero
// fields of lim take the values of [DefaultLimits]. Besides the header,
// folder and file tables it reads the header of every data block, so that
// member ranges, sizes and limits are all checked before it returns; it does
// not read the compressed data.
func NewReaderLimits(r io.ReaderAt, size int64, lim Limits) (*Reader, error) {
	cr := &Reader{ra: r, limits: lim.withDefaults()}
	if err := cr.init(size); err != nil {
		return nil, err
	}
	return cr, nil
}

// readFull reads len(p) bytes at off, all of which must lie below end.
func (r *Reader) readFull(p []byte, off, end int64, item string) error {
	if off < 0 || off > end || int64(len(p)) > end-off {
		return formatErr(item, off, "%d bytes needed past the end of the cabinet (size %d)", len(p), end)
	}
	n, err := r.ra.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return formatErr(item, off, "unexpected end of file")
	}
	return fmt.Errorf("cab: reading %s at offset %#x: %w", item, off, err)
}

// readString reads a NUL-terminated string of at most max bytes at off.
func (r *Reader) readString(off, end int64, max int, item string) (string, int64, error) {
	buf := make([]byte, max+1)
	n := int64(len(buf))
	if end-off < n {
		n = end - off
	}
	if n <= 0 {
		return "", 0, formatErr(item, off, "string past the end of the cabinet")
	}
	if err := r.readFull(buf[:n], off, end, item); err != nil {
		return "", 0, err
	}
	i := 0
	for i < int(n) && buf[i] != 0 {
		i++
	}
	if i == int(n) {
		return "", 0, formatErr(item, off, "string is not NUL-terminated within %d bytes", max)
	}
	return decodeName(buf[:i], false), off + int64(i) + 1, nil
}

func (r *Reader) init(size int64) error {
	var hdr [headerSize + 4]byte
	if size < 4 {
		return formatErr("header", 0, "file too short (%d bytes)", size)
	}
	if err := r.readFull(hdr[:4], 0, size, "header"); err != nil {
		return err
	}
	if string(hdr[:4]) != "MSCF" {
		return formatErr("header", 0, "bad signature %q", hdr[:4])
	}
	if size < headerSize {
		return formatErr("header", 0, "file too short (%d bytes)", size)
	}
	if err := r.readFull(hdr[:headerSize], 0, size, "header"); err != nil {
		return err
	}
	le := binary.LittleEndian
	if minor, major := hdr[24], hdr[25]; major != 1 || minor != 3 {
		return unsupportedErr("cabinet format version %d.%d (want 1.3)", major, minor)
	}
	cbCabinet := int64(le.Uint32(hdr[8:]))
	if cbCabinet < headerSize || cbCabinet > size {
		return formatErr("header", 8, "declared cabinet size %d does not fit the file size %d", cbCabinet, size)
	}
	end := cbCabinet
	r.CabinetSize = cbCabinet
	coffFiles := int64(le.Uint32(hdr[16:]))
	cFolders := int(le.Uint16(hdr[26:]))
	cFiles := int(le.Uint16(hdr[28:]))
	r.Flags = le.Uint16(hdr[30:])
	r.SetID = le.Uint16(hdr[32:])
	r.CabinetIndex = int(le.Uint16(hdr[34:]))

	off := int64(headerSize)
	if r.Flags&flagReservePresent != 0 {
		if err := r.readFull(hdr[headerSize:headerSize+4], off, end, "header reserve sizes"); err != nil {
			return err
		}
		cbHeader := int64(le.Uint16(hdr[headerSize:]))
		r.FolderReserveSize = int(hdr[headerSize+2])
		r.DataReserveSize = int(hdr[headerSize+3])
		off += 4
		if cbHeader > maxHeaderReserve {
			return formatErr("header", headerSize, "header reserve of %d bytes exceeds %d", cbHeader, maxHeaderReserve)
		}
		if cbHeader > end-off {
			return formatErr("header reserve", off, "%d bytes past the end of the cabinet", cbHeader)
		}
		r.HeaderReserve = make([]byte, cbHeader)
		if err := r.readFull(r.HeaderReserve, off, end, "header reserve"); err != nil {
			return err
		}
		off += cbHeader
	}
	var err error
	if r.Flags&flagPrevCabinet != 0 {
		if r.PrevCabinet, off, err = r.readString(off, end, 255, "previous cabinet name"); err != nil {
			return err
		}
		if r.PrevDisk, off, err = r.readString(off, end, 255, "previous disk name"); err != nil {
			return err
		}
	}
	if r.Flags&flagNextCabinet != 0 {
		if r.NextCabinet, off, err = r.readString(off, end, 255, "next cabinet name"); err != nil {
			return err
		}
		if r.NextDisk, off, err = r.readString(off, end, 255, "next disk name"); err != nil {
			return err
		}
	}

	if err := r.readFolders(off, end, cFolders); err != nil {
		return err
	}
	tablesEnd := off + int64(cFolders)*int64(folderSize+r.FolderReserveSize)
	filesEnd, err := r.readFiles(coffFiles, end, cFiles)
	if err != nil {
		return err
	}
	if err := r.checkLayout(tablesEnd, coffFiles, filesEnd); err != nil {
		return err
	}
	return r.checkFiles()
}

// checkLayout requires the header and folder table, the file table and
// each folder's data blocks to occupy disjoint parts of the cabinet, as
// every cabinet writer lays them out: a count or offset that makes one
// structure alias another is a lie.
func (r *Reader) checkLayout(tablesEnd, filesStart, filesEnd int64) error {
	type span struct {
		start, end int64
		what       string
	}
	spans := []span{{0, tablesEnd, "header and folder table"}}
	if filesEnd > filesStart {
		spans = append(spans, span{filesStart, filesEnd, "file table"})
	}
	for _, f := range r.Folders {
		if f.NumBlocks > 0 {
			spans = append(spans, span{f.DataOffset, f.DataOffset + f.CompressedSize, fmt.Sprintf("folder %d data", f.Index)})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if prev, cur := spans[i-1], spans[i]; cur.start < prev.end {
			return formatErr(cur.what, cur.start, "overlaps the %s [%#x, %#x)", prev.what, prev.start, prev.end)
		}
	}
	return nil
}

// readFolders reads the folder table at off and scans each folder's data
// block headers.
func (r *Reader) readFolders(off, end int64, cFolders int) error {
	if cFolders > r.limits.MaxFolders {
		return limitErr("%d folders exceed the limit of %d", cFolders, r.limits.MaxFolders)
	}
	entry := int64(folderSize + r.FolderReserveSize)
	if int64(cFolders)*entry > end-off {
		return formatErr("folder table", off, "%d folders of %d bytes do not fit in the cabinet", cFolders, entry)
	}
	table := make([]byte, int64(cFolders)*entry)
	if err := r.readFull(table, off, end, "folder table"); err != nil {
		return err
	}
	le := binary.LittleEndian
	// Every data block header must fit in the cabinet: this bounds the
	// scanning work below by the file size.
	dataEntry := int64(dataHeaderSize + r.DataReserveSize)
	var blocks int64
	r.Folders = make([]*Folder, cFolders)
	for i := range r.Folders {
		e := table[int64(i)*entry : int64(i+1)*entry]
		f := &Folder{
			Index:       i,
			DataOffset:  int64(le.Uint32(e[0:])),
			NumBlocks:   int(le.Uint16(e[4:])),
			Compression: Compression(le.Uint16(e[6:])),
			Reserve:     e[folderSize:],
		}
		blocks += int64(f.NumBlocks)
		r.Folders[i] = f
	}
	if blocks*dataEntry > end {
		return formatErr("folder table", off, "%d data blocks of at least %d bytes do not fit in the cabinet", blocks, dataEntry)
	}
	var total int64
	cache := new(scanCache)
	for i, f := range r.Folders {
		item := fmt.Sprintf("folder %d", i)
		foff := off + int64(i)*entry
		switch f.Compression.Method() {
		case CompressNone, CompressMSZIP:
		case CompressLZX:
			if w := f.Compression.LZXWindowBits(); w < 15 || w > 21 {
				return formatErr(item, foff+6, "LZX window of 2^%d bytes (must be 2^15 to 2^21)", w)
			}
		case CompressQuantum:
			f.unsupported = unsupportedErr("folder %d uses Quantum compression", i)
		default:
			f.unsupported = unsupportedErr("folder %d uses unknown compression type %#04x", i, uint16(f.Compression))
		}
		if i == 0 && r.Flags&flagPrevCabinet != 0 {
			f.unsupported = unsupportedErr("folder %d continues from previous cabinet %q", i, r.PrevCabinet)
		}
		if i == len(r.Folders)-1 && r.Flags&flagNextCabinet != 0 {
			f.unsupported = unsupportedErr("folder %d continues in next cabinet %q", i, r.NextCabinet)
		}
		if err := r.scanBlocks(f, end, cache); err != nil {
			return err
		}
		// Every block has a header, so CompressedSize > 0 when
		// UncompressedSize is; floats avoid overflow with huge limits.
		if float64(f.UncompressedSize) > float64(r.limits.MaxRatio)*float64(f.CompressedSize) {
			return limitErr("folder %d: %d bytes from %d exceed the compression ratio limit of %d",
				i, f.UncompressedSize, f.CompressedSize, r.limits.MaxRatio)
		}
		total += f.UncompressedSize
		if total > r.limits.MaxTotalSize {
			return limitErr("folders hold more than the total size limit of %d bytes", r.limits.MaxTotalSize)
		}
	}
	return nil
}

// scanCache serves the block header reads of scanBlocks from one 4 KiB
// read, so that a folder of many small blocks costs few system calls.
type scanCache struct {
	buf   [4096]byte
	start int64
	n     int
}

// header returns the dataHeaderSize bytes at off, which lie below end.
func (r *Reader) header(c *scanCache, off, end int64, item func() string) ([]byte, error) {
	if off >= c.start && off+dataHeaderSize <= c.start+int64(c.n) {
		return c.buf[off-c.start:][:dataHeaderSize], nil
	}
	if off < 0 || off > end || end-off < dataHeaderSize {
		return nil, formatErr(item(), off, "data block header past the end of the cabinet (size %d)", end)
	}
	n := int(min(int64(len(c.buf)), end-off))
	if err := r.readFull(c.buf[:n], off, end, item()); err != nil {
		return nil, err
	}
	c.start, c.n = off, n
	return c.buf[:dataHeaderSize], nil
}

// scanBlocks walks the data block headers of f, checking that each lies in
// the cabinet and declares valid sizes, and sums the sizes.
func (r *Reader) scanBlocks(f *Folder, end int64, cache *scanCache) error {
	hdrLen := dataHeaderSize + r.DataReserveSize
	off := f.DataOffset
	le := binary.LittleEndian
	for b := 0; b < f.NumBlocks; b++ {
		item := func() string { return fmt.Sprintf("folder %d: data block %d", f.Index, b) }
		hdr, err := r.header(cache, off, end, item)
		if err != nil {
			return err
		}
		cbData := int64(le.Uint16(hdr[4:]))
		cbUncomp := int64(le.Uint16(hdr[6:]))
		if err := checkBlockSizes(f.Compression, cbData, cbUncomp); err != nil {
			return formatErr(item(), off, "%s", err)
		}
		n := int64(hdrLen) + cbData
		if n > end-off {
			return formatErr(item(), off, "%d bytes of data past the end of the cabinet", cbData)
		}
		off += n
		f.CompressedSize += n
		f.UncompressedSize += cbUncomp
	}
	return nil
}

// checkBlockSizes validates a data block's declared sizes for its method.
func checkBlockSizes(c Compression, cbData, cbUncomp int64) error {
	if cbUncomp > maxUncompBlock {
		return fmt.Errorf("declared uncompressed size %d exceeds %d", cbUncomp, maxUncompBlock)
	}
	if cbData > maxCompBlock {
		return fmt.Errorf("compressed size %d exceeds %d", cbData, maxCompBlock)
	}
	if c.Method() == CompressNone && cbData != cbUncomp {
		return fmt.Errorf("stored block of %d bytes declares %d uncompressed bytes", cbData, cbUncomp)
	}
	return nil
}

// readFiles reads the file table at off and returns its end. Entries are
// appended as they are read, so a lying count costs no more memory than
// the file holds.
func (r *Reader) readFiles(off, end int64, cFiles int) (int64, error) {
	if cFiles > r.limits.MaxFiles {
		return 0, limitErr("%d files exceed the limit of %d", cFiles, r.limits.MaxFiles)
	}
	if off < headerSize || off > end || int64(cFiles)*fileSize > end-off {
		return 0, formatErr("file table", off, "%d file entries do not fit in the cabinet", cFiles)
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r.ra, off, end-off), 16384)
	le := binary.LittleEndian
	var fixed [fileSize]byte
	r.Files = make([]*File, 0, min(cFiles, 1024))
	for i := 0; i < cFiles; i++ {
		item := fmt.Sprintf("file %d", i)
		if _, err := io.ReadFull(br, fixed[:]); err != nil {
			return 0, r.tableErr(item, off, err)
		}
		name, err := br.ReadSlice(0)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return 0, r.tableErr(item, off, err)
		}
		if err != nil || len(name)-1 > maxNameLen {
			return 0, formatErr(item, off, "name longer than %d bytes", maxNameLen)
		}
		name = name[:len(name)-1]
		f := &File{
			Size:      int64(le.Uint32(fixed[0:])),
			Offset:    int64(le.Uint32(fixed[4:])),
			Modified:  dosTime(le.Uint16(fixed[10:]), le.Uint16(fixed[12:])),
			Attrs:     Attrs(le.Uint16(fixed[14:])),
			r:         r,
			index:     i,
			dirOffset: off,
		}
		f.Name = decodeName(name, f.Attrs&AttrNameUTF8 != 0)
		ifold := int(le.Uint16(fixed[8:]))
		switch {
		case ifold < len(r.Folders):
			f.FolderIndex = ifold
		case len(r.Folders) == 0:
			return 0, formatErr(f.item(), off+8, "folder index %#x in a cabinet without folders", ifold)
		case ifold == ifoldContinuedFromPrev || ifold == ifoldContinuedPrevAndNext:
			f.FolderIndex, f.Continued = 0, true
		case ifold == ifoldContinuedToNext:
			f.FolderIndex, f.Continued = len(r.Folders)-1, true
		default:
			return 0, formatErr(f.item(), off+8, "folder index %d out of range (%d folders)", ifold, len(r.Folders))
		}
		r.Files = append(r.Files, f)
		off += fileSize + int64(len(name)) + 1
	}
	return off, nil
}

func (r *Reader) tableErr(item string, off int64, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return formatErr(item, off, "file table runs past the end of the cabinet")
	}
	return fmt.Errorf("cab: reading %s at offset %#x: %w", item, off, err)
}

// checkFiles applies the size limits and checks every member's range
// against its folder.
func (r *Reader) checkFiles() error {
	var total int64
	for _, f := range r.Files {
		if f.Size > r.limits.MaxFileSize {
			return limitErr("%s: size %d exceeds the limit of %d", f.item(), f.Size, r.limits.MaxFileSize)
		}
		total += f.Size
		if total > r.limits.MaxTotalSize {
			return limitErr("members exceed the total size limit of %d bytes", r.limits.MaxTotalSize)
		}
		if f.Continued {
			continue
		}
		if fo := r.Folders[f.FolderIndex]; f.Offset+f.Size > fo.UncompressedSize {
			return formatErr(f.item(), f.dirOffset, "range [%d, %d) overruns folder %d of %d bytes",
				f.Offset, f.Offset+f.Size, fo.Index, fo.UncompressedSize)
		}
	}
	return nil
}

// openErr reports why f cannot be opened, or nil.
func (f *File) openErr() error {
	if f.Continued {
		return unsupportedErr("%s continues from or into another cabinet", f.item())
	}
	return f.r.Folders[f.FolderIndex].unsupported
}

// dosTime converts an MS-DOS date and time to a time.Time in UTC.
func dosTime(d, t uint16) time.Time {
	return time.Date(
		int(d>>9)+1980, time.Month(d>>5&0xF), int(d&0x1F),
		int(t>>11), int(t>>5&0x3F), int(t&0x1F)*2, 0, time.UTC)
}

// cp1252 maps the bytes 0x80 to 0x9F of Windows-1252 to Unicode; the five
// undefined bytes map to the C1 control of the same value, as Windows does.
var cp1252 = [32]rune{
	'\u20AC', '\u0081', '\u201A', '\u0192', '\u201E', '\u2026', '\u2020', '\u2021',
	'\u02C6', '\u2030', '\u0160', '\u2039', '\u0152', '\u008D', '\u017D', '\u008F',
	'\u0090', '\u2018', '\u2019', '\u201C', '\u201D', '\u2022', '\u2013', '\u2014',
	'\u02DC', '\u2122', '\u0161', '\u203A', '\u0153', '\u009D', '\u017E', '\u0178',
}

// decodeName converts a stored name to a valid UTF-8 string. In a UTF-8
// name each byte that is not part of a valid sequence becomes U+FFFD, as
// cabextract does (so an overlong "/" can never act as a separator); other
// names are Windows-1252.
func decodeName(b []byte, isUTF8 bool) string {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	if isUTF8 {
		out := make([]byte, 0, len(b)+8)
		for len(b) > 0 {
			r, n := utf8.DecodeRune(b)
			if r == utf8.RuneError && n == 1 {
				out = append(out, "\uFFFD"...)
			} else {
				out = append(out, b[:n]...)
			}
			b = b[n:]
		}
		return string(out)
	}
	out := make([]byte, 0, len(b)*2)
	for _, c := range b {
		switch {
		case c < 0x80:
			out = append(out, c)
		case c < 0xA0:
			out = utf8.AppendRune(out, cp1252[c-0x80])
		default:
			out = utf8.AppendRune(out, rune(c))
		}
	}
	return string(out)
}
