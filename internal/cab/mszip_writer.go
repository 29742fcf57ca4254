package cab

// This file is the MSZIP compressor the cabinet writer uses: LZ77 with hash
// chains and one-step lazy matching, coded with deflate's fixed Huffman
// codes (RFC 1951 3.2.6), or stored when that would not be smaller.
//
// Fixed codes are a deliberate choice. Go's compress/flate writes dynamic
// Huffman tables that are sometimes incomplete (a single distance code, or
// none), which RFC 1951 allows but cabextract's decoder refuses; fixed codes
// are complete by definition, so every extractor reads what this writes.

import (
	"encoding/binary"
	"math/bits"
)

const (
	deflateWindow = 32768
	minMatch      = 3
	maxMatch      = 258
	hashBits      = 15
	hashSize      = 1 << hashBits
	maxChain      = 48 // candidates tried per position: speed against ratio
	goodEnough    = 128
	probeSize     = 4096 // bytes coded before deciding a frame is incompressible
)

// Length codes 257..285: base length and extra bits (RFC 1951 3.2.5).
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// fixedLit holds, per literal/length symbol, its fixed code already
// bit-reversed for an LSB-first writer, and its length.
var fixedLit [288]struct {
	code uint16
	len  uint8
}

// lengthCode maps a match length (3..258) to its symbol index 0..28.
var lengthCode [maxMatch + 1]uint8

func init() {
	for s := range 288 {
		var code, n int
		switch {
		case s < 144:
			code, n = 0x30+s, 8
		case s < 256:
			code, n = 0x190+s-144, 9
		case s < 280:
			code, n = s-256, 7
		default:
			code, n = 0xc0+s-280, 8
		}
		fixedLit[s].code = reverseBits(uint16(code), n)
		fixedLit[s].len = uint8(n)
	}
	for i := 28; i >= 0; i-- {
		for l := int(lengthBase[i]); l <= maxMatch && lengthCode[l] == 0; l++ {
			lengthCode[l] = uint8(i)
		}
	}
	lengthCode[maxMatch] = 28
}

func reverseBits(v uint16, n int) uint16 {
	var r uint16
	for range n {
		r = r<<1 | v&1
		v >>= 1
	}
	return r
}

// distCode returns the distance symbol (0..29) for a distance 1..32768:
// above 4, symbols come in pairs per power of two of d-1, the pair chosen
// by that power and the member by the next bit down.
func distCode(d int) int {
	if d <= 4 {
		return d - 1
	}
	v := d - 1
	k := bits.Len(uint(v)) - 1 // floor(log2(v)), at least 2
	return 2*k + (v>>(k-1))&1
}

// bitWriter collects bits LSB-first, as deflate orders them.
type bitWriter struct {
	out   []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) bits(v uint64, n uint) {
	w.acc |= v << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *bitWriter) align() {
	if w.nbits > 0 {
		w.bits(0, 8-w.nbits)
	}
}

// mszipEncoder compresses successive MSZIP frames, each of which may refer
// back into the previous frame's 32 KiB.
type mszipEncoder struct {
	window []byte // previous frame followed by the current one
	head   [hashSize]int32
	prev   [2 * deflateWindow]int32
	bw     bitWriter
}

func newMSZIPEncoder() *mszipEncoder {
	e := &mszipEncoder{window: make([]byte, 0, 2*deflateWindow)}
	for i := range e.head {
		e.head[i] = -1
	}
	return e
}

func hash3(b []byte) uint32 {
	v := uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
	return (v * 2654435761) >> (32 - hashBits)
}

// encode returns the CFDATA payload ("CK" and one deflate stream) for one
// frame of at most 32 KiB. The returned slice is valid until the next call.
func (e *mszipEncoder) encode(frame []byte) []byte {
	// Slide: keep at most the last 32 KiB as history.
	if len(e.window) > deflateWindow {
		shift := len(e.window) - deflateWindow
		copy(e.window, e.window[shift:])
		e.window = e.window[:deflateWindow]
		for i := range e.head {
			if e.head[i] >= int32(shift) {
				e.head[i] -= int32(shift)
			} else {
				e.head[i] = -1
			}
		}
		for i := 0; i < deflateWindow; i++ {
			p := e.prev[i+shift]
			if p >= int32(shift) {
				e.prev[i] = p - int32(shift)
			} else {
				e.prev[i] = -1
			}
		}
	}
	start := len(e.window)
	e.window = append(e.window, frame...)
	w := e.window
	end := len(w)

	bw := &e.bw
	bw.out = append(bw.out[:0], 'C', 'K')
	bw.acc, bw.nbits = 0, 0
	bw.bits(1|1<<1, 3) // BFINAL=1, BTYPE=01 (fixed)

	insert := func(p int) {
		if p+minMatch > end {
			return
		}
		h := hash3(w[p:])
		e.prev[p] = e.head[h]
		e.head[h] = int32(p)
	}
	find := func(p int) (length, dist int) {
		if p+minMatch > end {
			return 0, 0
		}
		limit := min(maxMatch, end-p)
		cand := e.head[hash3(w[p:])]
		for chain := 0; cand >= 0 && chain < maxChain; chain++ {
			c := int(cand)
			d := p - c
			if d > deflateWindow || d <= 0 {
				break
			}
			if w[c+length] == w[p+length] && w[c] == w[p] {
				n := 0
				for n < limit && w[c+n] == w[p+n] {
					n++
				}
				if n > length {
					length, dist = n, d
					if n >= limit || n >= goodEnough {
						break
					}
				}
			}
			cand = e.prev[c]
		}
		if length < minMatch {
			return 0, 0
		}
		return length, dist
	}
	lit := func(b byte) {
		c := fixedLit[b]
		bw.bits(uint64(c.code), uint(c.len))
	}

	p := start
	probed := false
	for p < end {
		// Incompressible data (most firmware is compressed already) would
		// end up stored anyway: give up early rather than search every
		// position's chain in vain.
		if !probed && p-start >= probeSize {
			probed = true
			if len(bw.out)-2 >= p-start {
				return e.stored(frame)
			}
		}
		length, dist := find(p)
		insert(p)
		if length > 0 && length < goodEnough && p+1 < end {
			// Lazy: a longer match at the next byte wins over this one.
			if l2, d2 := find(p + 1); l2 > length {
				lit(w[p])
				p++
				length, dist = l2, d2
				insert(p)
			}
		}
		if length == 0 {
			lit(w[p])
			p++
			continue
		}
		lc := lengthCode[length]
		sym := fixedLit[257+int(lc)]
		bw.bits(uint64(sym.code), uint(sym.len))
		bw.bits(uint64(length-int(lengthBase[lc])), uint(lengthExtra[lc]))
		dc := distCode(dist)
		bw.bits(uint64(reverseBits(uint16(dc), 5)), 5)
		bw.bits(uint64(dist-int(distBase[dc])), uint(distExtra[dc]))
		for q := p + 1; q < p+length; q++ {
			insert(q)
		}
		p += length
	}
	eob := fixedLit[256]
	bw.bits(uint64(eob.code), uint(eob.len))
	bw.align()

	// Stored is 5 bytes of framing plus the data; use it when smaller.
	if len(bw.out)-2 > len(frame)+5 {
		return e.stored(frame)
	}
	return bw.out
}

// stored returns the frame as one final stored deflate block. The frame
// stays in the window, so the next frame may still refer to it.
func (e *mszipEncoder) stored(frame []byte) []byte {
	bw := &e.bw
	bw.out = append(bw.out[:2], 0x01, 0, 0, 0, 0)
	binary.LittleEndian.PutUint16(bw.out[3:], uint16(len(frame)))
	binary.LittleEndian.PutUint16(bw.out[5:], ^uint16(len(frame)))
	return append(bw.out, frame...)
}
