package cab

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/cab/internal/lzxenc"
)

// fuzzLimits keep every fuzz input small to decode.
var fuzzLimits = Limits{MaxFiles: 256, MaxFolders: 16, MaxFileSize: 1 << 20, MaxTotalSize: 1 << 20, MaxRatio: 4000}

// Seeds are kept to a few KiB: with only large inputs in its corpus, Go's
// fuzzer stalls before it starts mutating.

// seedCabinets returns small valid cabinets of every supported kind.
func seedCabinets(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, c := range []tCab{
		{folders: []tFolder{{comp: CompressNone}}},
		{folders: []tFolder{{comp: CompressMSZIP, blockSize: 1000}, {comp: CompressNone, blockSize: 500}}},
		{folders: []tFolder{{comp: CompressMSZIP}}, headerReserve: []byte("sig"), folderReserve: 3, dataReserve: 2},
		{folders: []tFolder{{comp: CompressMSZIP}}, prev: [2]string{"a.cab", "disk"}, next: [2]string{"c.cab", "disk"}},
		{folders: []tFolder{{comp: CompressLZX | 15<<8, lzxTypes: []int{lzxenc.Aligned, lzxenc.Uncompressed, lzxenc.Verbatim}}}},
	} {
		for i := range 4 {
			c.files = append(c.files, tFile{name: fmt.Sprintf("d\\f%d", i), data: semiRandom(uint64(i), 700*i), folder: i % len(c.folders)})
		}
		b, _ := c.build(t)
		seeds = append(seeds, b)
	}
	return append(seeds, readFixture(t, simpleFixture), shortenLZXCab(readFixture(t, lzxFixture), 1, 3000))
}

// shortenLZXCab cuts lzx.cab down to its first n data blocks, the last
// one truncated to at most max compressed bytes (with its checksum
// cleared), so that the fuzzer works on a small LZX cabinet.
func shortenLZXCab(b []byte, n, max int) []byte {
	le := binary.LittleEndian
	foff := int(le.Uint32(b[36:]))
	off := foff
	for i := range n {
		cb := int(le.Uint16(b[off+4:]))
		if i == n-1 && cb > max {
			c := bytes.Clone(b[:off+dataHeaderSize+max])
			le.PutUint32(c[off:], 0)
			le.PutUint16(c[off+4:], uint16(max))
			b, cb = c, max
		}
		off += dataHeaderSize + cb
	}
	c := bytes.Clone(b[:off])
	le.PutUint32(c[8:], uint32(len(c)))
	le.PutUint16(c[40:], uint16(n))
	fileEntry := int(le.Uint32(c[16:]))
	le.PutUint32(c[fileEntry:], uint32(n*lzxFrameSize))
	return c
}

// lzxFixtureFrame returns the first data block of lzx.cab, cut to max
// bytes, as a FuzzLZX input.
func lzxFixtureFrame(b []byte, max int) []byte {
	le := binary.LittleEndian
	off := int(le.Uint32(b[36:]))
	cb := min(int(le.Uint16(b[off+4:])), max)
	rec := []byte{21 - 15, b[off+6], b[off+7]}
	rec = binary.LittleEndian.AppendUint16(rec, uint16(cb))
	return append(rec, b[off+dataHeaderSize:off+dataHeaderSize+cb]...)
}

// checkSentinel fails unless err wraps one of the package's sentinels.
func checkSentinel(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrLimit) {
		t.Fatalf("error %q wraps no sentinel", err)
	}
}

// FuzzReader parses arbitrary bytes as a cabinet and, when that works,
// extracts every member with Walk and the first with Open.
func FuzzReader(f *testing.F) {
	for _, s := range seedCabinets(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReaderLimits(bytes.NewReader(data), int64(len(data)), fuzzLimits)
		if err != nil {
			checkSentinel(t, err)
			return
		}
		for _, fi := range r.Files {
			SafePath(fi.Name)
		}
		err = r.Walk(func(fi *File, rd io.Reader) error {
			n, err := io.Copy(io.Discard, rd)
			if err == nil && n != fi.Size {
				t.Fatalf("%s: %d bytes, want %d", fi.Name, n, fi.Size)
			}
			return err
		})
		if err != nil {
			checkSentinel(t, err)
		}
		if len(r.Files) > 0 {
			rc, err := r.Files[0].Open()
			if err != nil {
				checkSentinel(t, err)
				return
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				checkSentinel(t, err)
			}
		}
	})
}

// fuzzRecords splits fuzz data into data blocks: each record is a 2-byte
// uncompressed size (taken modulo 32769), a 2-byte length and the bytes.
func fuzzRecords(data []byte, fn func(n int, block []byte) bool) {
	for len(data) >= 4 {
		n := int(binary.LittleEndian.Uint16(data)) % (maxUncompBlock + 1)
		l := min(int(binary.LittleEndian.Uint16(data[2:])), len(data)-4)
		if !fn(n, data[4:4+l]) {
			return
		}
		data = data[4+l:]
	}
}

// FuzzMSZIP drives the MSZIP decoder on a sequence of blocks and compares
// it with compress/flate: where both succeed the bytes must agree, and
// neither may accept a block the other rejects.
func FuzzMSZIP(f *testing.F) {
	rec := func(n int, blocks ...[]byte) []byte {
		var out []byte
		for _, b := range blocks {
			out = binary.LittleEndian.AppendUint16(out, uint16(n))
			out = binary.LittleEndian.AppendUint16(out, uint16(len(b)))
			out = append(out, b...)
		}
		return out
	}
	data := semiRandom(9, 4000)
	f.Add(rec(2000, mszipCompress(f, data[:2000], nil), mszipCompress(f, data[2000:], data[:2000])))
	f.Add(rec(100, mszipCompress(f, bytes.Repeat([]byte("ab"), 50), nil)))
	f.Add(rec(5, []byte("CK\x01\x05\x00\xfa\xffhello")))             // stored block
	f.Add(rec(3, []byte("CK\x4b\x4c\x4a\x06\x00")))                  // fixed Huffman "abc"
	f.Add(rec(0, []byte("CK\x03\x00")))                              // empty
	f.Add(rec(4, []byte("CK\x4b\x04\x02\x00")))                      // "aaaa": a match
	f.Add(rec(10, []byte("CK\x05\xc0\x81\x00\x00\x00\x00\x80\xa0"))) // a dynamic-block header
	f.Add(rec(187, readFixture(f, simpleFixture)[0x4d:]))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ours mszipDecoder
		ours.reset(CompressMSZIP, 0)
		var ref flateMSZIP
		fuzzRecords(data, func(n int, block []byte) bool {
			got, err := ours.decode(block, n)
			want, rerr := ref.decode(block, n)
			switch {
			case err == nil && rerr == nil:
				if !bytes.Equal(got, want) {
					t.Fatalf("output differs from compress/flate")
				}
				return true
			case err == nil:
				t.Fatalf("accepted a block compress/flate rejects (%v)", rerr)
			case rerr == nil:
				t.Fatalf("rejected a block compress/flate accepts: %v", err)
			}
			return false
		})
	})
}

// FuzzLZX drives the LZX decoder directly: the first byte picks the
// window size, the rest are data blocks as in fuzzRecords.
func FuzzLZX(f *testing.F) {
	f.Add(lzxFixtureFrame(readFixture(f, lzxFixture), 3000))
	for _, types := range [][]int{{lzxenc.Verbatim}, {lzxenc.Aligned}, {lzxenc.Uncompressed}} {
		frames, err := lzxenc.Compress(lzxTestData(3000), 15, types)
		if err != nil {
			f.Fatal(err)
		}
		rec := []byte{0, 3000 & 0xFF, 3000 >> 8}
		rec = binary.LittleEndian.AppendUint16(rec, uint16(len(frames[0])))
		f.Add(append(rec, frames[0]...))
	}
	var w lzxBits
	w.put(0, 1)
	w.verbatimTwoSymbols(4, 'A', 0)
	w.put(0x2, 3)
	w.align()
	f.Add(append([]byte{0, 4, 0, byte(len(w.out)), 0}, w.out...))
	var u lzxBits
	u.put(1, 1)
	u.put(0, 16)
	u.put(5000, 16)
	u.put(3, 3)
	u.put(21, 24)
	u.align()
	u.out = append(u.out, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0)
	u.out = append(u.out, []byte("\xe8\x01\x00\x00\x00abcdefghijklmnop\x00")...)
	f.Add(append([]byte{6, 21, 0, byte(len(u.out)), 0}, u.out...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		wbits := 15 + int(data[0])%7
		var d lzxDecoder
		d.reset(Compression(CompressLZX|Compression(wbits)<<8), int64(len(data))*64)
		fuzzRecords(data[1:], func(n int, block []byte) bool {
			out, err := d.decode(block, n)
			if err != nil {
				return false
			}
			if len(out) != n {
				t.Fatalf("frame of %d bytes, want %d", len(out), n)
			}
			return true
		})
	})
}

// searchSeeds are FuzzSearch's seeds, also committed in
// testdata/fuzz/FuzzSearch: libmspack's search test files, a pack-made
// cabinet behind junk, two cabinets with junk between, and "MSCF" spam.
func searchSeeds(t testing.TB) [][]byte {
	junk := semiRandom(77, 300)
	return [][]byte{
		readFixture(t, searchBasic),
		readFixture(t, searchTricky1),
		cat(junk, packCab(t), junk[:7]),
		cat(smallCab(t, "a"), junk[:20], smallCab(t, "bb")),
		bytes.Repeat([]byte("MSCF"), 64),
	}
}

// FuzzSearch searches arbitrary bytes for cabinets. What it finds must lie
// in the file in order without overlapping, open alone at its offset, and
// decode or fail cleanly.
func FuzzSearch(f *testing.F) {
	for _, s := range searchSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cabs, err := searchBytes(data, fuzzLimits)
		if err != nil {
			checkSentinel(t, err)
			if len(cabs) != 0 {
				t.Fatalf("%d cabinets with an error", len(cabs))
			}
			return
		}
		if len(cabs) == 0 {
			t.Fatal("no cabinet and no error")
		}
		end := int64(0)
		for _, c := range cabs {
			if c.Offset < end || c.Offset+c.CabinetSize > int64(len(data)) {
				t.Fatalf("cabinet at %d of %d bytes: overlaps the previous one (ending at %d) or the end of the file (%d)", c.Offset, c.CabinetSize, end, len(data))
			}
			end = c.Offset + c.CabinetSize
			alone, err := NewReaderLimits(bytes.NewReader(data[c.Offset:]), int64(len(data))-c.Offset, fuzzLimits)
			if err != nil || len(alone.Files) != len(c.Files) || len(c.Files) == 0 {
				t.Fatalf("cabinet at %d: %d members, but alone: %v", c.Offset, len(c.Files), err)
			}
			err = c.Walk(func(fi *File, rd io.Reader) error {
				_, err := io.Copy(io.Discard, rd)
				return err
			})
			if err != nil {
				checkSentinel(t, err)
			}
		}
	})
}
