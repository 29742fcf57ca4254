package cab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// mszipHistory is the deflate window: each MSZIP block may refer to the
// last 32 KiB of output of the blocks before it.
const mszipHistory = 32768

// Table sizes of the inflate decoder: codes up to this many bits are
// decoded with one lookup.
const (
	inflateLitBits  = 10
	inflateDistBits = 8
)

var (
	inflateLenBase   = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	inflateLenExtra  = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	inflateDistBase  = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	inflateDistExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// Order in which code length code lengths are stored.
	inflateCLOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

var (
	errInflateSymbol = errors.New("deflate: invalid Huffman code")
	errInflateLong   = errors.New("MSZIP block inflates past its declared size")
)

// lsbHuffman decodes a canonical deflate Huffman code from a bit stream
// read least significant bit first, in which each code is stored from its
// most significant bit. Codes of up to tableBits bits are resolved with one
// lookup; an entry holds symbol<<4 | length, 0 for a longer code or an
// unused pattern.
type lsbHuffman struct {
	table     []uint16
	tableBits uint
	count     [16]uint16
	first     [16]uint32
	offset    [16]uint16
	syms      [288]uint16
}

// build makes the tables for lens. A complete code is required, except
// that a code of one symbol of length 1 is accepted as in zlib, and an
// empty code when allowEmpty.
func (h *lsbHuffman) build(lens []uint8, allowEmpty bool) error {
	clear(h.count[:])
	for _, l := range lens {
		h.count[l&15]++
	}
	h.count[0] = 0
	left := 1
	for l := 1; l < 16; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return errOversubscribed
		}
	}
	clear(h.table)
	switch {
	case left == 1<<15:
		if !allowEmpty {
			return errors.New("empty Huffman code")
		}
		return nil
	case left == 1<<14 && h.count[1] == 1:
		// A single code of one bit: the other pattern is invalid.
	case left != 0:
		return errIncomplete
	}
	var code uint32
	var off uint16
	var next [16]uint16
	for l := 1; l < 16; l++ {
		h.first[l] = code
		h.offset[l] = off
		next[l] = off
		off += h.count[l]
		code = (code + uint32(h.count[l])) << 1
	}
	for sym, l := range lens {
		if l != 0 {
			h.syms[next[l]] = uint16(sym)
			next[l]++
		}
	}
	size := uint32(1) << h.tableBits
	for l := uint(1); l <= h.tableBits && l < 16; l++ {
		for i := uint32(0); i < uint32(h.count[l]); i++ {
			sym := h.syms[uint32(h.offset[l])+i]
			rev := uint32(bits.Reverse16(uint16(h.first[l]+i))) >> (16 - l)
			entry := sym<<4 | uint16(l)
			for k := rev; k < size; k += 1 << l {
				h.table[k] = entry
			}
		}
	}
	return nil
}

// slow decodes a code longer than the table from the low bits of b,
// returning a length of 0 when no code matches.
func (h *lsbHuffman) slow(b uint64) (sym int, length uint) {
	var code uint32
	for l := uint(1); l < 16; l++ {
		code = code<<1 | uint32(b>>(l-1))&1
		if c := code - h.first[l]; c < uint32(h.count[l]) {
			return int(h.syms[uint32(h.offset[l])+c]), l
		}
	}
	return 0, 0
}

// mszipDecoder decodes MSZIP blocks: the signature "CK" followed by a
// deflate stream (RFC 1951) ending with a final block, whose matches may
// reach into the previous 32 KiB of output.
type mszipDecoder struct {
	buf  []byte // history followed by the block being decoded
	hist int    // bytes of history at the start of buf

	in   []byte
	pos  int    // next byte of in to load; may pass len(in)
	bits uint64 // unread bits, next bit lowest
	n    uint   // valid bits in bits

	lit, dist  lsbHuffman
	fixedLit   lsbHuffman
	fixedDist  lsbHuffman
	cl         lsbHuffman
	lens       [286 + 30]uint8
	fixedBuilt bool
}

func (d *mszipDecoder) reset(Compression, int64) {
	if d.buf == nil {
		d.buf = make([]byte, mszipHistory+maxUncompBlock)
		d.lit = lsbHuffman{table: make([]uint16, 1<<inflateLitBits), tableBits: inflateLitBits}
		d.dist = lsbHuffman{table: make([]uint16, 1<<inflateDistBits), tableBits: inflateDistBits}
		d.cl = lsbHuffman{table: make([]uint16, 1<<7), tableBits: 7}
	}
	d.hist = 0
}

// refill loads bytes until at least 56 bits are buffered (bytes past the
// end of the input read as zero).
func (d *mszipDecoder) refill() {
	if d.pos >= 0 && d.pos+8 <= len(d.in) {
		d.bits |= binary.LittleEndian.Uint64(d.in[d.pos:]) << d.n
		d.pos += int(63-d.n) >> 3
		d.n |= 56
		return
	}
	for d.n <= 56 {
		if d.pos >= 0 && d.pos < len(d.in) {
			d.bits |= uint64(d.in[d.pos]) << d.n
		}
		d.pos++
		d.n += 8
	}
}

// getBits returns the next k bits, k <= 32.
func (d *mszipDecoder) getBits(k uint) uint32 {
	if d.n < k {
		d.refill()
	}
	v := uint32(d.bits & (1<<k - 1))
	d.bits >>= k
	d.n -= k
	return v
}

func (d *mszipDecoder) sym(h *lsbHuffman) (int, error) {
	if d.n < 15 {
		d.refill()
	}
	e := h.table[d.bits&(1<<h.tableBits-1)]
	sym, l := int(e>>4), uint(e&15)
	if l == 0 {
		if sym, l = h.slow(d.bits); l == 0 {
			return 0, errInflateSymbol
		}
	}
	d.bits >>= l
	d.n -= l
	return sym, nil
}

func (d *mszipDecoder) decode(in []byte, n int) ([]byte, error) {
	if len(in) < 2 || in[0] != 'C' || in[1] != 'K' {
		return nil, errors.New("MSZIP block lacks its CK signature")
	}
	if d.buf == nil {
		d.reset(CompressMSZIP, 0)
	}
	d.in, d.pos, d.bits, d.n = in[2:], 0, 0, 0
	start := d.hist
	end := start + n
	op, err := d.inflate(start, end)
	if err != nil {
		return nil, err
	}
	if d.pos*8-int(d.n) > len(d.in)*8 {
		return nil, errors.New("MSZIP block ends in the middle of its deflate stream")
	}
	if op != end {
		return nil, fmt.Errorf("MSZIP block inflates to %d bytes, not its declared %d", op-start, n)
	}
	// Keep the last 32 KiB of output as the next block's dictionary.
	if end > mszipHistory {
		copy(d.buf, d.buf[end-mszipHistory:end])
		d.hist = mszipHistory
	} else {
		d.hist = end
	}
	return d.buf[d.hist-n : d.hist], nil
}

// inflate decodes deflate blocks into d.buf from op up to at most end,
// until the final block, and returns the new output position.
func (d *mszipDecoder) inflate(op, end int) (int, error) {
	for {
		final := d.getBits(1)
		var err error
		switch d.getBits(2) {
		case 0:
			op, err = d.stored(op, end)
		case 1:
			if !d.fixedBuilt {
				d.buildFixed()
			}
			op, err = d.huffmanBlock(op, end, &d.fixedLit, &d.fixedDist)
		case 2:
			if err = d.readDynamic(); err == nil {
				op, err = d.huffmanBlock(op, end, &d.lit, &d.dist)
			}
		default:
			err = errors.New("deflate: reserved block type")
		}
		if err != nil {
			return op, err
		}
		if d.pos*8-int(d.n) > len(d.in)*8 {
			return op, errors.New("MSZIP block ends in the middle of its deflate stream")
		}
		if final == 1 {
			return op, nil
		}
	}
}

func (d *mszipDecoder) stored(op, end int) (int, error) {
	r := d.n % 8
	d.bits >>= r
	d.n -= r
	p := d.pos - int(d.n/8)
	d.pos, d.bits, d.n = p, 0, 0
	if p < 0 || p > len(d.in) || len(d.in)-p < 4 {
		return op, errors.New("deflate: stored block header past the end of the data")
	}
	size := int(binary.LittleEndian.Uint16(d.in[p:]))
	if ^uint16(size) != binary.LittleEndian.Uint16(d.in[p+2:]) {
		return op, errors.New("deflate: stored block length check fails")
	}
	p += 4
	if size > len(d.in)-p {
		return op, errors.New("deflate: stored block past the end of the data")
	}
	if size > end-op {
		return op, errInflateLong
	}
	copy(d.buf[op:], d.in[p:p+size])
	d.pos = p + size
	return op + size, nil
}

func (d *mszipDecoder) buildFixed() {
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	d.fixedLit = lsbHuffman{table: make([]uint16, 1<<inflateLitBits), tableBits: inflateLitBits}
	d.fixedLit.build(lens[:], false)
	for i := range 30 {
		lens[i] = 5
	}
	// 32 codes of 5 bits make a complete code; codes 30 and 31 are
	// rejected when decoded.
	for i := 30; i < 32; i++ {
		lens[i] = 5
	}
	d.fixedDist = lsbHuffman{table: make([]uint16, 1<<inflateDistBits), tableBits: inflateDistBits}
	d.fixedDist.build(lens[:32], false)
	d.fixedBuilt = true
}

// readDynamic reads the code lengths of a dynamic block and builds d.lit
// and d.dist.
func (d *mszipDecoder) readDynamic() error {
	nlit := int(d.getBits(5)) + 257
	ndist := int(d.getBits(5)) + 1
	nclen := int(d.getBits(4)) + 4
	if nlit > 286 || ndist > 30 {
		return errors.New("deflate: too many length or distance codes")
	}
	var cl [19]uint8
	for i := range nclen {
		cl[inflateCLOrder[i]] = uint8(d.getBits(3))
	}
	if err := d.cl.build(cl[:], false); err != nil {
		return fmt.Errorf("deflate: code length code: %w", err)
	}
	lens := d.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		sym, err := d.sym(&d.cl)
		if err != nil {
			return err
		}
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var v uint8
		var run int
		switch sym {
		case 16:
			if i == 0 {
				return errors.New("deflate: repeated code length without a previous one")
			}
			v = lens[i-1]
			run = 3 + int(d.getBits(2))
		case 17:
			run = 3 + int(d.getBits(3))
		default:
			run = 11 + int(d.getBits(7))
		}
		if run > len(lens)-i {
			return errors.New("deflate: code lengths run past the end")
		}
		for j := range run {
			lens[i+j] = v
		}
		i += run
	}
	if lens[256] == 0 {
		return errors.New("deflate: no end-of-block code")
	}
	if err := d.lit.build(lens[:nlit], false); err != nil {
		return fmt.Errorf("deflate: literal/length code: %w", err)
	}
	if err := d.dist.build(lens[nlit:], true); err != nil {
		return fmt.Errorf("deflate: distance code: %w", err)
	}
	return nil
}

// huffmanBlock decodes one Huffman-coded block.
func (d *mszipDecoder) huffmanBlock(op, end int, lit, dist *lsbHuffman) (int, error) {
	full := d.buf
	buf := full[:end]
	in := d.in
	bits, n, ip := d.bits, d.n, d.pos
	// Fixed-size views let the compiler drop the bounds checks.
	litT := (*[1 << inflateLitBits]uint16)(lit.table)
	distT := (*[1 << inflateDistBits]uint16)(dist.table)
	le := binary.LittleEndian
	var err error
	for {
		// 56 bits cover the longest symbol: 15 + 5 + 15 + 13 bits.
		if n < 48 {
			if ip >= 0 && ip+8 <= len(in) {
				bits |= le.Uint64(in[ip:]) << n
				ip += int(63-n) >> 3
				n |= 56
			} else {
				d.bits, d.n, d.pos = bits, n, ip
				d.refill()
				bits, n, ip = d.bits, d.n, d.pos
			}
		}
		e := litT[bits&(1<<inflateLitBits-1)]
		sym, l := int(e>>4), uint(e&15)
		if l == 0 {
			if sym, l = lit.slow(bits); l == 0 {
				err = errInflateSymbol
				break
			}
		}
		bits >>= l
		n -= l
		if sym < 256 {
			if op >= end {
				err = errInflateLong
				break
			}
			buf[op] = byte(sym)
			op++
			// At least 41 bits are left: a second literal from the
			// table needs no refill.
			e = litT[bits&(1<<inflateLitBits-1)]
			if l = uint(e & 15); l != 0 && e>>4 < 256 && op < len(buf) {
				buf[op] = byte(e >> 4)
				op++
				bits >>= l
				n -= l
			}
			continue
		}
		if sym == 256 {
			break
		}
		sym -= 257
		if sym >= len(inflateLenBase) {
			err = errInflateSymbol
			break
		}
		xb := uint(inflateLenExtra[sym])
		length := int(inflateLenBase[sym]) + int(bits&(1<<xb-1))
		bits >>= xb
		n -= xb
		e = distT[bits&(1<<inflateDistBits-1)]
		ds, dl := int(e>>4), uint(e&15)
		if dl == 0 {
			if ds, dl = dist.slow(bits); dl == 0 {
				err = errInflateSymbol
				break
			}
		}
		bits >>= dl
		n -= dl
		if ds >= len(inflateDistBase) {
			err = errInflateSymbol
			break
		}
		xb = uint(inflateDistExtra[ds])
		distance := int(inflateDistBase[ds]) + int(bits&(1<<xb-1))
		bits >>= xb
		n -= xb
		if distance > op {
			err = fmt.Errorf("deflate: distance %d reaches before the start of the history", distance)
			break
		}
		if length > end-op {
			err = errInflateLong
			break
		}
		src := op - distance
		switch {
		case distance >= 8 && op+length+8 <= len(full):
			// Copy words; bytes written past the match are output
			// space not yet produced, never referenced.
			for i := 0; i < length; i += 8 {
				le.PutUint64(full[op+i:], le.Uint64(full[src+i:]))
			}
		case distance >= length:
			copy(buf[op:op+length], buf[src:src+length])
		default:
			dst := buf[op : op+length]
			for i := range dst {
				dst[i] = buf[src+i]
			}
		}
		op += length
	}
	d.bits, d.n, d.pos = bits, n, ip
	return op, err
}
