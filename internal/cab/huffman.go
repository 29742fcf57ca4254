package cab

import "errors"

// maxCodeLen is the longest Huffman code LZX uses.
const maxCodeLen = 16

var (
	errOversubscribed = errors.New("over-subscribed Huffman code lengths")
	errIncomplete     = errors.New("incomplete Huffman code lengths")
	errBadLength      = errors.New("Huffman code length above 16")
)

// huffman decodes a canonical Huffman code read most significant bit first
// (codes of each length are consecutive, ordered by symbol, and shorter
// codes come first). Codes of up to tableBits bits are resolved by one
// lookup in table; longer ones by a search over the code lengths.
type huffman struct {
	// table is indexed by the next tableBits bits of input. An entry holds
	// symbol<<5 | code length, or 0 for a prefix of a longer code (and, in
	// an empty code, everywhere).
	table     []uint16
	tableBits uint
	count     [maxCodeLen + 1]uint16 // codes of each length
	first     [maxCodeLen + 1]uint32 // first code of each length
	offset    [maxCodeLen + 1]uint16 // index in syms of that first code
	syms      []uint16               // symbols in code order
}

func newHuffman(tableBits uint, maxSyms int) huffman {
	return huffman{table: make([]uint16, 1<<tableBits), tableBits: tableBits, syms: make([]uint16, maxSyms)}
}

// build makes the decoding tables for the code lengths lens. A code with no
// symbols at all is accepted and fails when a symbol is decoded; a code
// that is over-subscribed or incomplete is an error, since it cannot
// decode every input unambiguously.
func (h *huffman) build(lens []uint8) error {
	clear(h.count[:])
	for _, l := range lens {
		if l > maxCodeLen {
			return errBadLength
		}
		h.count[l]++
	}
	h.count[0] = 0
	left := 1
	for l := 1; l <= maxCodeLen; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return errOversubscribed
		}
	}
	clear(h.table)
	if left == 1<<maxCodeLen {
		return nil // no symbols
	}
	if left != 0 {
		return errIncomplete
	}
	var code uint32
	var off uint16
	var next [maxCodeLen + 1]uint16
	for l := 1; l <= maxCodeLen; l++ {
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
	for l := uint(1); l <= h.tableBits; l++ {
		fill := 1 << (h.tableBits - l)
		for i := 0; i < int(h.count[l]); i++ {
			sym := h.syms[int(h.offset[l])+i]
			start := int(h.first[l]+uint32(i)) << (h.tableBits - l)
			entry := sym<<5 | uint16(l)
			t := h.table[start : start+fill]
			for j := range t {
				t[j] = entry
			}
		}
	}
	return nil
}

// slow decodes a code longer than tableBits from the top bits of bits. It
// returns a length of 0 when no code matches (only in an empty code).
func (h *huffman) slow(bits uint64) (sym int, length uint) {
	for l := h.tableBits + 1; l <= maxCodeLen; l++ {
		c := uint32(bits>>(64-l)) - h.first[l]
		if c < uint32(h.count[l]) {
			return int(h.syms[uint32(h.offset[l])+c]), l
		}
	}
	return 0, 0
}
