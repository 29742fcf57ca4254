package cab

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	searchBasic   = "testdata/libmspack/search_basic.cab"
	searchTricky1 = "testdata/libmspack/search_tricky1.cab"
)

// countingReaderAt counts the calls and bytes read, and fails every read
// once more than limit bytes were asked for (limit 0: no limit).
type countingReaderAt struct {
	r            io.ReaderAt
	calls, bytes int64
	limit        int64
}

var errTestReadLimit = errors.New("the test's read limit was reached")

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.calls++
	c.bytes += int64(len(p))
	if c.limit > 0 && c.bytes > c.limit {
		return 0, errTestReadLimit
	}
	return c.r.ReadAt(p, off)
}

// searchBytes runs Search on data held in memory.
func searchBytes(data []byte, lim Limits) ([]*Reader, error) {
	return SearchLimits(bytes.NewReader(data), int64(len(data)), lim)
}

// smallCab returns a small stored cabinet whose members are named after
// tag.
func smallCab(t testing.TB, tag string) []byte {
	t.Helper()
	c := tCab{folders: []tFolder{{comp: CompressMSZIP}}, files: []tFile{
		{name: tag + ".txt", data: []byte("cabinet " + tag + "\n"), date: (2024-1980)<<9 | 5<<5 | 17, time: 13<<11 | 7<<5 | 30/2},
		{name: `sub\` + tag + ".bin", data: semiRandom(uint64(len(tag)), 800), date: (2024-1980)<<9 | 5<<5 | 17},
	}}
	b, _ := c.build(t)
	return b
}

// packCab returns a cabinet made by Write, as `deviceupdate pack` makes
// them.
func packCab(t testing.TB) []byte {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "pack-*.cab")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{"CX600/CPE.xml": []byte("<Update/>"), "CX600/CPE.nbt": semiRandom(5, 1500)}
	if err := Write(f, memberFiles(files, []string{"CX600/CPE.xml", "CX600/CPE.nbt"}), CompressMSZIP); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// offsets returns where the cabinets start.
func offsets(cabs []*Reader) []int64 {
	var out []int64
	for _, c := range cabs {
		out = append(out, c.Offset)
	}
	return out
}

// TestSearchLibmspack: libmspack's own search test files give what its
// test suite (cabd_search_test_02, _03) expects of them.
func TestSearchLibmspack(t *testing.T) {
	tests := []struct {
		file    string
		offsets []int64
	}{
		{searchBasic, []int64{6, 265}},
		{searchTricky1, []int64{4}}, // the "MSCF" at 0 is not a cabinet
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			cabs, err := searchBytes(readFixture(t, tt.file), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := offsets(cabs); fmt.Sprint(got) != fmt.Sprint(tt.offsets) {
				t.Fatalf("cabinets at %v, want %v", got, tt.offsets)
			}
			for _, c := range cabs {
				if len(c.Files) != 2 || c.Files[0].Name != "hello.c" || c.Files[1].Name != "welcome.c" {
					t.Fatalf("cabinet at %d: members %v, want hello.c and welcome.c", c.Offset, c.Files)
				}
				got := readAll(t, c)
				if !bytes.HasPrefix(got["hello.c"], []byte("#include <stdio.h>")) || len(got["welcome.c"]) != 74 {
					t.Errorf("cabinet at %d: hello.c %q, welcome.c of %d bytes", c.Offset, got["hello.c"], len(got["welcome.c"]))
				}
			}
		})
	}
}

// searchCases are files holding cabinets in the ways Search must find
// them, each with the offsets of its cabinets.
func searchCases(t testing.TB) []struct {
	name    string
	data    []byte
	offsets []int64
} {
	a, b, pack := smallCab(t, "a"), smallCab(t, "bb"), packCab(t)
	junk := semiRandom(77, 5000)
	nested := tCab{folders: []tFolder{{comp: CompressNone}}, files: []tFile{{name: "inner.cab", data: a, date: (2025-1980)<<9 | 1<<5 | 2}}}
	outer, _ := nested.build(t)
	falseHeader := b[:headerSize] // plausible, but its tables are junk
	return []struct {
		name    string
		data    []byte
		offsets []int64
	}{
		{"libmspack search_basic", readFixture(t, searchBasic), []int64{6, 265}},
		{"libmspack search_tricky1", readFixture(t, searchTricky1), []int64{4}},
		{"plain cabinet", a, []int64{0}},
		{"pack-made cabinet behind junk", cat(junk, pack, junk), []int64{5000}},
		{"two cabinets back to back", cat(a, b), []int64{0, int64(len(a))}},
		{"cabinet behind a false header", cat(junk[:100], falseHeader, junk[:50], b), []int64{100 + headerSize + 50}},
		{"cabinet across the first scan window", cat(semiRandom(1, searchChunk-20), a), []int64{searchChunk - 20}},
		{"signature cut by the first scan window", cat(semiRandom(1, searchChunk-2), a), []int64{searchChunk - 2}},
		{"cabinet inside a stored cabinet", outer, []int64{0}},
		{"stored cabinet after junk", cat(junk[:10], outer), []int64{10}},
	}
}

func TestSearch(t *testing.T) {
	for _, tt := range searchCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			cabs, err := searchBytes(tt.data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := offsets(cabs); fmt.Sprint(got) != fmt.Sprint(tt.offsets) {
				t.Fatalf("cabinets at %v, want %v", got, tt.offsets)
			}
			for _, c := range cabs {
				readAll(t, c) // every member decodes, through Walk and Open
			}
		})
	}
}

// cabextractList runs `cabextract -l` on path and returns its member rows
// ("size | date time | name"), in order.
func cabextractList(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command(needTool(t, "cabextract"), "-l", path).CombinedOutput()
	if err != nil {
		t.Fatalf("cabextract -l: %v\n%s", err, out)
	}
	var rows []string
	for _, line := range strings.Split(string(out), "\n") {
		cols := strings.Split(line, " | ")
		if len(cols) != 3 || strings.TrimSpace(cols[0]) == "File size" {
			continue
		}
		rows = append(rows, strings.TrimSpace(cols[0])+" | "+cols[1]+" | "+cols[2])
	}
	return rows
}

// TestSearchMatchesCabextract: for every search case, cabextract lists
// the same members, in the same order, as the cabinets Search finds.
func TestSearchMatchesCabextract(t *testing.T) {
	for _, tt := range searchCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "file.bin")
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			cabs, err := searchBytes(tt.data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			var ours []string
			for _, c := range cabs {
				for _, f := range c.Files {
					ours = append(ours, strconv.FormatInt(f.Size, 10)+" | "+f.Modified.Format("02.01.2006 15:04:05")+" | "+strings.ReplaceAll(f.Name, `\`, "/"))
				}
			}
			theirs := cabextractList(t, path)
			if strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
				t.Errorf("Search finds\n%s\ncabextract -l lists\n%s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
			}
		})
	}
}

// TestSearchPlainCabinetFastPath: a file that is one cabinet costs Search
// one 36-byte read more than NewReader, and no scanning.
func TestSearchPlainCabinetFastPath(t *testing.T) {
	for _, data := range [][]byte{smallCab(t, "a"), readFixture(t, lzxFixture)} {
		plain := &countingReaderAt{r: bytes.NewReader(data)}
		if _, err := NewReader(plain, int64(len(data))); err != nil {
			t.Fatal(err)
		}
		search := &countingReaderAt{r: bytes.NewReader(data)}
		cabs, err := Search(search, int64(len(data)))
		if err != nil || len(cabs) != 1 || cabs[0].Offset != 0 {
			t.Fatalf("Search = %v, %v", offsets(cabs), err)
		}
		if search.calls != plain.calls+1 || search.bytes != plain.bytes+headerSize {
			t.Errorf("Search made %d reads of %d bytes; NewReader %d reads of %d bytes", search.calls, search.bytes, plain.calls, plain.bytes)
		}
	}
}

// costlyFalseHeaders returns n plausible cabinet headers, each with one
// folder of 65535 empty data blocks (which the reader walks) and one file
// its folder cannot hold (so each is refused after the walk), followed by
// the blocks.
func costlyFalseHeaders(n int) []byte {
	le := binary.LittleEndian
	const entry = headerSize + folderSize + fileSize + 2
	blocks := 65535 * dataHeaderSize
	size := n*entry + blocks
	b := make([]byte, size)
	for i := range n {
		h := b[i*entry:]
		copy(h, "MSCF")
		le.PutUint32(h[8:], uint32(size-i*entry))
		le.PutUint32(h[16:], headerSize+folderSize)
		h[24], h[25] = 3, 1
		le.PutUint16(h[26:], 1)
		le.PutUint16(h[28:], 1)
		le.PutUint32(h[headerSize:], uint32(size-blocks-i*entry)) // the blocks, after all headers
		le.PutUint16(h[headerSize+4:], 65535)
		le.PutUint32(h[headerSize+folderSize:], 1) // one byte, in a folder of none
		h[headerSize+folderSize+fileSize] = 'x'
	}
	return b
}

// TestSearchHostile: files built to make a search slow, large or wrong
// get a clear error after bounded reading.
func TestSearchHostile(t *testing.T) {
	a := smallCab(t, "a")
	truncated := a[:len(a)-10]
	empty := tCab{folders: []tFolder{{comp: CompressNone}}}
	emptyCab, _ := empty.build(t)
	spam := bytes.Repeat([]byte("MSCF"), 1<<18)
	costly := costlyFalseHeaders(20000)
	badFolder := bytes.Clone(a) // the first member names folder 7 of 1
	binary.LittleEndian.PutUint16(badFolder[binary.LittleEndian.Uint32(a[16:])+8:], 7)
	tests := []struct {
		name    string
		data    []byte
		lim     Limits
		want    error  // what the error wraps
		text    string // what it says
		maxRead int64  // bytes Search may read
	}{
		{"nothing but MSCF", spam, Limits{}, ErrUnsupported, "cabinet format version 83.77", 2 * int64(len(spam))},
		{"MSCF after one byte", cat([]byte("x"), spam), Limits{}, ErrNoCabinet, "no cabinet found", 2 * int64(len(spam))},
		{"no signature", semiRandom(3, 300000), Limits{}, ErrNoCabinet, "no cabinet found", 300000 + 100},
		{"empty file", nil, Limits{}, ErrNoCabinet, "no cabinet found", 0},
		{"a signature alone", []byte("MSCF"), Limits{}, ErrNoCabinet, "no cabinet found", 4},
		{"costly false headers", costly, Limits{}, ErrLimit, "cabinet search stopped", 4*int64(len(costly)) + 32<<20},
		{"more cabinets than the limit", bytes.Repeat(a, 5), Limits{MaxCabinets: 3}, ErrLimit, "more than 3 cabinets", 0},
		{"damaged plain cabinet", truncated, Limits{}, ErrFormat, "does not fit the file size", 0},
		{"cabinet without files", emptyCab, Limits{}, ErrFormat, "holds no files", 0},
		{"damaged cabinet behind junk", cat(semiRandom(1, 1000), badFolder), Limits{}, ErrNoCabinet, "1 cabinet header refused, the first at offset 0x3e8: cab: file 0 (\"a.txt\")", 0},
		{"limit exceeded behind junk", cat(semiRandom(1, 1000), a), Limits{MaxFiles: 1}, ErrNoCabinet, "2 files exceed the limit of 1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra := &countingReaderAt{r: bytes.NewReader(tt.data), limit: tt.maxRead}
			cabs, err := SearchLimits(ra, int64(len(tt.data)), tt.lim)
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.text) {
				t.Fatalf("Search = %v, %v; want an error wrapping %v saying %q", offsets(cabs), err, tt.want, tt.text)
			}
			if errors.Is(err, ErrNoCabinet) && strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error of several lines: %q", err)
			}
		})
	}
}

// TestSearchReadError: a read error ends the search with that error.
func TestSearchReadError(t *testing.T) {
	data := cat(semiRandom(1, 3*searchChunk), smallCab(t, "a"))
	ra := &countingReaderAt{r: bytes.NewReader(data), limit: searchChunk + 10}
	if _, err := Search(ra, int64(len(data))); !errors.Is(err, errTestReadLimit) {
		t.Fatalf("Search = %v, want the read error", err)
	}
}

// TestExtractAll: the cabinets of one file are extracted together; a name
// two of them share is refused before anything is written, where
// cabextract would overwrite.
func TestExtractAll(t *testing.T) {
	damaged := smallCab(t, "a")
	damaged[binary.LittleEndian.Uint32(damaged[headerSize:])+dataHeaderSize+5] ^= 0xFF
	tests := []struct {
		name  string
		data  []byte
		files []string
		err   string
		want  error
	}{
		{"two cabinets", cat(smallCab(t, "a"), []byte("junk"), smallCab(t, "bb")), []string{"a.txt", "sub/a.bin", "bb.txt", "sub/bb.bin"}, "", nil},
		{"libmspack search_basic", readFixture(t, searchBasic), nil, `"hello.c" names member 0 of the cabinet at offset 6 and member 0 of the cabinet at offset 265; one would overwrite the other`, ErrUnsafeName},
		{"a name and a folder", cat(smallCab(t, "a"), smallCab(t, `a.txt\b`)), nil, "is also the directory of", ErrUnsafeName},
		{"damaged data behind junk", cat([]byte("junk"), damaged), nil, `cabinet at offset 4: cab: extracting file 0 ("a.txt"): cab: folder 0: data block 0 at offset 0x5c: checksum mismatch`, ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cabs, err := searchBytes(tt.data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			written, err := ExtractAll(dir, cabs)
			if tt.err != "" {
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ExtractAll = %v, want an error saying %q", err, tt.err)
				}
				if entries, _ := os.ReadDir(dir); len(entries) != 0 {
					t.Errorf("a refused extraction left %v", entries)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(written) != len(tt.files) {
				t.Errorf("wrote %v, want %v", written, tt.files)
			}
			got := readTree(t, dir)
			for _, name := range tt.files {
				if _, ok := got[name]; !ok {
					t.Errorf("%s missing from %v", name, written)
				}
			}
		})
	}
}
