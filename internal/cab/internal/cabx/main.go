// Command cabx extracts a cabinet with package cab the way cabextract
// does: it reads the cabinet from disk and writes every member below a
// directory. scripts/bench-cab.sh uses it until the deviceupdate CLI has a
// "cab extract" command; it also generates the benchmark's test data.
//
// Usage:
//
//	cabx [-d DIR] FILE.cab           extract FILE.cab below DIR (default .)
//	cabx -l FILE.cab                 list folders and members
//	cabx -gen MIB OUTFILE            write MIB MiB of semi-compressible data
//	cabx -mklzx BITS -o OUT.cab FILE make an LZX cabinet of FILE, window 2^BITS
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/deviceupdate/deviceupdate/internal/cab"
	"github.com/deviceupdate/deviceupdate/internal/cab/internal/lzxenc"
)

func main() {
	dir := flag.String("d", ".", "extract below `DIR`")
	list := flag.Bool("l", false, "list the members instead of extracting them")
	gen := flag.Int("gen", 0, "write `MIB` MiB of semi-compressible test data to the named file")
	mklzx := flag.Int("mklzx", 0, "make an LZX cabinet of the named file with a window of 2^`BITS` bytes")
	out := flag.String("o", "", "the cabinet -mklzx writes")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: cabx [-l] [-d DIR] FILE.cab | cabx -gen MIB OUTFILE | cabx -mklzx BITS -o OUT.cab FILE")
		os.Exit(2)
	}
	var err error
	switch {
	case *gen > 0:
		err = os.WriteFile(flag.Arg(0), semiRandom(42, *gen<<20), 0o644)
	case *mklzx > 0:
		err = makeLZX(flag.Arg(0), *out, *mklzx)
	default:
		err = run(flag.Arg(0), *dir, *list)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cabx:", err)
		os.Exit(1)
	}
}

func run(name, dir string, list bool) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	r, err := cab.NewReader(f, st.Size())
	if err != nil {
		return err
	}
	if list {
		for _, fo := range r.Folders {
			fmt.Printf("folder %d: %s, %d blocks, %d -> %d bytes\n", fo.Index, fo.Compression, fo.NumBlocks, fo.CompressedSize, fo.UncompressedSize)
		}
		for _, m := range r.Files {
			fmt.Printf("%10d %s %s\n", m.Size, m.Modified.Format("2006-01-02 15:04:05"), m.Name)
		}
		return nil
	}
	_, err = r.ExtractTo(dir)
	return err
}

// semiRandom returns n bytes that deflate to roughly two thirds: words
// from a small vocabulary mixed with runs of random bytes, like a firmware
// image with text and binary parts.
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

// makeLZX writes a cabinet holding the file src in one LZX folder, with
// verbatim and aligned offset blocks.
func makeLZX(src, dst string, wbits int) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if len(data) > 1<<31 {
		return fmt.Errorf("%s: too large", src)
	}
	frames, err := lzxenc.Compress(data, wbits, []int{lzxenc.Verbatim, lzxenc.Aligned})
	if err != nil {
		return err
	}
	if len(frames) > 65535 {
		return fmt.Errorf("%s: too many data blocks", src)
	}
	le := binary.LittleEndian
	name := filepath.Base(src)
	const header, folder, file = 36, 8, 16
	dataStart := header + folder + file + len(name) + 1
	var b bytes.Buffer
	b.WriteString("MSCF")
	b.Write(make([]byte, header-4))
	b.Write(make([]byte, folder+file))
	b.WriteString(name)
	b.WriteByte(0)
	h := b.Bytes()
	le.PutUint32(h[16:], header+folder) // coffFiles
	h[24], h[25] = 3, 1                 // version 1.3
	le.PutUint16(h[26:], 1)             // one folder
	le.PutUint16(h[28:], 1)             // one file
	le.PutUint32(h[header:], uint32(dataStart))
	le.PutUint16(h[header+4:], uint16(len(frames)))
	le.PutUint16(h[header+6:], uint16(cab.CompressLZX)|uint16(wbits)<<8)
	le.PutUint32(h[header+folder:], uint32(len(data)))
	for i, fr := range frames {
		var blk [8]byte
		le.PutUint16(blk[4:], uint16(len(fr)))
		le.PutUint16(blk[6:], uint16(min(32768, len(data)-i*32768)))
		le.PutUint32(blk[0:], checksum(fr, blk[4:8]))
		b.Write(blk[:])
		b.Write(fr)
	}
	le.PutUint32(b.Bytes()[8:], uint32(b.Len()))
	return os.WriteFile(dst, b.Bytes(), 0o644)
}

// checksum is the CFDATA checksum of MS-CAB.
func checksum(data, sizes []byte) uint32 {
	var sum uint32
	i := 0
	for ; i+4 <= len(data); i += 4 {
		sum ^= binary.LittleEndian.Uint32(data[i:])
	}
	var last uint32
	for _, c := range data[i:] {
		last = last<<8 | uint32(c)
	}
	return sum ^ last ^ binary.LittleEndian.Uint32(sizes)
}
