package cab

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"
)

// openBytes parses a cabinet held in memory.
func openBytes(t testing.TB, b []byte) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	return r
}

// readAll returns every member's contents through Walk, and checks that
// File.Open agrees.
func readAll(t testing.TB, r *Reader) map[string][]byte {
	t.Helper()
	got := make(map[string][]byte)
	err := r.Walk(func(f *File, rd io.Reader) error {
		b, err := io.ReadAll(rd)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		if int64(len(b)) != f.Size {
			return fmt.Errorf("%s: read %d bytes, want %d", f.Name, len(b), f.Size)
		}
		got[f.Name] = b
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return got
}

func openFixture(t *testing.T, path string) *Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(f, st.Size())
	if err != nil {
		t.Fatalf("NewReader(%s): %v", path, err)
	}
	return r
}

func TestFixtures(t *testing.T) {
	tests := []struct {
		name, path, member, sha string
		size                    int64
		comp                    string
	}{
		{"LZX", lzxFixture, "yara.exe", "acb2f8e42147de389d9d5172ce97ce2782e564a01a8e9e636cf981a81d36884c", 866304, "LZX:21"},
		{"MSZIP", simpleFixture, "test.yml", "9e6cf99dfbb7c0a2871cf7770c32362f1554fb95c7253136e5ccddeb588f4406", 187, "MSZIP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := openFixture(t, tt.path)
			if len(r.Files) != 1 || r.Files[0].Name != tt.member || r.Files[0].Size != tt.size {
				t.Fatalf("members = %+v, want one %s of %d bytes", r.Files, tt.member, tt.size)
			}
			if got := r.Folders[0].Compression.String(); got != tt.comp {
				t.Errorf("compression = %s, want %s", got, tt.comp)
			}
			check := func(how string, b []byte) {
				sum := sha256.Sum256(b)
				if got := hex.EncodeToString(sum[:]); got != tt.sha {
					t.Errorf("%s: sha256 = %s, want %s", how, got, tt.sha)
				}
			}
			check("Walk", readAll(t, r)[tt.member])
			rc, err := r.Files[0].Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			check("Open", b)
		})
	}
}

func TestHeaderFields(t *testing.T) {
	c := &tCab{
		folders:       []tFolder{{comp: CompressMSZIP, reserve: []byte{1, 2, 3}}, {comp: CompressNone}},
		headerReserve: []byte("signature directory"),
		folderReserve: 4,
		dataReserve:   5,
		setID:         0xBEEF,
		index:         0,
		files: []tFile{
			{name: "plain.txt", data: []byte("hello"), folder: 0, attrs: AttrReadOnly | AttrArchive,
				date: (2021-1980)<<9 | 11<<5 | 2, time: 14<<11 | 34<<5 | 56/2},
			{name: "caf\xe9 \x80.txt", data: []byte("cp1252"), folder: 1},
			{name: "dir\\ünï.txt", data: []byte("utf8"), folder: 1, attrs: AttrNameUTF8 | AttrExec},
		},
	}
	b, _ := c.build(t)
	r := openBytes(t, b)
	if !bytes.Equal(r.HeaderReserve, c.headerReserve) {
		t.Errorf("HeaderReserve = %q, want %q", r.HeaderReserve, c.headerReserve)
	}
	if r.SetID != 0xBEEF || r.FolderReserveSize != 4 || r.DataReserveSize != 5 || r.Flags != flagReservePresent {
		t.Errorf("SetID %#x, reserves %d/%d, flags %#x", r.SetID, r.FolderReserveSize, r.DataReserveSize, r.Flags)
	}
	if r.CabinetSize != int64(len(b)) {
		t.Errorf("CabinetSize = %d, want %d", r.CabinetSize, len(b))
	}
	if !bytes.Equal(r.Folders[0].Reserve, []byte{1, 2, 3, 0}) {
		t.Errorf("folder reserve = %v", r.Folders[0].Reserve)
	}
	wantNames := []string{"plain.txt", "café €.txt", "dir\\ünï.txt"}
	for i, f := range r.Files {
		if f.Name != wantNames[i] {
			t.Errorf("name %d = %q, want %q", i, f.Name, wantNames[i])
		}
	}
	f := r.Files[0]
	if want := time.Date(2021, 11, 2, 14, 34, 56, 0, time.UTC); !f.Modified.Equal(want) {
		t.Errorf("Modified = %v, want %v", f.Modified, want)
	}
	if f.Mode() != 0o444 || r.Files[2].Mode() != 0o755 {
		t.Errorf("modes %v %v", f.Mode(), r.Files[2].Mode())
	}
	if r.Files[1].FolderIndex != 1 || r.Files[2].Offset != 6 {
		t.Errorf("folder index %d, offset %d", r.Files[1].FolderIndex, r.Files[2].Offset)
	}
	got := readAll(t, r)
	for i, tf := range c.files {
		if !bytes.Equal(got[wantNames[i]], tf.data) {
			t.Errorf("%s = %q, want %q", wantNames[i], got[wantNames[i]], tf.data)
		}
	}
}

func TestCompressionString(t *testing.T) {
	for c, want := range map[Compression]string{
		0x0000: "none", 0x0001: "MSZIP", 0x1503: "LZX:21", 0x0F03: "LZX:15",
		0x0012: "Quantum", 0x0007: "unknown(0x0007)",
	} {
		if got := c.String(); got != want {
			t.Errorf("Compression(%#04x).String() = %q, want %q", uint16(c), got, want)
		}
	}
}

func TestChecksumKnownAnswer(t *testing.T) {
	// Worked by hand from the MS-CAB algorithm: words are XORed, a
	// 3-byte tail is packed first byte highest, then the size fields.
	data := []byte{0x01, 0x02, 0x03, 0x04, 0x10, 0x20, 0x30}
	sizes := []byte{0x07, 0x00, 0x09, 0x00}
	want := uint32(0x04030201) ^ uint32(0x102030) ^ uint32(0x00090007)
	if got := blockChecksum(data, sizes); got != want {
		t.Errorf("checksum = %#08x, want %#08x", got, want)
	}
	long := semiRandom(7, 1001)
	var ref uint32
	i := 0
	for ; i+4 <= len(long); i += 4 {
		ref ^= uint32(long[i]) | uint32(long[i+1])<<8 | uint32(long[i+2])<<16 | uint32(long[i+3])<<24
	}
	ref ^= uint32(long[i]) // one byte left
	ref ^= 0x00090007
	if got := blockChecksum(long, sizes); got != ref {
		t.Errorf("checksum of 1001 bytes = %#08x, want %#08x", got, ref)
	}
}

// TestManyFilesWalkIsLinear checks that 1000 members in one folder are
// read by decoding the folder once.
func TestManyFilesWalkIsLinear(t *testing.T) {
	c := &tCab{folders: []tFolder{{comp: CompressMSZIP}}}
	for i := range 1000 {
		c.files = append(c.files, tFile{name: fmt.Sprintf("f%04d", i), data: semiRandom(uint64(i), 900)})
	}
	b, _ := c.build(t)
	counter := &countingReaderAt{r: bytes.NewReader(b)}
	r, err := NewReader(counter, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	scanned := counter.calls
	got := readAll(t, r)
	for _, f := range c.files {
		if !bytes.Equal(got[f.name], f.data) {
			t.Fatalf("%s differs", f.name)
		}
	}
	blocks := r.Folders[0].NumBlocks
	if reads := int(counter.calls - scanned); reads != blocks {
		t.Errorf("Walk made %d reads for %d data blocks; want one per block", reads, blocks)
	}
}

func TestOpenSkipsToMember(t *testing.T) {
	c := &tCab{folders: []tFolder{{comp: CompressMSZIP, blockSize: 1000}, {comp: CompressNone, blockSize: 777}}}
	for i := range 20 {
		c.files = append(c.files, tFile{name: fmt.Sprintf("f%d", i), data: semiRandom(uint64(i), 100*i), folder: i % 2})
	}
	b, _ := c.build(t)
	r := openBytes(t, b)
	// Open members in reverse order: each decodes its folder from the start.
	for i := len(r.Files) - 1; i >= 0; i-- {
		rc, err := r.Files[i].Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if !bytes.Equal(got, c.files[i].data) {
			t.Errorf("member %d differs", i)
		}
		if _, err := rc.Read(make([]byte, 1)); err == nil {
			t.Errorf("Read after Close succeeded")
		}
	}
}

func TestWalkPartialReadsAndOverlap(t *testing.T) {
	c := &tCab{folders: []tFolder{{comp: CompressMSZIP, blockSize: 4096}}}
	for i := range 6 {
		c.files = append(c.files, tFile{name: fmt.Sprintf("f%d", i), data: semiRandom(uint64(i), 10000)})
	}
	b, lay := c.build(t)
	// Make member 5 a copy of member 1's range (offset 10000).
	binaryPut32(b, lay.fileEntries[5]+4, 10000)
	r := openBytes(t, b)
	seen := 0
	err := r.Walk(func(f *File, rd io.Reader) error {
		seen++
		if f.Name == "f2" {
			return nil // read nothing
		}
		buf := make([]byte, 10)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return err
		}
		want := c.files[f.index].data
		if f.index == 5 {
			want = c.files[1].data
		}
		if !bytes.Equal(buf, want[:10]) {
			return fmt.Errorf("%s: wrong first bytes", f.Name)
		}
		return nil
	})
	if err != nil || seen != 6 {
		t.Fatalf("Walk: %v after %d members", err, seen)
	}
	stop := errors.New("stop")
	if err := r.Walk(func(*File, io.Reader) error { return stop }); err != stop {
		t.Errorf("Walk returned %v, want the callback's error", err)
	}
	var saved io.Reader
	r.Walk(func(_ *File, rd io.Reader) error { saved = rd; return stop })
	if _, err := saved.Read(make([]byte, 1)); err == nil {
		t.Errorf("reading a member after its callback returned succeeded")
	}
}

func binaryPut32(b []byte, off int, v uint32) {
	b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func binaryPut16(b []byte, off int, v uint16) {
	b[off], b[off+1] = byte(v), byte(v>>8)
}

// TestConcurrentOpen reads members of one Reader from several goroutines
// (run with -race to check for shared state).
func TestConcurrentOpen(t *testing.T) {
	c := &tCab{folders: []tFolder{{comp: CompressMSZIP}, {comp: CompressNone}}}
	for i := range 8 {
		c.files = append(c.files, tFile{name: fmt.Sprintf("f%d", i), data: semiRandom(uint64(i), 40000), folder: i % 2})
	}
	b, _ := c.build(t)
	r := openBytes(t, b)
	errs := make(chan error, len(r.Files)+1)
	for i, f := range r.Files {
		go func() {
			rc, err := f.Open()
			if err != nil {
				errs <- err
				return
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err == nil && !bytes.Equal(got, c.files[i].data) {
				err = fmt.Errorf("%s differs", f.Name)
			}
			errs <- err
		}()
	}
	go func() { errs <- r.Walk(func(*File, io.Reader) error { return nil }) }()
	for range len(r.Files) + 1 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
