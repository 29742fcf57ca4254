package cab

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/cab/internal/lzxenc"
)

// This file holds a small cabinet writer for tests: stored and MSZIP
// folders, several folders, reserve areas and set fields, so that tests can
// build exactly the structures they corrupt.

type tFile struct {
	name   string
	data   []byte
	folder int
	attrs  Attrs
	date   uint16
	time   uint16
}

type tFolder struct {
	comp      Compression
	blockSize int // uncompressed bytes per block; 32768 when 0
	reserve   []byte
	lzxTypes  []int // LZX block type of each frame, cycled
}

type tCab struct {
	folders       []tFolder
	files         []tFile
	headerReserve []byte
	folderReserve int // cbCFFolder; folders' reserve is padded to it
	dataReserve   int
	reserveFlag   bool // set the reserve flag even with empty areas
	flags         uint16
	prev, next    [2]string // cabinet and disk names
	setID         uint16
	index         uint16
	noChecksum    bool
}

// tLayout tells where the writer put each structure.
type tLayout struct {
	folderTable int   // offset of the first CFFOLDER
	folderEntry int   // size of one CFFOLDER
	fileTable   int   // offset of the first CFFILE
	fileEntries []int // offset of each CFFILE
	blocks      [][]int
	dataHdr     int // size of a CFDATA header with its reserve
}

// build writes the cabinet and returns its bytes and layout.
func (c *tCab) build(t testing.TB) ([]byte, tLayout) {
	t.Helper()
	le := binary.LittleEndian
	var lay tLayout
	flags := c.flags
	reserve := c.reserveFlag || len(c.headerReserve) > 0 || c.folderReserve > 0 || c.dataReserve > 0
	if reserve {
		flags |= flagReservePresent
	}
	if c.prev[0] != "" {
		flags |= flagPrevCabinet
	}
	if c.next[0] != "" {
		flags |= flagNextCabinet
	}

	// Header, then the folder and file tables, then the data.
	hdr := make([]byte, headerSize)
	copy(hdr, "MSCF")
	hdr[24], hdr[25] = 3, 1
	le.PutUint16(hdr[26:], uint16(len(c.folders)))
	le.PutUint16(hdr[28:], uint16(len(c.files)))
	le.PutUint16(hdr[30:], flags)
	le.PutUint16(hdr[32:], c.setID)
	le.PutUint16(hdr[34:], c.index)
	out := bytes.NewBuffer(hdr)
	if reserve {
		var r [4]byte
		le.PutUint16(r[0:], uint16(len(c.headerReserve)))
		r[2], r[3] = byte(c.folderReserve), byte(c.dataReserve)
		out.Write(r[:])
		out.Write(c.headerReserve)
	}
	for _, s := range []string{c.prev[0], c.prev[1]} {
		if c.prev[0] != "" {
			out.WriteString(s)
			out.WriteByte(0)
		}
	}
	for _, s := range []string{c.next[0], c.next[1]} {
		if c.next[0] != "" {
			out.WriteString(s)
			out.WriteByte(0)
		}
	}
	lay.folderTable = out.Len()
	lay.folderEntry = folderSize + c.folderReserve
	out.Write(make([]byte, len(c.folders)*lay.folderEntry))
	lay.fileTable = out.Len()
	le.PutUint32(out.Bytes()[16:], uint32(lay.fileTable))
	offsets := make([]int64, len(c.folders))
	for _, f := range c.files {
		lay.fileEntries = append(lay.fileEntries, out.Len())
		var e [fileSize]byte
		le.PutUint32(e[0:], uint32(len(f.data)))
		le.PutUint32(e[4:], uint32(offsets[f.folder]))
		le.PutUint16(e[8:], uint16(f.folder))
		le.PutUint16(e[10:], f.date)
		le.PutUint16(e[12:], f.time)
		le.PutUint16(e[14:], uint16(f.attrs))
		out.Write(e[:])
		out.WriteString(f.name)
		out.WriteByte(0)
		offsets[f.folder] += int64(len(f.data))
	}
	lay.dataHdr = dataHeaderSize + c.dataReserve
	lay.blocks = make([][]int, len(c.folders))
	for i, fo := range c.folders {
		var stream []byte
		for _, f := range c.files {
			if f.folder == i {
				stream = append(stream, f.data...)
			}
		}
		bs := fo.blockSize
		if bs == 0 {
			bs = maxUncompBlock
		}
		e := out.Bytes()[lay.folderTable+i*lay.folderEntry:]
		le.PutUint32(e[0:], uint32(out.Len()))
		le.PutUint16(e[6:], uint16(fo.comp))
		copy(e[folderSize:lay.folderEntry], fo.reserve)
		nblocks := 0
		if fo.comp.Method() == CompressLZX {
			frames, err := lzxenc.Compress(stream, fo.comp.LZXWindowBits(), fo.lzxTypes)
			if err != nil {
				t.Fatal(err)
			}
			for k, fr := range frames {
				lay.blocks[i] = append(lay.blocks[i], out.Len())
				out.Write(c.dataBlock(fr, min(lzxFrameSize, len(stream)-k*lzxFrameSize)))
				nblocks++
			}
			stream = nil // all written
		}
		for p := 0; p < len(stream); p += bs {
			raw := stream[p:min(p+bs, len(stream))]
			var data []byte
			switch fo.comp.Method() {
			case CompressMSZIP:
				data = mszipCompress(t, raw, stream[max(0, p-mszipHistory):p])
			default:
				data = raw
			}
			lay.blocks[i] = append(lay.blocks[i], out.Len())
			out.Write(c.dataBlock(data, len(raw)))
			nblocks++
		}
		le.PutUint16(out.Bytes()[lay.folderTable+i*lay.folderEntry+4:], uint16(nblocks))
	}
	b := out.Bytes()
	le.PutUint32(b[8:], uint32(len(b)))
	return b, lay
}

// dataBlock encodes one CFDATA with a checksum (unless disabled).
func (c *tCab) dataBlock(data []byte, uncomp int) []byte {
	le := binary.LittleEndian
	b := make([]byte, dataHeaderSize+c.dataReserve+len(data))
	le.PutUint16(b[4:], uint16(len(data)))
	le.PutUint16(b[6:], uint16(uncomp))
	copy(b[dataHeaderSize+c.dataReserve:], data)
	if !c.noChecksum {
		le.PutUint32(b[0:], blockChecksum(data, b[4:8]))
	}
	return b
}

// mszipCompress makes an MSZIP block of raw with dictionary dict.
func mszipCompress(t testing.TB, raw, dict []byte) []byte {
	var buf bytes.Buffer
	buf.WriteString("CK")
	w, err := flate.NewWriterDict(&buf, flate.BestCompression, dict)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fixChecksum recomputes the checksum of the data block at off.
func fixChecksum(b []byte, off, reserve int) {
	le := binary.LittleEndian
	n := int(le.Uint16(b[off+4:]))
	data := b[off+dataHeaderSize+reserve : off+dataHeaderSize+reserve+n]
	le.PutUint32(b[off:], blockChecksum(data, b[off+4:off+8]))
}

// semiRandom returns n bytes that compress to roughly half: words from a
// small vocabulary mixed with random bytes, like text with binary parts.
func semiRandom(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
	words := make([][]byte, 512)
	for i := range words {
		w := make([]byte, 3+rng.IntN(9))
		for j := range w {
			w[j] = 'a' + byte(rng.IntN(26))
		}
		words[i] = w
	}
	out := make([]byte, 0, n+16)
	for len(out) < n {
		if rng.IntN(10) < 7 {
			out = append(out, words[rng.IntN(len(words))]...)
			out = append(out, ' ')
		} else {
			for range 6 {
				out = append(out, byte(rng.Uint32()))
			}
		}
	}
	return out[:n]
}
