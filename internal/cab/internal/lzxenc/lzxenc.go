// Package lzxenc is a small LZX compressor for tests and benchmarks of
// package cab: it makes LZX folders of any size and window, which no tool
// on the build machines can, so that the decoder can be checked against
// cabextract on large inputs.
//
// It compresses each 32 KiB frame as one block of a chosen type (verbatim,
// aligned offset or uncompressed) with greedy matching over hash chains,
// repeated offsets and Huffman trees built per block. It does not emit E8
// translation. Compression is fair, not competitive.
package lzxenc

import (
	"container/heap"
	"encoding/binary"
	"fmt"
)

// Block types, as in the LZX format.
const (
	Verbatim     = 1
	Aligned      = 2
	Uncompressed = 3
)

const (
	frameSize   = 32768
	minMatch    = 2
	maxMatch    = 257
	numChars    = 256
	lengthSyms  = 249
	pretreeSyms = 20
	hashBits    = 15
	maxChain    = 32
)

var slotsForWindow = map[int]int{15: 30, 16: 32, 17: 34, 18: 36, 19: 38, 20: 42, 21: 50}

var (
	extraBits [50]uint
	slotBase  [51]uint32
)

func init() {
	for i := range extraBits {
		e := 0
		if i >= 4 {
			e = min(i/2-1, 17)
		}
		extraBits[i] = uint(e)
		slotBase[i+1] = slotBase[i] + 1<<e
	}
}

// Compress compresses data as one LZX folder with a window of 2^windowBits
// bytes and returns one compressed frame per 32 KiB of data (the last may
// be shorter), each to be stored in its own CFDATA block. Frame i is coded
// as one block of type blockTypes[i%len(blockTypes)].
func Compress(data []byte, windowBits int, blockTypes []int) ([][]byte, error) {
	slots, ok := slotsForWindow[windowBits]
	if !ok {
		return nil, fmt.Errorf("lzxenc: window of 2^%d bytes", windowBits)
	}
	for _, t := range blockTypes {
		if t < Verbatim || t > Uncompressed {
			return nil, fmt.Errorf("lzxenc: block type %d", t)
		}
	}
	e := &encoder{
		data:     data,
		wsize:    1 << windowBits,
		slots:    slots,
		r:        [3]uint32{1, 1, 1},
		head:     make([]int32, 1<<hashBits),
		prev:     make([]int32, 1<<windowBits),
		mainPrev: make([]uint8, numChars+slots*8),
		lenPrev:  make([]uint8, lengthSyms),
	}
	for i := range e.head {
		e.head[i] = -1
	}
	var frames [][]byte
	for i, start := 0, 0; start < len(data); i, start = i+1, start+frameSize {
		end := min(start+frameSize, len(data))
		var w bitWriter
		if i == 0 {
			w.put(0, 1) // no E8 translation
		}
		if len(blockTypes) == 0 {
			blockTypes = []int{Verbatim}
		}
		switch t := blockTypes[i%len(blockTypes)]; t {
		case Uncompressed:
			e.uncompressed(&w, start, end)
		default:
			e.compressed(&w, start, end, t == Aligned)
		}
		w.align()
		frames = append(frames, w.out)
	}
	return frames, nil
}

type encoder struct {
	data     []byte
	wsize    int
	slots    int
	r        [3]uint32
	head     []int32 // last position of each hash
	prev     []int32 // previous position with the same hash, by position mod window
	inserted int     // positions below this are in the hash chains
	mainPrev []uint8 // code lengths of the previous block, for delta coding
	lenPrev  []uint8
}

func (e *encoder) hash(p int) int {
	d := e.data
	return int((uint32(d[p])<<16 | uint32(d[p+1])<<8 | uint32(d[p+2])) * 2654435761 >> (32 - hashBits))
}

// insertUpTo adds positions below p to the hash chains.
func (e *encoder) insertUpTo(p int) {
	for ; e.inserted < p && e.inserted+3 <= len(e.data); e.inserted++ {
		h := e.hash(e.inserted)
		e.prev[e.inserted&(e.wsize-1)] = e.head[h]
		e.head[h] = int32(e.inserted)
	}
	e.inserted = max(e.inserted, p)
}

func (e *encoder) matchLen(p, off, limit int) int {
	d := e.data
	n := 0
	for p+n < limit && d[p+n] == d[p+n-off] {
		n++
	}
	return n
}

// token is a literal (length 0) or a match.
type token struct {
	lit    byte
	length int
	off    uint32
}

// findMatch returns the best match at p ending before limit.
func (e *encoder) findMatch(p, limit int) (length int, off uint32) {
	limit = min(limit, p+maxMatch)
	maxOff := min(p, e.wsize-3)
	for _, r := range e.r {
		if int(r) <= maxOff {
			if n := e.matchLen(p, int(r), limit); n > length {
				length, off = n, r
			}
		}
	}
	if p+3 <= len(e.data) {
		q := e.head[e.hash(p)]
		for chain := 0; q >= 0 && chain < maxChain; chain++ {
			o := p - int(q)
			if o <= 0 || o > maxOff {
				break
			}
			if n := e.matchLen(p, o, limit); n > length+1 || (n > length && !e.isRepeat(off)) {
				length, off = n, uint32(o)
			}
			q = e.prev[int(q)&(e.wsize-1)]
		}
	}
	if length < 3 && !(length == minMatch && e.isRepeat(off)) {
		return 0, 0
	}
	return length, off
}

func (e *encoder) isRepeat(off uint32) bool {
	return off != 0 && (off == e.r[0] || off == e.r[1] || off == e.r[2])
}

// slotOf returns the position slot and extra bits value for a match
// offset, updating the repeated offsets as the decoder will.
func (e *encoder) slotOf(off uint32) (slot int, extra uint32) {
	switch off {
	case e.r[0]:
		return 0, 0
	case e.r[1]:
		e.r[0], e.r[1] = e.r[1], e.r[0]
		return 1, 0
	case e.r[2]:
		e.r[0], e.r[2] = e.r[2], e.r[0]
		return 2, 0
	}
	f := off + 2
	s := 3
	for slotBase[s+1] <= f {
		s++
	}
	e.r[2], e.r[1], e.r[0] = e.r[1], e.r[0], off
	return s, f - slotBase[s]
}

func (e *encoder) uncompressed(w *bitWriter, start, end int) {
	w.put(Uncompressed, 3)
	w.put(uint32(end-start), 24)
	if w.n == 0 {
		w.put(0, 16) // already aligned: 16 bits of padding
	}
	w.align()
	for _, r := range e.r {
		w.out = binary.LittleEndian.AppendUint32(w.out, r)
	}
	w.out = append(w.out, e.data[start:end]...)
	if (end-start)%2 == 1 {
		w.out = append(w.out, 0)
	}
	e.insertUpTo(end)
}

// coded is one token ready to write.
type coded struct {
	main     int
	lenSym   int // -1 if none
	slot     int
	extra    uint32
	hasMatch bool
}

func (e *encoder) compressed(w *bitWriter, start, end int, aligned bool) {
	var toks []coded
	mainFreq := make([]int, numChars+e.slots*8)
	lenFreq := make([]int, lengthSyms)
	for p := start; p < end; {
		e.insertUpTo(p)
		length, off := e.findMatch(p, end)
		if length == 0 {
			toks = append(toks, coded{main: int(e.data[p]), lenSym: -1})
			mainFreq[e.data[p]]++
			p++
			continue
		}
		slot, extra := e.slotOf(off)
		c := coded{slot: slot, extra: extra, hasMatch: true, lenSym: -1}
		lh := length - minMatch
		if lh >= 7 {
			c.lenSym = lh - 7
			lenFreq[c.lenSym]++
			lh = 7
		}
		c.main = numChars + slot*8 + lh
		mainFreq[c.main]++
		toks = append(toks, c)
		p += length
	}
	mainLens := codeLengths(mainFreq, 16, true)
	lenLens := codeLengths(lenFreq, 16, false)
	mainCodes := canonical(mainLens)
	lenCodes := canonical(lenLens)

	if aligned {
		w.put(Aligned, 3)
	} else {
		w.put(Verbatim, 3)
	}
	w.put(uint32(end-start), 24)
	if aligned {
		for range 8 {
			w.put(3, 3) // aligned tree: all 8 symbols, 3 bits each
		}
	}
	writeLengths(w, e.mainPrev[:numChars], mainLens[:numChars])
	writeLengths(w, e.mainPrev[numChars:], mainLens[numChars:])
	writeLengths(w, e.lenPrev, lenLens)
	copy(e.mainPrev, mainLens)
	copy(e.lenPrev, lenLens)

	for _, c := range toks {
		w.put(mainCodes[c.main], uint(mainLens[c.main]))
		if !c.hasMatch {
			continue
		}
		if c.lenSym >= 0 {
			w.put(lenCodes[c.lenSym], uint(lenLens[c.lenSym]))
		}
		if c.slot < 3 {
			continue
		}
		nb := extraBits[c.slot]
		if aligned && nb >= 3 {
			w.put(c.extra>>3, nb-3)
			w.put(c.extra&7, 3) // aligned symbol: code = symbol
		} else {
			w.put(c.extra, nb)
		}
	}
}

// writeLengths writes lens as pretree-coded changes from prev.
func writeLengths(w *bitWriter, prev, lens []uint8) {
	z := make([]int, len(lens))
	freq := make([]int, pretreeSyms)
	for i := range lens {
		z[i] = (int(prev[i]) - int(lens[i]) + 17) % 17
		freq[z[i]]++
	}
	pl := codeLengths(freq, 15, true)
	pc := canonical(pl)
	for _, l := range pl {
		w.put(uint32(l), 4)
	}
	for _, s := range z {
		w.put(pc[s], uint(pl[s]))
	}
}

// codeLengths builds Huffman code lengths of at most maxLen bits for freq.
// With complete set, a code of a single symbol gets a second, unused one so
// that the code is complete; otherwise an unused code stays empty.
func codeLengths(freq []int, maxLen int, complete bool) []uint8 {
	f := append([]int(nil), freq...)
	used := 0
	for _, v := range f {
		if v > 0 {
			used++
		}
	}
	if used == 0 && !complete {
		return make([]uint8, len(f))
	}
	if used < 2 {
		for i := range f {
			if f[i] == 0 {
				f[i] = 1
				used++
				if used == 2 {
					break
				}
			}
		}
	}
	for {
		lens := huffmanLengths(f)
		longest := 0
		for _, l := range lens {
			longest = max(longest, int(l))
		}
		if longest <= maxLen {
			return lens
		}
		for i := range f {
			if f[i] > 0 {
				f[i] = (f[i] + 1) / 2
			}
		}
	}
}

type node struct {
	weight      int
	left, right int // children, -1 for a leaf
	sym         int
}

type nodeHeap struct {
	nodes []node
	idx   []int
}

func (h *nodeHeap) Len() int { return len(h.idx) }
func (h *nodeHeap) Less(i, j int) bool {
	return h.nodes[h.idx[i]].weight < h.nodes[h.idx[j]].weight
}
func (h *nodeHeap) Swap(i, j int) { h.idx[i], h.idx[j] = h.idx[j], h.idx[i] }
func (h *nodeHeap) Push(x any)    { h.idx = append(h.idx, x.(int)) }
func (h *nodeHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}

// huffmanLengths returns unlimited Huffman code lengths for f (at least
// two symbols used).
func huffmanLengths(f []int) []uint8 {
	h := &nodeHeap{}
	for s, v := range f {
		if v > 0 {
			h.nodes = append(h.nodes, node{weight: v, left: -1, right: -1, sym: s})
			h.idx = append(h.idx, len(h.nodes)-1)
		}
	}
	heap.Init(h)
	for h.Len() > 1 {
		a, b := heap.Pop(h).(int), heap.Pop(h).(int)
		h.nodes = append(h.nodes, node{weight: h.nodes[a].weight + h.nodes[b].weight, left: a, right: b})
		heap.Push(h, len(h.nodes)-1)
	}
	lens := make([]uint8, len(f))
	var walk func(n, depth int)
	walk = func(n, depth int) {
		if nd := h.nodes[n]; nd.left < 0 {
			lens[nd.sym] = uint8(depth)
		} else {
			walk(nd.left, depth+1)
			walk(nd.right, depth+1)
		}
	}
	walk(h.idx[0], 0)
	return lens
}

// canonical assigns canonical codes (shorter first, then by symbol).
func canonical(lens []uint8) []uint32 {
	var count [17]uint32
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [17]uint32
	code := uint32(0)
	for l := 1; l <= 16; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	codes := make([]uint32, len(lens))
	for s, l := range lens {
		if l > 0 {
			codes[s] = next[l]
			next[l]++
		}
	}
	return codes
}

// bitWriter writes 16-bit little-endian words, most significant bit
// first.
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (w *bitWriter) put(v uint32, k uint) {
	w.acc = w.acc<<k | uint64(v)&(1<<k-1)
	w.n += k
	for w.n >= 16 {
		w.n -= 16
		word := uint16(w.acc >> w.n)
		w.out = append(w.out, byte(word), byte(word>>8))
	}
	w.acc &= 1<<w.n - 1
}

func (w *bitWriter) align() {
	if w.n > 0 {
		w.put(0, 16-w.n)
	}
}
