package cab

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// LZX constants, named after the format description in [MS-PATCH].
const (
	lzxNumChars       = 256
	lzxMinMatch       = 2
	lzxNumPrimaryLens = 7   // match lengths coded in the main symbol
	lzxLengthSyms     = 249 // symbols of the length tree
	lzxPretreeSyms    = 20
	lzxAlignedSyms    = 8
	lzxMaxSlots       = 50
	lzxMainMaxSyms    = lzxNumChars + lzxMaxSlots*8
	lzxFrameSize      = 32768
	lzxE8Limit        = 1 << 30 // E8 translation stops after 32768 frames

	lzxBlockVerbatim     = 1
	lzxBlockAligned      = 2
	lzxBlockUncompressed = 3

	lzxMainTableBits    = 12
	lzxLengthTableBits  = 12
	lzxAlignedTableBits = 7 // aligned codes are at most 7 bits long
	lzxPretreeTableBits = 8
)

// lzxSlots is the number of position slots for each window size.
var lzxSlots = [22]int{15: 30, 16: 32, 17: 34, 18: 36, 19: 38, 20: 42, 21: 50}

// lzxExtra and lzxBase give, per position slot, the number of extra offset
// bits and the smallest offset (plus 2) of the slot.
var (
	lzxExtra [lzxMaxSlots]uint8
	lzxBase  [lzxMaxSlots]uint32
)

func init() {
	var base uint32
	for i := range lzxExtra {
		extra := 0
		if i >= 4 {
			extra = min(i/2-1, 17)
		}
		lzxExtra[i] = uint8(extra)
		lzxBase[i] = base
		base += 1 << extra
	}
}

var errBadSymbol = errors.New("LZX: invalid Huffman code in input")

// bitReader reads the LZX bit stream: 16-bit little-endian words consumed
// from their most significant bit. bits holds the next unread bit in its
// top position and n valid bits. Reading past the end of in yields zero
// bits; the caller detects the overrun from pos.
type bitReader struct {
	in   []byte
	pos  int // next byte of in to load; may pass len(in)
	bits uint64
	n    uint
}

// refill loads words until more than 32 bits are buffered.
func (b *bitReader) refill() {
	for b.n <= 32 {
		if b.pos+4 <= len(b.in) {
			w := uint64(b.in[b.pos+1])<<24 | uint64(b.in[b.pos])<<16 | uint64(b.in[b.pos+3])<<8 | uint64(b.in[b.pos+2])
			b.bits |= w << (32 - b.n)
			b.pos += 4
			b.n += 32
			return
		}
		var w uint64
		if b.pos >= 0 && b.pos < len(b.in) {
			w = uint64(b.in[b.pos])
		}
		if b.pos >= 0 && b.pos+1 < len(b.in) {
			w |= uint64(b.in[b.pos+1]) << 8
		}
		b.bits |= w << (48 - b.n)
		b.pos += 2
		b.n += 16
	}
}

// read returns the next k bits, k <= 32.
func (b *bitReader) read(k uint) uint32 {
	if b.n < k {
		b.refill()
	}
	v := uint32(b.bits >> (64 - k)) // 0 for k == 0: Go shifts by 64 give 0
	b.bits <<= k
	b.n -= k
	return v
}

// sym decodes one symbol of h.
func (b *bitReader) sym(h *huffman) (int, error) {
	if b.n < maxCodeLen {
		b.refill()
	}
	e := h.table[b.bits>>(64-h.tableBits)]
	sym, l := int(e>>5), uint(e&31)
	if l == 0 {
		if sym, l = h.slow(b.bits); l == 0 {
			return 0, errBadSymbol
		}
	}
	b.bits <<= l
	b.n -= l
	return sym, nil
}

// consumed reports how many bits have been taken from in.
func (b *bitReader) consumed() int64 { return int64(b.pos)*8 - int64(b.n) }

// lzxDecoder decodes an LZX folder one data block at a time. In a cabinet
// each CFDATA block holds exactly one frame: 32768 bytes of output (less
// for the last), whose compressed bits end on a 16-bit boundary. All other
// state (window, code lengths, repeated offsets R0-R2, the current block
// and its remaining size, the E8 translation size read once at the start)
// carries from frame to frame; it is reset only at the start of a folder.
// Matches may neither cross the end of their block or frame nor reach
// before the first byte of the folder.
type lzxDecoder struct {
	window   []byte
	numSlots int
	pos      int  // window position of the next output byte
	wrapped  bool // the window has been filled once
	total    int64
	r0       uint32
	r1       uint32
	r2       uint32

	headerRead bool
	e8Size     int32 // E8 translation size; 0 when translation is off
	e8buf      []byte

	blockType      int
	blockRemaining int
	blockOdd       bool // uncompressed block of odd length: a pad byte follows
	pendingPad     bool // that pad byte opens the next data block

	br bitReader

	mainLens    [lzxMainMaxSyms]uint8
	lengthLens  [lzxLengthSyms]uint8
	alignedLens [lzxAlignedSyms]uint8
	pretreeLens [lzxPretreeSyms]uint8
	main        huffman
	length      huffman
	aligned     huffman
	pretree     huffman

	err error // set by reset for an invalid window size
}

// reset starts a folder of size bytes. The window is 2^N bytes as the
// folder's compression says, or less when the folder is smaller: a window
// that the output never fills needs no more room.
func (d *lzxDecoder) reset(c Compression, size int64) {
	if d.main.table == nil {
		d.main = newHuffman(lzxMainTableBits, lzxMainMaxSyms)
		d.length = newHuffman(lzxLengthTableBits, lzxLengthSyms)
		d.aligned = newHuffman(lzxAlignedTableBits, lzxAlignedSyms)
		d.pretree = newHuffman(lzxPretreeTableBits, lzxPretreeSyms)
	}
	d.err = nil
	wbits := c.LZXWindowBits()
	if wbits < 15 || wbits > 21 {
		d.err = fmt.Errorf("LZX window of 2^%d bytes", wbits)
		return
	}
	wsize := 1 << wbits
	if need := (size + lzxFrameSize - 1) &^ (lzxFrameSize - 1); need < int64(wsize) {
		wsize = max(int(need), lzxFrameSize)
	}
	if cap(d.window) < wsize {
		d.window = make([]byte, wsize)
	} else {
		d.window = d.window[:wsize]
	}
	d.numSlots = lzxSlots[wbits]
	d.pos, d.wrapped, d.total = 0, false, 0
	d.r0, d.r1, d.r2 = 1, 1, 1
	d.headerRead, d.e8Size = false, 0
	d.blockType, d.blockRemaining, d.blockOdd, d.pendingPad = 0, 0, false, false
	clear(d.mainLens[:])
	clear(d.lengthLens[:])
}

// decode decodes one frame of n bytes from the data block in.
func (d *lzxDecoder) decode(in []byte, n int) ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	if n > lzxFrameSize {
		return nil, fmt.Errorf("LZX frame of %d bytes exceeds %d", n, lzxFrameSize)
	}
	if n == 0 {
		return nil, nil
	}
	if d.pos == len(d.window) {
		d.pos, d.wrapped = 0, true
	}
	start, end := d.pos, d.pos+n
	if end > len(d.window) {
		return nil, fmt.Errorf("LZX frame of %d bytes crosses the end of the window", n)
	}
	d.br = bitReader{in: in}
	if d.pendingPad {
		d.br.pos = 1
		d.pendingPad = false
	}
	if !d.headerRead {
		if d.br.read(1) == 1 {
			hi := d.br.read(16)
			lo := d.br.read(16)
			d.e8Size = int32(hi<<16 | lo)
		}
		d.headerRead = true
	}
	for d.pos < end {
		if d.blockRemaining == 0 {
			if err := d.readBlockHeader(); err != nil {
				return nil, err
			}
			continue
		}
		run := min(d.blockRemaining, end-d.pos)
		if d.blockType == lzxBlockUncompressed {
			b := &d.br
			if b.pos < 0 || b.pos > len(b.in) || run > len(b.in)-b.pos {
				return nil, errors.New("LZX uncompressed block runs past the end of its data block")
			}
			copy(d.window[d.pos:d.pos+run], b.in[b.pos:])
			b.pos += run
			d.pos += run
			d.blockRemaining -= run
			if d.blockRemaining == 0 && d.blockOdd {
				if b.pos < len(b.in) {
					b.pos++
				} else {
					d.pendingPad = true
				}
			}
			continue
		}
		if err := d.decodeCompressed(d.pos + run); err != nil {
			return nil, err
		}
		d.blockRemaining -= run
	}
	// Frames end on a 16-bit boundary of the input.
	b := &d.br
	r := b.n % 16
	b.bits <<= r
	b.n -= r
	if b.consumed() > int64(len(in))*8 {
		return nil, errors.New("LZX frame needs more input than its data block holds")
	}
	out := d.window[start:end]
	frameStart := d.total
	d.total += int64(n)
	if d.e8Size != 0 && n > 10 && frameStart < lzxE8Limit && bytes.IndexByte(out[:n-10], 0xE8) >= 0 {
		out = d.translateE8(out, frameStart)
	}
	return out, nil
}

// readBlockHeader reads a block type, size and the trees or stored
// repeated offsets that follow.
func (d *lzxDecoder) readBlockHeader() error {
	b := &d.br
	d.blockType = int(b.read(3))
	size := int(b.read(24))
	switch d.blockType {
	case lzxBlockAligned:
		for i := range d.alignedLens {
			d.alignedLens[i] = uint8(b.read(3))
		}
		if err := d.aligned.build(d.alignedLens[:]); err != nil {
			return fmt.Errorf("LZX aligned offset tree: %w", err)
		}
		fallthrough
	case lzxBlockVerbatim:
		if err := d.readLengths(d.mainLens[:lzxNumChars]); err != nil {
			return fmt.Errorf("LZX main tree: %w", err)
		}
		mainLens := d.mainLens[:lzxNumChars+d.numSlots*8]
		if err := d.readLengths(mainLens[lzxNumChars:]); err != nil {
			return fmt.Errorf("LZX main tree: %w", err)
		}
		if err := d.main.build(mainLens); err != nil {
			return fmt.Errorf("LZX main tree: %w", err)
		}
		if err := d.readLengths(d.lengthLens[:]); err != nil {
			return fmt.Errorf("LZX length tree: %w", err)
		}
		if err := d.length.build(d.lengthLens[:]); err != nil {
			return fmt.Errorf("LZX length tree: %w", err)
		}
	case lzxBlockUncompressed:
		// Skip 1 to 16 bits to reach a 16-bit boundary, then read
		// R0, R1, R2 as bytes.
		r := b.n % 16
		b.bits <<= r
		b.n -= r
		if r == 0 {
			if b.n >= 16 {
				b.bits <<= 16
				b.n -= 16
			} else {
				b.pos += 2
			}
		}
		p := b.pos - int(b.n/8)
		b.pos, b.n, b.bits = p, 0, 0
		if p < 0 || p > len(b.in) || len(b.in)-p < 12 {
			return errors.New("LZX uncompressed block header runs past the end of its data block")
		}
		le := binary.LittleEndian
		d.r0, d.r1, d.r2 = le.Uint32(b.in[p:]), le.Uint32(b.in[p+4:]), le.Uint32(b.in[p+8:])
		b.pos += 12
		d.blockOdd = size&1 != 0
	default:
		return fmt.Errorf("LZX block type %d is invalid", d.blockType)
	}
	d.blockRemaining = size
	return nil
}

// readLengths reads pretree-coded code lengths into lens, each coded as a
// change from the length it had in the previous block.
func (d *lzxDecoder) readLengths(lens []uint8) error {
	b := &d.br
	for i := range d.pretreeLens {
		d.pretreeLens[i] = uint8(b.read(4))
	}
	if err := d.pretree.build(d.pretreeLens[:]); err != nil {
		return fmt.Errorf("pretree: %w", err)
	}
	for x := 0; x < len(lens); {
		z, err := b.sym(&d.pretree)
		if err != nil {
			return err
		}
		switch z {
		case 17, 18: // runs of zeros
			var run int
			if z == 17 {
				run = 4 + int(b.read(4))
			} else {
				run = 20 + int(b.read(5))
			}
			if run > len(lens)-x {
				return errors.New("run of code lengths past the end of the tree")
			}
			clear(lens[x : x+run])
			x += run
		case 19: // run of one length
			run := 4 + int(b.read(1))
			if run > len(lens)-x {
				return errors.New("run of code lengths past the end of the tree")
			}
			z, err = b.sym(&d.pretree)
			if err != nil {
				return err
			}
			if z > 16 {
				return fmt.Errorf("pretree symbol %d in a run", z)
			}
			v := uint8((int(lens[x]) + 17 - z) % 17)
			for i := range run {
				lens[x+i] = v
			}
			x += run
		default:
			lens[x] = uint8((int(lens[x]) + 17 - z) % 17)
			x++
		}
	}
	return nil
}

// decodeCompressed decodes symbols of a verbatim or aligned offset block
// until the window position reaches end.
func (d *lzxDecoder) decodeCompressed(end int) error {
	br := &d.br
	in := br.in
	bits, n, ip := br.bits, br.n, br.pos
	wsize := len(d.window)
	win := d.window[:end] // output stops at end
	pos := d.pos
	r0, r1, r2 := d.r0, d.r1, d.r2
	// Fixed-size views let the compiler drop the bounds checks.
	mainT := (*[1 << lzxMainTableBits]uint16)(d.main.table)
	lenT := (*[1 << lzxLengthTableBits]uint16)(d.length.table)
	alT := (*[1 << lzxAlignedTableBits]uint16)(d.aligned.table)
	isAligned := d.blockType == lzxBlockAligned
	wrapped := d.wrapped
	le := binary.LittleEndian
	var err error
loop:
	for pos < len(win) {
		if n <= 32 {
			if ip >= 0 && ip+4 <= len(in) {
				bits |= (uint64(in[ip+1])<<24 | uint64(in[ip])<<16 | uint64(in[ip+3])<<8 | uint64(in[ip+2])) << (32 - n)
				ip += 4
				n += 32
			} else {
				br.bits, br.n, br.pos = bits, n, ip
				br.refill()
				bits, n, ip = br.bits, br.n, br.pos
			}
		}
		e := mainT[bits>>(64-lzxMainTableBits)]
		sym, l := int(e>>5), uint(e&31)
		if l == 0 {
			if sym, l = d.main.slow(bits); l == 0 {
				err = errBadSymbol
				break loop
			}
		}
		bits <<= l
		n -= l
		if sym < lzxNumChars {
			win[pos] = byte(sym)
			pos++
			// With at least 17 bits left, a second short literal
			// needs no refill.
			e = mainT[bits>>(64-lzxMainTableBits)]
			if l = uint(e & 31); l != 0 && l <= n && e>>5 < lzxNumChars && pos < len(win) {
				win[pos] = byte(e >> 5)
				pos++
				bits <<= l
				n -= l
			}
			continue
		}
		sym -= lzxNumChars
		length := sym & 7
		if length == lzxNumPrimaryLens {
			e := lenT[bits>>(64-lzxLengthTableBits)]
			ls, l := int(e>>5), uint(e&31)
			if l == 0 {
				if ls, l = d.length.slow(bits); l == 0 {
					err = errBadSymbol
					break loop
				}
			}
			bits <<= l
			n -= l
			length += ls
		}
		length += lzxMinMatch
		var off uint32
		switch slot := sym >> 3; slot {
		case 0:
			off = r0
		case 1:
			off = r1
			r1, r0 = r0, off
		case 2:
			off = r2
			r2, r0 = r0, off
		default:
			if n <= 32 {
				br.bits, br.n, br.pos = bits, n, ip
				br.refill()
				bits, n, ip = br.bits, br.n, br.pos
			}
			extra := uint(lzxExtra[slot])
			off = lzxBase[slot] - 2
			if isAligned && extra >= 3 {
				if extra > 3 {
					v := extra - 3
					off += uint32(bits>>(64-v)) << 3
					bits <<= v
					n -= v
				}
				e := alT[bits>>(64-lzxAlignedTableBits)]
				if e == 0 {
					err = errBadSymbol
					break loop
				}
				off += uint32(e >> 5)
				bits <<= e & 31
				n -= uint(e & 31)
			} else if extra > 0 {
				off += uint32(bits >> (64 - extra))
				bits <<= extra
				n -= extra
			}
			r2, r1, r0 = r1, r0, off
		}
		if length > len(win)-pos {
			err = fmt.Errorf("LZX match of %d bytes at window position %d runs past the end of its block or frame", length, pos)
			break
		}
		src := pos - int(off)
		if off == 0 || int64(off) > int64(wsize) || (src < 0 && !wrapped) {
			err = fmt.Errorf("LZX match offset %d at window position %d points before the start of the data", off, pos)
			break
		}
		if src < 0 {
			src += wsize
		}
		switch {
		case int(off) >= length && length <= 16 && src+16 <= wsize && pos+16 <= wsize:
			// Short, not overlapping: move two words. Until the window
			// wraps, the bytes after the match are not yet written and
			// may be overwritten; after that they may still be
			// referenced, so they are masked back in.
			w := d.window
			a := le.Uint64(w[src:])
			if !wrapped {
				b := le.Uint64(w[src+8:])
				le.PutUint64(w[pos:], a)
				le.PutUint64(w[pos+8:], b)
			} else if length <= 8 {
				m := uint64(1)<<(8*length) - 1
				le.PutUint64(w[pos:], a&m|le.Uint64(w[pos:])&^m)
			} else {
				b := le.Uint64(w[src+8:])
				le.PutUint64(w[pos:], a)
				m := uint64(1)<<(8*(length-8)) - 1
				le.PutUint64(w[pos+8:], b&m|le.Uint64(w[pos+8:])&^m)
			}
		case src+length > wsize:
			// The source wraps around the end of the window.
			dst := win[pos : pos+length]
			for i := range dst {
				s := src + i
				if s >= wsize {
					s -= wsize
				}
				dst[i] = d.window[s]
			}
		case src >= pos || int(off) >= length:
			// No overlap, or a source ahead of the destination:
			// copy's memmove gives the same result as a forward copy.
			copy(win[pos:pos+length], d.window[src:src+length])
		default:
			// Overlapping: the match repeats its last off bytes.
			dst := win[pos : pos+length]
			s := d.window[src : src+length]
			for i := range dst {
				dst[i] = s[i]
			}
		}
		pos += length
	}
	br.bits, br.n, br.pos = bits, n, ip
	d.pos = pos
	d.r0, d.r1, d.r2 = r0, r1, r2
	return err
}

// translateE8 undoes the encoder's E8 call translation on a copy of a frame
// that starts at stream offset start: the 32-bit operand after an 0xE8 byte
// in the first len-10 bytes, an absolute target in [-start-i, e8Size),
// becomes relative to the instruction again.
func (d *lzxDecoder) translateE8(frame []byte, start int64) []byte {
	if d.e8buf == nil {
		d.e8buf = make([]byte, lzxFrameSize)
	}
	buf := d.e8buf[:len(frame)]
	copy(buf, frame)
	le := binary.LittleEndian
	limit := len(buf) - 10
	size := d.e8Size
	for i := 0; i < limit; {
		j := bytes.IndexByte(buf[i:limit], 0xE8)
		if j < 0 {
			break
		}
		i += j
		cur := int32(start) + int32(i)
		abs := int32(le.Uint32(buf[i+1:]))
		if abs >= -cur && abs < size {
			rel := abs + size
			if abs >= 0 {
				rel = abs - cur
			}
			le.PutUint32(buf[i+1:], uint32(rel))
		}
		i += 5
	}
	return buf
}
