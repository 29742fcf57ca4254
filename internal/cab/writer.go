package cab

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// WriterFile is a member for Write.
type WriterFile struct {
	// Name is the member's path; '/' separators are stored as '\'.
	Name     string
	Modified time.Time
	Size     int64
	// Open returns the member's content, Size bytes.
	Open func() (io.ReadCloser, error)
}

const frameSize = 32768

// maxFolderBlocks is the most data blocks one folder can name (cCFData).
const maxFolderBlocks = 65535

// Write writes a cabinet holding files, in order, in one folder compressed
// with comp (CompressNone or CompressMSZIP). It seeks back once, to fill in
// the cabinet's size. The result reads back with cabextract, gcab and
// this package.
func Write(w io.WriteSeeker, files []WriterFile, comp Compression) error {
	if comp != CompressNone && comp != CompressMSZIP {
		return fmt.Errorf("cab: write: compression %v is not supported; use none or MSZIP", comp)
	}
	if len(files) > 0xffff {
		return fmt.Errorf("cab: write: %d files is more than a cabinet holds (65535)", len(files))
	}
	var total int64
	names := make([][]byte, len(files))
	for i, f := range files {
		name := []byte(toCabPath(f.Name))
		if _, err := SafePath(f.Name); err != nil || len(name) > 255 || !utf8.Valid(name) {
			return fmt.Errorf("cab: write: member name %q: want a relative UTF-8 path of at most 255 bytes", f.Name)
		}
		if f.Size < 0 {
			return fmt.Errorf("cab: write: %s: negative size", f.Name)
		}
		names[i] = name
		total += f.Size
	}
	blocks := (total + frameSize - 1) / frameSize
	if blocks > maxFolderBlocks {
		return fmt.Errorf("cab: write: %d bytes is more than one folder holds (%d)", total, int64(maxFolderBlocks)*frameSize)
	}

	// Header, the folder and the file table, whose size is known now.
	le := binary.LittleEndian
	tableSize := 0
	for _, n := range names {
		tableSize += 16 + len(n) + 1
	}
	const hdr, folder = 36, 8
	head := make([]byte, hdr+folder, hdr+folder+tableSize)
	copy(head, "MSCF")
	le.PutUint32(head[16:], hdr+folder) // coffFiles
	head[24], head[25] = 3, 1           // version 1.3
	le.PutUint16(head[26:], 1)          // cFolders
	le.PutUint16(head[28:], uint16(len(files)))
	le.PutUint32(head[hdr:], uint32(hdr+folder+tableSize)) // coffCabStart
	le.PutUint16(head[hdr+4:], uint16(blocks))
	le.PutUint16(head[hdr+6:], uint16(comp))
	var offset uint32
	for i, f := range files {
		rec := make([]byte, 16)
		le.PutUint32(rec[0:], uint32(f.Size))
		le.PutUint32(rec[4:], offset)
		d, t := dosDateTime(f.Modified)
		le.PutUint16(rec[10:], d)
		le.PutUint16(rec[12:], t)
		attrs := uint16(0x20) // archive
		if !isASCII(names[i]) {
			attrs |= 0x80 // the name is UTF-8
		}
		le.PutUint16(rec[14:], attrs)
		head = append(head, rec...)
		head = append(head, names[i]...)
		head = append(head, 0)
		offset += uint32(f.Size)
	}

	start, err := w.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("cab: write: %w", err)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.Write(head); err != nil {
		return fmt.Errorf("cab: write: %w", err)
	}
	size := int64(len(head))
	var enc *mszipEncoder
	if comp == CompressMSZIP {
		enc = newMSZIPEncoder()
	}
	frame := make([]byte, 0, frameSize)
	blockHdr := make([]byte, 8)
	emit := func() error {
		data := frame
		if enc != nil {
			data = enc.encode(frame)
		}
		le.PutUint16(blockHdr[4:], uint16(len(data)))
		le.PutUint16(blockHdr[6:], uint16(len(frame)))
		le.PutUint32(blockHdr[0:], blockChecksum(data, blockHdr[4:8]))
		if _, err := bw.Write(blockHdr); err != nil {
			return err
		}
		if _, err := bw.Write(data); err != nil {
			return err
		}
		size += int64(len(blockHdr) + len(data))
		frame = frame[:0]
		return nil
	}
	for _, f := range files {
		if err := copyMember(f, &frame, emit); err != nil {
			return err
		}
	}
	if len(frame) > 0 {
		if err := emit(); err != nil {
			return fmt.Errorf("cab: write: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("cab: write: %w", err)
	}
	if size > 0xffffffff {
		return errors.New("cab: write: the cabinet would be larger than 4 GiB")
	}
	var sz [4]byte
	le.PutUint32(sz[:], uint32(size))
	if _, err := w.Seek(start+8, io.SeekStart); err != nil {
		return fmt.Errorf("cab: write: %w", err)
	}
	if _, err := w.Write(sz[:]); err != nil {
		return fmt.Errorf("cab: write: %w", err)
	}
	if _, err := w.Seek(start+size, io.SeekStart); err != nil {
		return fmt.Errorf("cab: write: %w", err)
	}
	return nil
}

// copyMember appends a member's bytes to the frame, emitting every full
// frame, and checks that the member has the size it declared.
func copyMember(f WriterFile, frame *[]byte, emit func() error) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("cab: write %s: %w", f.Name, err)
	}
	defer rc.Close()
	var n int64
	for {
		buf := (*frame)[len(*frame):frameSize]
		m, err := io.ReadFull(rc, buf)
		*frame = (*frame)[:len(*frame)+m]
		n += int64(m)
		if n > f.Size {
			return fmt.Errorf("cab: write %s: it grew past its %d bytes while it was packed", f.Name, f.Size)
		}
		if len(*frame) == frameSize {
			if err := emit(); err != nil {
				return fmt.Errorf("cab: write: %w", err)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("cab: write %s: %w", f.Name, err)
		}
	}
	if n != f.Size {
		return fmt.Errorf("cab: write %s: %d bytes, but %d were declared (did it change while it was packed?)", f.Name, n, f.Size)
	}
	return nil
}

func toCabPath(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c == '/' {
			b[i] = '\\'
		}
	}
	return string(b)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// dosDateTime encodes t (as UTC) the way CFFILE stores it; dates outside
// 1980-2107 are clamped.
func dosDateTime(t time.Time) (date, tm uint16) {
	t = t.UTC()
	y := t.Year()
	switch {
	case y < 1980:
		return 1<<5 | 1, 0 // 1980-01-01
	case y > 2107:
		y = 2107
	}
	date = uint16((y-1980)<<9 | int(t.Month())<<5 | t.Day())
	tm = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return date, tm
}
