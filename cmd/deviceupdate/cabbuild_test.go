package main_test

import (
	"bytes"
	"encoding/binary"
)

// This file builds cabinets byte by byte for the hostile-input tests, so
// that every header field can be set to a lie. It follows [MS-CAB] 2.1-2.4.

type tBlock struct {
	data     []byte
	cbUncomp uint16
	checksum *uint32 // nil: computed; set: stored as given (0 = not computed)
}

type tFolder struct {
	typeCompress uint16
	blocks       []tBlock
	cCFData      *uint16 // nil: len(blocks)
}

type tFile struct {
	name   []byte
	size   uint32
	offset uint32
	folder uint16
	attrs  uint16
}

type tCab struct {
	flags   uint16
	folders []tFolder
	files   []tFile
	// patch, when set, edits the finished bytes (for lies that the
	// layout above cannot express).
	patch func(b []byte)
}

const (
	cfhdrSize    = 36
	cffolderSize = 8
	cffileFixed  = 16
	cfdataHdr    = 8
)

func (c tCab) bytes() []byte {
	le := binary.LittleEndian
	filesLen := 0
	for _, f := range c.files {
		filesLen += cffileFixed + len(f.name) + 1
	}
	coffFiles := cfhdrSize + cffolderSize*len(c.folders)
	dataStart := coffFiles + filesLen

	var data bytes.Buffer
	folderOffsets := make([]int, len(c.folders))
	for i, fo := range c.folders {
		folderOffsets[i] = dataStart + data.Len()
		for _, b := range fo.blocks {
			hdr := make([]byte, cfdataHdr)
			le.PutUint16(hdr[4:], uint16(len(b.data)))
			le.PutUint16(hdr[6:], b.cbUncomp)
			sum := cabChecksum(b.data, hdr[4:8])
			if b.checksum != nil {
				sum = *b.checksum
			}
			le.PutUint32(hdr[0:], sum)
			data.Write(hdr)
			data.Write(b.data)
		}
	}

	out := make([]byte, 0, dataStart+data.Len())
	hdr := make([]byte, cfhdrSize)
	copy(hdr, "MSCF")
	le.PutUint32(hdr[8:], uint32(dataStart+data.Len()))
	le.PutUint32(hdr[16:], uint32(coffFiles))
	hdr[24], hdr[25] = 3, 1
	le.PutUint16(hdr[26:], uint16(len(c.folders)))
	le.PutUint16(hdr[28:], uint16(len(c.files)))
	le.PutUint16(hdr[30:], c.flags)
	le.PutUint16(hdr[32:], 0x1234)
	out = append(out, hdr...)
	for i, fo := range c.folders {
		rec := make([]byte, cffolderSize)
		le.PutUint32(rec[0:], uint32(folderOffsets[i]))
		n := uint16(len(fo.blocks))
		if fo.cCFData != nil {
			n = *fo.cCFData
		}
		le.PutUint16(rec[4:], n)
		le.PutUint16(rec[6:], fo.typeCompress)
		out = append(out, rec...)
	}
	for _, f := range c.files {
		rec := make([]byte, cffileFixed)
		le.PutUint32(rec[0:], f.size)
		le.PutUint32(rec[4:], f.offset)
		le.PutUint16(rec[8:], f.folder)
		le.PutUint16(rec[10:], 0x5B51) // 2025-10-17
		le.PutUint16(rec[12:], 0x6000) // 12:00:00
		le.PutUint16(rec[14:], f.attrs|0x20)
		out = append(out, rec...)
		out = append(out, f.name...)
		out = append(out, 0)
	}
	out = append(out, data.Bytes()...)
	if c.patch != nil {
		c.patch(out)
	}
	return out
}

// cabChecksum is the CFDATA checksum of [MS-CAB] 2.4: the XOR of the data
// as little-endian 32-bit words (a short tail packed high-first), then of
// cbData and cbUncomp.
func cabChecksum(data, sizes []byte) uint32 {
	sum := xorWords(data, 0)
	return xorWords(sizes, sum)
}

func xorWords(b []byte, seed uint32) uint32 {
	sum := seed
	for len(b) >= 4 {
		sum ^= binary.LittleEndian.Uint32(b)
		b = b[4:]
	}
	var t uint32
	for _, c := range b {
		t = t<<8 | uint32(c)
	}
	return sum ^ t
}

// storedBlocks splits data into stored blocks of at most 32 KiB.
func storedBlocks(data []byte) []tBlock {
	var out []tBlock
	for len(data) > 0 {
		n := min(len(data), 32768)
		out = append(out, tBlock{data: data[:n], cbUncomp: uint16(n)})
		data = data[n:]
	}
	return out
}

// mszipBlocks packs data as MSZIP blocks of at most 32 KiB: "CK" and one
// final stored deflate block each. Stored deflate keeps these cabinets
// readable by every extractor (cabextract rejects some Huffman tables that
// Go's compress/flate writes), while the decoders still walk the MSZIP
// framing; Huffman-coded MSZIP comes from gcab and the fixtures.
func mszipBlocks(data []byte) []tBlock {
	var out []tBlock
	for len(data) > 0 {
		n := min(len(data), 32768)
		b := []byte{'C', 'K', 0x01, byte(n), byte(n >> 8), ^byte(n), ^byte(n >> 8)}
		out = append(out, tBlock{data: append(b, data[:n]...), cbUncomp: uint16(n)})
		data = data[n:]
	}
	return out
}

func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }
