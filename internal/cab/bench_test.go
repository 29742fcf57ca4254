package cab

import (
	"bytes"
	"encoding/binary"
	"flag"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/cab/internal/lzxenc"
)

var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

// mszipBenchCab makes (once per process) a 24 MiB semi-compressible file
// and an MSZIP cabinet of it with gcab, and returns the cabinet's path.
func mszipBenchCab(b *testing.B) string {
	gcab := needTool(b, "gcab")
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "cab-bench-")
		if benchErr != nil {
			return
		}
		src := filepath.Join(benchDir, "firmware.bin")
		if benchErr = os.WriteFile(src, semiRandom(42, 24<<20), 0o644); benchErr != nil {
			return
		}
		run(b, benchDir, gcab, "-c", "-z", "mszip.cab", "firmware.bin")
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return filepath.Join(benchDir, "mszip.cab")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	if lzxBenchPath != "" {
		os.RemoveAll(filepath.Dir(lzxBenchPath))
	}
	os.Exit(code)
}

// openBench opens the file at path for the benchmark and returns its size.
func openBench(b *testing.B, path string) (*os.File, int64) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return f, st.Size()
}

// benchCab measures extracting every member of the cabinet at path, to
// disk with ExtractTo or, with toDisk false, to io.Discard through Walk.
func benchCab(b *testing.B, path string, toDisk bool) {
	f, size := openBench(b, path)
	r, err := NewReader(f, size)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, m := range r.Files {
		total += m.Size
	}
	out := b.TempDir()
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if toDisk {
			_, err = r.ExtractTo(out)
		} else {
			err = r.Walk(func(_ *File, rd io.Reader) error {
				_, err := io.Copy(io.Discard, rd)
				return err
			})
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

var (
	lzxBenchOnce sync.Once
	lzxBenchPath string
)

// lzxCab returns an LZX cabinet, window 2^21, holding data as
// firmware.bin in verbatim and aligned offset blocks of the test encoder.
func lzxCab(tb testing.TB, data []byte) []byte {
	c := tCab{folders: []tFolder{{comp: CompressLZX | 21<<8, lzxTypes: []int{lzxenc.Verbatim, lzxenc.Aligned}}},
		files: []tFile{{name: "firmware.bin", data: data}}}
	cab, _ := c.build(tb)
	return cab
}

// lzxBenchCab makes (once per process) an LZX cabinet of 8 MiB of
// semi-compressible data with the test encoder.
func lzxBenchCab(b *testing.B) string {
	lzxBenchOnce.Do(func() {
		data := lzxCab(b, semiRandom(42, 8<<20))
		dir, err := os.MkdirTemp("", "cab-bench-lzx-")
		if err != nil {
			b.Fatal(err)
		}
		lzxBenchPath = filepath.Join(dir, "lzx.cab")
		if err := os.WriteFile(lzxBenchPath, data, 0o644); err != nil {
			b.Fatal(err)
		}
	})
	return lzxBenchPath
}

func BenchmarkExtractMSZIP(b *testing.B) { benchCab(b, mszipBenchCab(b), true) }
func BenchmarkExtractLZX(b *testing.B)   { benchCab(b, lzxBenchCab(b), true) }
func BenchmarkExtractLZXFixture(b *testing.B) {
	benchCab(b, lzxFixture, true)
}
func BenchmarkWalkMSZIP(b *testing.B)      { benchCab(b, mszipBenchCab(b), false) }
func BenchmarkWalkLZX(b *testing.B)        { benchCab(b, lzxBenchCab(b), false) }
func BenchmarkWalkLZXFixture(b *testing.B) { benchCab(b, lzxFixture, false) }

// BenchmarkLZXDecode measures the LZX decoder alone on the fixture's
// frames, held in memory.
func BenchmarkLZXDecode(b *testing.B) {
	data := readFixture(b, lzxFixture)
	r, err := NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		b.Fatal(err)
	}
	fo := r.Folders[0]
	type frame struct {
		in []byte
		n  int
	}
	var frames []frame
	off := int(fo.DataOffset)
	for range fo.NumBlocks {
		cb := int(binary.LittleEndian.Uint16(data[off+4:]))
		frames = append(frames, frame{data[off+dataHeaderSize : off+dataHeaderSize+cb], int(binary.LittleEndian.Uint16(data[off+6:]))})
		off += dataHeaderSize + cb
	}
	var d lzxDecoder
	b.SetBytes(fo.UncompressedSize)
	b.ReportAllocs()
	for b.Loop() {
		d.reset(fo.Compression, fo.UncompressedSize)
		for _, f := range frames {
			if _, err := d.decode(f.in, f.n); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkOpen compares opening a plain cabinet with NewReader and with
// Search, whose fast path must cost no scan.
func BenchmarkOpen(b *testing.B) {
	for _, bc := range []struct {
		name string
		open func(io.ReaderAt, int64) error
	}{
		{"NewReader", func(r io.ReaderAt, n int64) error { _, err := NewReader(r, n); return err }},
		{"Search", func(r io.ReaderAt, n int64) error { _, err := Search(r, n); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f, size := openBench(b, mszipBenchCab(b))
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.open(f, size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var (
	benchCabDir = flag.String("benchcab.dir", "", "write firmware.bin and its LZX cabinet lzx.cab to `DIR`, for scripts/bench-cab.sh")
	benchCabMiB = flag.Int("benchcab.mib", 24, "the size of firmware.bin in `MiB` with -benchcab.dir")
)

// TestBenchCabinet: the semi-compressible data and its LZX cabinet that
// scripts/bench-cab.sh extracts read back as written. With -benchcab.dir
// they are written there, at -benchcab.mib (no packaged tool makes LZX
// cabinets); without, a small one is checked.
func TestBenchCabinet(t *testing.T) {
	dir, size := *benchCabDir, *benchCabMiB<<20
	if dir == "" {
		dir, size = t.TempDir(), 256<<10
	}
	data := semiRandom(42, size)
	cab := lzxCab(t, data)
	r := openBytes(t, cab)
	if got := readAll(t, r)["firmware.bin"]; !bytes.Equal(got, data) {
		t.Fatalf("the LZX cabinet reads back %d bytes, not the %d written", len(got), len(data))
	}
	for name, b := range map[string][]byte{"firmware.bin": data, "lzx.cab": cab} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
