package cab

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// lzxBits writes an LZX bit stream for tests: bits go into 16-bit
// little-endian words, most significant bit first.
type lzxBits struct {
	out []byte
	cur uint16
	n   uint
}

func (w *lzxBits) put(v uint32, k uint) {
	for i := k; i > 0; i-- {
		w.cur = w.cur<<1 | uint16(v>>(i-1)&1)
		w.n++
		if w.n == 16 {
			w.out = append(w.out, byte(w.cur), byte(w.cur>>8))
			w.cur, w.n = 0, 0
		}
	}
}

// align pads with zero bits to the next 16-bit boundary.
func (w *lzxBits) align() {
	for w.n != 0 {
		w.put(0, 1)
	}
}

// pretree writes a pretree in which symbols 0 and 16 have 1-bit codes
// ('0' and '1'): enough to code lengths that go from 0 to 1 or stay.
func (w *lzxBits) pretree() {
	for i := range lzxPretreeSyms {
		if i == 0 || i == 16 {
			w.put(1, 4)
		} else {
			w.put(0, 4)
		}
	}
}

// lengths writes code lengths, each 0 or 1 and changed from all zeros,
// with the pretree above.
func (w *lzxBits) lengths(ones map[int]bool, n int) {
	w.pretree()
	for i := range n {
		if ones[i] {
			w.put(1, 1)
		} else {
			w.put(0, 1)
		}
	}
}

// verbatimTwoSymbols writes a verbatim block header (for window 2^15, 30
// slots) whose main tree has two 1-bit codes: literal lit ('0') and match
// symbol 256+m ('1'); the length tree is empty.
func (w *lzxBits) verbatimTwoSymbols(size int, lit, m int) {
	w.put(lzxBlockVerbatim, 3)
	w.put(uint32(size), 24)
	w.lengths(map[int]bool{lit: true}, 256)
	w.lengths(map[int]bool{m: true}, 30*8)
	w.lengths(nil, lzxLengthSyms)
}

// decodeLZXSizes decodes frames; sizes gives each frame's output size
// (32768 by default, the last frame's from its position in sizes).
func decodeLZXSizes(wbits int, sizes []int, frames ...[]byte) ([][]byte, error) {
	d := new(lzxDecoder)
	d.reset(Compression(CompressLZX|Compression(wbits)<<8), 1<<30)
	var out [][]byte
	for i, f := range frames {
		n := lzxFrameSize
		if i < len(sizes) {
			n = sizes[i]
		}
		b, err := d.decode(f, n)
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(b))
	}
	return out, nil
}

func TestLZXCraftedStreams(t *testing.T) {
	tests := []struct {
		name    string
		stream  func(w *lzxBits)
		size    int
		want    string
		wantErr string
	}{
		{
			name: "literal then repeated-offset match",
			stream: func(w *lzxBits) {
				w.put(0, 1) // no E8 translation
				w.verbatimTwoSymbols(4, 'A', 0)
				w.put(0, 1) // 'A'
				w.put(1, 1) // match: slot 0 (R0 = 1), length 2
				w.put(0, 1) // 'A'
			},
			size: 4, want: "AAAA",
		},
		{
			name: "match before the window start",
			stream: func(w *lzxBits) {
				w.put(0, 1)
				w.verbatimTwoSymbols(4, 'A', 0)
				w.put(1, 1) // match at position 0
			},
			size: 4, wantErr: "before the start",
		},
		{
			name: "match longer than the block",
			stream: func(w *lzxBits) {
				w.put(0, 1)
				w.verbatimTwoSymbols(2, 'A', 0)
				w.put(0, 1)
				w.put(1, 1) // 2 bytes, 1 left in the block
			},
			size: 3, wantErr: "runs past the end",
		},
		{
			name: "uncompressed block with E8 translation",
			stream: func(w *lzxBits) {
				w.put(1, 1)      // E8 translation on,
				w.put(0, 16)     // translation size high 16 bits
				w.put(10000, 16) // and low 16 bits: 10000
				w.put(3, 3)      // uncompressed block
				w.put(25, 24)    // of 25 bytes
				w.align()        // 3+24+33 = 60 bits: pad 4 bits
				w.out = append(w.out, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0)
				// E8 at 0 with absolute 100: becomes 100-0.
				// E8 at 5 with absolute -3 (>= -5): becomes -3+10000.
				// E8 at 10 with absolute 20000 (>= size): unchanged.
				// E8 at 15 is within the last 10 bytes: unchanged.
				w.out = append(w.out, 0xE8, 100, 0, 0, 0, 0xE8, 0xFD, 0xFF, 0xFF, 0xFF,
					0xE8, 0x20, 0x4E, 0, 0, 0xE8, 1, 0, 0, 0, 'x', 'y', 'z', 'w', 'v', 0)
			},
			size: 25,
			want: "\xE8\x64\x00\x00\x00\xE8\x0D\x27\x00\x00\xE8\x20\x4E\x00\x00\xE8\x01\x00\x00\x00xyzwv",
		},
		{
			name: "uncompressed block already aligned skips 16 bits",
			stream: func(w *lzxBits) {
				// 1 + 27 + 985 tree bits + 16 literals + 27 = 1056
				// bits: the uncompressed header ends aligned.
				w.put(0, 1)
				w.verbatimTwoSymbols(16, 'A', 0)
				w.put(0, 16)
				w.put(3, 3)
				w.put(3, 24)
				if w.n != 0 {
					panic("test stream not aligned")
				}
				w.put(0xFFFF, 16) // padding
				w.out = append(w.out, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 'b', 'c')
			},
			size: 19, want: "AAAAAAAAAAAAAAAAabc",
		},
		{
			name: "uncompressed block shorter than declared",
			stream: func(w *lzxBits) {
				w.put(0, 1)
				w.put(3, 3)
				w.put(100, 24)
				w.align()
				w.out = append(w.out, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a')
			},
			size: 100, wantErr: "runs past the end of its data block",
		},
		{
			name: "uncompressed block with a zero repeated offset",
			stream: func(w *lzxBits) {
				w.put(0, 1)
				w.put(3, 3)
				w.put(2, 24)
				w.align()
				w.out = append(w.out, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 'b')
				w.verbatimTwoSymbols(2, 'A', 0) // R0 = 0 is then used
				w.put(1, 1)
			},
			size: 4, wantErr: "offset 0",
		},
		{
			name: "invalid block type",
			stream: func(w *lzxBits) {
				w.put(0, 1)
				w.put(5, 3)
				w.put(1, 24)
			},
			size: 1, wantErr: "block type 5",
		},
		{
			name: "over-subscribed pretree",
			stream: func(w *lzxBits) {
				w.put(0, 1)
				w.put(1, 3)
				w.put(1, 24)
				for range lzxPretreeSyms {
					w.put(1, 4) // 20 codes of one bit
				}
			},
			size: 1, wantErr: "over-subscribed",
		},
		{
			name: "incomplete main tree",
			stream: func(w *lzxBits) {
				w.put(0, 1)
				w.put(1, 3)
				w.put(1, 24)
				w.lengths(map[int]bool{'A': true}, 256) // a single 1-bit code
				w.lengths(nil, 30*8)
			},
			size: 1, wantErr: "incomplete",
		},
		{
			name: "frame needs more input than the block",
			stream: func(w *lzxBits) {
				w.put(0, 1)
				w.verbatimTwoSymbols(1000, 'A', 0)
				w.put(0, 1)
			},
			size: 1000, wantErr: "more input",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w lzxBits
			tt.stream(&w)
			w.align()
			out, err := decodeLZXSizes(15, []int{tt.size}, w.out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(out[0]); got != tt.want {
				t.Errorf("output = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestLZXAlignedBlock decodes an aligned offset block whose matches use
// aligned offset bits alone (slot 8, 3 extra bits) and verbatim plus
// aligned bits (slot 10, 4 extra bits).
func TestLZXAlignedBlock(t *testing.T) {
	var w lzxBits
	w.put(0, 1)
	w.put(lzxBlockAligned, 3)
	w.put(44, 24) // 14 + 2 + 24 + 2 + 2 bytes
	for range 8 {
		w.put(3, 3) // aligned tree: 8 codes of 3 bits, code i = symbol i
	}
	// Main tree: literals 'B', 'C' and the length-2 match symbols of
	// slots 8 and 10, with 2-bit codes in symbol order.
	w.pretree2()
	for i := range 256 {
		w.put(b2(i == 'B' || i == 'C'), 1)
	}
	w.pretree2()
	for i := range 30 * 8 {
		w.put(b2(i == 8*8 || i == 10*8), 1)
	}
	w.lengths(nil, lzxLengthSyms)
	text := "BCCBBCBCCBBCCBCBBCBCCBCBBBCCBCBCBBCBBCCB" // 40 bytes
	for i := range 14 {
		w.put(uint32(text[i]-'B'), 2)
	}
	w.put(2, 2) // slot 8 match: offset 14 + aligned 0 = 14
	w.put(0, 3)
	for i := 16; i < 40; i++ {
		w.put(uint32(text[i]-'B'), 2)
	}
	// slot 10: offset 30 + (1 verbatim bit)<<3 + aligned: 30+0+5 = 35
	w.put(3, 2)
	w.put(0, 1)
	w.put(5, 3)
	w.put(0, 2) // 'B'
	w.put(0, 2) // 'B'
	w.align()
	out, err := decodeLZXSizes(15, []int{44}, w.out)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte(text[:14] + text[0:2] + text[16:40])
	want = append(want, want[40-35], want[40-35+1], 'B', 'B')
	if !bytes.Equal(out[0], want) {
		t.Errorf("output = %q, want %q", out[0], want)
	}
}

func b2(v bool) uint32 {
	if v {
		return 1
	}
	return 0
}

// pretree2 writes a pretree where symbols 0 ('0') and 15 ('1') have 1-bit
// codes: length 0 stays 0, and 0 becomes (0-15) mod 17 = 2.
func (w *lzxBits) pretree2() {
	for i := range lzxPretreeSyms {
		w.put(b2(i == 0 || i == 15), 4)
	}
}

// TestLZXFrameSequence checks state that carries across frames: a match
// in frame 2 reaches into frame 1, and the bit stream realigns to 16
// bits at each frame end.
func TestLZXFrameSequence(t *testing.T) {
	var w1, w2 lzxBits
	w1.put(0, 1)
	w1.verbatimTwoSymbols(4, 'Q', 0)
	w1.put(0, 1) // frame 1: 'Q' (then the 1-bit frame ends)
	w1.align()
	w2.put(1, 1) // frame 2: a match of 2 at offset 1, then 'Q'
	w2.put(0, 1)
	w2.align()
	out, err := decodeLZXSizes(15, []int{1, 3}, w1.out, w2.out)
	if err != nil {
		t.Fatal(err)
	}
	if string(out[0]) != "Q" || string(out[1]) != "QQQ" {
		t.Errorf("frames = %q %q", out[0], out[1])
	}
}

// TestLZXCorruptFixture corrupts the data of lzx.cab at many places and
// requires a clean result: either an error or output, never a panic or
// output of the wrong size.
func TestLZXCorruptFixture(t *testing.T) {
	b := readFixture(t, lzxFixture)
	r := openBytes(t, b)
	fo := r.Folders[0]
	start, end := int(fo.DataOffset), int(fo.DataOffset+fo.CompressedSize)
	errs := 0
	for i := 0; i < 300; i++ {
		c := bytes.Clone(b)
		pos := start + (i*7919)%(end-start)
		c[pos] ^= byte(1 + i%255)
		// Clear every checksum so the decoder sees the damage.
		for off := start; off < end; {
			binary.LittleEndian.PutUint32(c[off:], 0)
			off += dataHeaderSize + int(binary.LittleEndian.Uint16(c[off+4:]))
		}
		cr, err := NewReader(bytes.NewReader(c), int64(len(c)))
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrLimit) {
				t.Fatalf("corruption at %#x: NewReader error %v wraps no sentinel", pos, err)
			}
			errs++
			continue
		}
		werr := cr.Walk(func(f *File, rd io.Reader) error {
			n, err := io.Copy(io.Discard, rd)
			if err == nil && n != f.Size {
				t.Errorf("corruption at %#x: %d bytes, want %d", pos, n, f.Size)
			}
			return err
		})
		if werr != nil {
			if !errors.Is(werr, ErrFormat) {
				t.Fatalf("corruption at %#x: error %v does not wrap ErrFormat", pos, werr)
			}
			errs++
		}
	}
	t.Logf("%d of 300 corruptions detected", errs)
	if errs == 0 {
		t.Errorf("no corruption was detected")
	}
}

// TestLZXWindowWrap fills a 2^15 window with an uncompressed frame, then
// decodes a second frame whose matches reach back across the wrap, with
// the repeated offset set by the uncompressed block.
func TestLZXWindowWrap(t *testing.T) {
	first := semiRandom(5, lzxFrameSize)
	for _, tt := range []struct {
		name string
		r0   uint32
		ops  string // 'A': literal, 'M': 2-byte match at offset r0
	}{
		{"far back across the wrap", 32000, "MMAMAAMMMMAMAMMMAAAMMMMMMMMMAMAMAMMMMMMMM"},
		{"source crosses the window end", 1, "MMMAMM"},
		{"offset of the whole window", 32768, "MAMMAAMMM"},
		{"short offsets", 3, "AAMAMMMAAAMM"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w1 lzxBits
			w1.put(0, 1)
			w1.put(lzxBlockUncompressed, 3)
			w1.put(lzxFrameSize, 24)
			w1.align()
			w1.out = binary.LittleEndian.AppendUint32(w1.out, tt.r0)
			w1.out = binary.LittleEndian.AppendUint32(w1.out, 1)
			w1.out = binary.LittleEndian.AppendUint32(w1.out, 1)
			w1.out = append(w1.out, first...)
			// The reference model: the whole output so far.
			hist := bytes.Clone(first)
			var w2 lzxBits
			size := 0
			for _, op := range tt.ops {
				if op == 'M' {
					size += 2
				} else {
					size++
				}
			}
			w2.verbatimTwoSymbols(size, 'A', 0)
			for _, op := range tt.ops {
				if op == 'A' {
					w2.put(0, 1)
					hist = append(hist, 'A')
					continue
				}
				w2.put(1, 1)
				for range 2 {
					hist = append(hist, hist[len(hist)-int(tt.r0)])
				}
			}
			w2.align()
			out, err := decodeLZXSizes(15, []int{lzxFrameSize, size}, w1.out, w2.out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out[0], first) {
				t.Fatalf("first frame differs")
			}
			if want := hist[lzxFrameSize:]; !bytes.Equal(out[1], want) {
				t.Errorf("second frame = %q, want %q", out[1], want)
			}
		})
	}
}

// TestLZXE8StopsAfter1GiB presets the stream offset to just below and at
// 1 GiB: translation applies to frames that start below it only.
func TestLZXE8StopsAfter1GiB(t *testing.T) {
	var w lzxBits
	w.put(1, 1)
	w.put(0, 16)
	w.put(10000, 16)
	w.put(lzxBlockUncompressed, 3)
	w.put(16, 24)
	w.align()
	w.out = append(w.out, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0)
	w.out = append(w.out, 0xE8, 0xF0, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	for _, tt := range []struct {
		start int64
		want  []byte
	}{
		// abs -16 >= -(2^30-32768) becomes -16+10000 = 0x2700.
		{lzxE8Limit - lzxFrameSize, []byte{0xE8, 0x00, 0x27, 0, 0}},
		{lzxE8Limit, []byte{0xE8, 0xF0, 0xFF, 0xFF, 0xFF}},
	} {
		var d lzxDecoder
		d.reset(CompressLZX|15<<8, 1<<30)
		d.total = tt.start
		out, err := d.decode(w.out, 16)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out[:5], tt.want) {
			t.Errorf("frame at %#x: % x, want % x", tt.start, out[:5], tt.want)
		}
	}
}
