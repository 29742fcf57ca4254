package cab

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// baseCab is the valid cabinet the corruption tests start from: an MSZIP
// folder of three blocks and a stored folder.
func baseCab(t testing.TB) (tCab, []byte, tLayout) {
	c := tCab{
		folders: []tFolder{{comp: CompressMSZIP, blockSize: 4000}, {comp: CompressNone, blockSize: 3000}},
		files: []tFile{
			{name: "a.bin", data: semiRandom(1, 3000), folder: 0},
			{name: "b.bin", data: semiRandom(2, 6000), folder: 0},
			{name: "c.bin", data: semiRandom(3, 5000), folder: 1},
		},
	}
	b, lay := c.build(t)
	return c, b, lay
}

// extractErr parses b and, if that succeeds, reads every member.
func extractErr(b []byte) (openErr, readErr error) {
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return err, nil
	}
	return nil, r.Walk(func(_ *File, rd io.Reader) error {
		_, err := io.Copy(io.Discard, rd)
		return err
	})
}

func TestCorruptCabinets(t *testing.T) {
	const (
		atOpen    = "open"
		atExtract = "extract"
	)
	tests := []struct {
		name    string
		corrupt func(b []byte, lay tLayout) []byte
		stage   string
		want    error
		msg     string // part of the message, if not empty
	}{
		{"bad signature", func(b []byte, _ tLayout) []byte { b[0] = 'X'; return b }, atOpen, ErrFormat, "bad signature"},
		{"version 1.2", func(b []byte, _ tLayout) []byte { b[24] = 2; return b }, atOpen, ErrUnsupported, "version 1.2"},
		{"cbCabinet beyond the file", func(b []byte, _ tLayout) []byte { binaryPut32(b, 8, uint32(len(b)+1)); return b }, atOpen, ErrFormat, "declared cabinet size"},
		{"cbCabinet cuts the data", func(b []byte, _ tLayout) []byte { binaryPut32(b, 8, uint32(len(b)-10)); return b }, atOpen, ErrFormat, "past the end"},
		{"cbCabinet below the header", func(b []byte, _ tLayout) []byte { binaryPut32(b, 8, 20); return b }, atOpen, ErrFormat, ""},
		{"cFolders lies", func(b []byte, _ tLayout) []byte { binaryPut16(b, 26, 3000); return b }, atOpen, ErrFormat, "do not fit"},
		{"cFolders above the limit", func(b []byte, _ tLayout) []byte { binaryPut16(b, 26, 60000); return b }, atOpen, ErrLimit, "folders"},
		{"cFiles lies", func(b []byte, _ tLayout) []byte { binaryPut16(b, 28, 5000); return b }, atOpen, ErrFormat, "do not fit"},
		{"coffFiles beyond the file", func(b []byte, _ tLayout) []byte { binaryPut32(b, 16, uint32(len(b)+100)); return b }, atOpen, ErrFormat, "file table"},
		{"coffFiles inside the header", func(b []byte, _ tLayout) []byte { binaryPut32(b, 16, 4); return b }, atOpen, ErrFormat, "file table"},
		{"coffFiles at the end", func(b []byte, _ tLayout) []byte { binaryPut32(b, 16, uint32(len(b)-20)); return b }, atOpen, ErrFormat, ""},
		{"coffCabStart beyond the file", func(b []byte, lay tLayout) []byte {
			binaryPut32(b, lay.folderTable, uint32(len(b)+5))
			return b
		}, atOpen, ErrFormat, "data block 0"},
		{"coffCabStart negative when signed", func(b []byte, lay tLayout) []byte {
			binaryPut32(b, lay.folderTable, 0xFFFFFFF0)
			return b
		}, atOpen, ErrFormat, "data block 0"},
		{"cCFData lies", func(b []byte, lay tLayout) []byte { binaryPut16(b, lay.folderTable+4, 60000); return b }, atOpen, ErrFormat, "data blocks"},
		{"cCFData one too many", func(b []byte, lay tLayout) []byte { binaryPut16(b, lay.folderTable+4, 4); return b }, atOpen, ErrFormat, ""},
		{"folder index out of range", func(b []byte, lay tLayout) []byte {
			binaryPut16(b, lay.fileEntries[0]+8, 7)
			return b
		}, atOpen, ErrFormat, "folder index 7 out of range"},
		{"file range overruns its folder", func(b []byte, lay tLayout) []byte {
			binaryPut32(b, lay.fileEntries[1], 1<<20)
			return b
		}, atOpen, ErrFormat, "overruns folder 0"},
		{"file offset overruns its folder", func(b []byte, lay tLayout) []byte {
			binaryPut32(b, lay.fileEntries[2]+4, 0xFFFFFF00)
			return b
		}, atOpen, ErrFormat, "overruns folder 1"},
		{"file size above the limit", func(b []byte, lay tLayout) []byte {
			binaryPut32(b, lay.fileEntries[1], 0xFFFFFFFF)
			return b
		}, atOpen, ErrLimit, "size"},
		{"cbUncomp above 32768", func(b []byte, lay tLayout) []byte {
			binaryPut16(b, lay.blocks[0][0]+6, 40000)
			return b
		}, atOpen, ErrFormat, "exceeds 32768"},
		{"cbData above the maximum", func(b []byte, lay tLayout) []byte {
			binaryPut16(b, lay.blocks[0][0]+4, 0xFFFF)
			return b
		}, atOpen, ErrFormat, "compressed size"},
		{"stored block sizes disagree", func(b []byte, lay tLayout) []byte {
			binaryPut16(b, lay.blocks[1][0]+6, 100)
			return b
		}, atOpen, ErrFormat, "stored block"},
		{"LZX window too large", func(b []byte, lay tLayout) []byte {
			binaryPut16(b, lay.folderTable+6, 0x1603)
			return b
		}, atOpen, ErrFormat, "LZX window"},
		{"bad data block checksum", func(b []byte, lay tLayout) []byte {
			b[lay.blocks[0][1]+lay.dataHdr+5] ^= 0x40
			return b
		}, atExtract, ErrChecksum, "folder 0: data block 1 at offset"},
		{"bad stored block checksum", func(b []byte, lay tLayout) []byte {
			b[lay.blocks[1][1]+lay.dataHdr] ^= 1
			return b
		}, atExtract, ErrChecksum, "folder 1: data block 1"},
		{"missing CK signature", func(b []byte, lay tLayout) []byte {
			b[lay.blocks[0][0]+lay.dataHdr] = 'X'
			fixChecksum(b, lay.blocks[0][0], 0)
			return b
		}, atExtract, ErrFormat, "CK signature"},
		{"block inflates past its declared size", func(b []byte, lay tLayout) []byte {
			last := lay.blocks[0][2]
			binaryPut16(b, last+6, 1000-10) // 9000 bytes = 4000+4000+1000
			fixChecksum(b, last, 0)
			binaryPut32(b, lay.fileEntries[1], 6000-10)
			return b
		}, atExtract, ErrFormat, "past its declared size"},
		{"block inflates short of its declared size", func(b []byte, lay tLayout) []byte {
			last := lay.blocks[0][2]
			binaryPut16(b, last+6, 1000+10)
			fixChecksum(b, last, 0)
			return b
		}, atExtract, ErrFormat, "not its declared"},
		{"deflate data cut short", func(b []byte, lay tLayout) []byte {
			first := lay.blocks[0][0]
			cb := int(b[first+4]) | int(b[first+5])<<8
			binaryPut16(b, first+4, uint16(cb/2))
			fixChecksum(b, first, 0)
			// Drop the rest so the next block follows.
			return append(b[:first+lay.dataHdr+cb/2:first+lay.dataHdr+cb/2], b[first+lay.dataHdr+cb:]...)
		}, atOpen, ErrFormat, ""},
		{"deflate garbage", func(b []byte, lay tLayout) []byte {
			first := lay.blocks[0][0] + lay.dataHdr
			for i := first + 2; i < first+40; i++ {
				b[i] = 0xFF
			}
			fixChecksum(b, lay.blocks[0][0], 0)
			return b
		}, atExtract, ErrFormat, "folder 0: data block 0"},
		{"Quantum folder", func(b []byte, lay tLayout) []byte {
			binaryPut16(b, lay.folderTable+6, 0x1202)
			return b
		}, atExtract, ErrUnsupported, "Quantum"},
		{"unknown compression", func(b []byte, lay tLayout) []byte {
			binaryPut16(b, lay.folderTable+6, 0x0007)
			return b
		}, atExtract, ErrUnsupported, "unknown compression"},
		{"file continued from the previous cabinet", func(b []byte, lay tLayout) []byte {
			binaryPut16(b, lay.fileEntries[0]+8, ifoldContinuedFromPrev)
			return b
		}, atExtract, ErrUnsupported, "another cabinet"},
		{"file continued into the next cabinet", func(b []byte, lay tLayout) []byte {
			binaryPut16(b, lay.fileEntries[2]+8, ifoldContinuedToNext)
			return b
		}, atExtract, ErrUnsupported, "another cabinet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, b, lay := baseCab(t)
			b = tt.corrupt(b, lay)
			openErr, readErr := extractErr(b)
			err := openErr
			if tt.stage == atExtract {
				if openErr != nil {
					t.Fatalf("NewReader: %v; want it to succeed and extraction to fail", openErr)
				}
				err = readErr
			}
			if err == nil {
				t.Fatalf("no error at %s, want %v", tt.stage, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %q does not wrap %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			var fe *FormatError
			if errors.Is(err, ErrFormat) && strings.Contains(err.Error(), "offset") && !errors.As(err, &fe) {
				t.Errorf("format error %q is not a *FormatError", err)
			}
		})
	}
}

// TestTruncatedEverywhere cuts the cabinet at every length up to the end
// of its tables and a little into the data, both keeping and fixing the
// declared size, and requires ErrFormat each time.
func TestTruncatedEverywhere(t *testing.T) {
	_, b, lay := baseCab(t)
	limit := lay.blocks[0][0] + 64
	for n := 0; n < limit; n++ {
		for _, fix := range []bool{false, true} {
			c := bytes.Clone(b[:n])
			if fix && n >= 12 {
				binaryPut32(c, 8, uint32(n))
			}
			_, err := NewReader(bytes.NewReader(c), int64(n))
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("prefix of %d bytes (size fixed: %v): error %v, want ErrFormat", n, fix, err)
			}
		}
	}
	// Cutting into the data must fail too, when reading at the latest.
	for n := limit; n < len(b); n += 97 {
		c := bytes.Clone(b[:n])
		binaryPut32(c, 8, uint32(n))
		openErr, readErr := extractErr(c)
		if err := errors.Join(openErr, readErr); !errors.Is(err, ErrFormat) {
			t.Fatalf("prefix of %d bytes: error %v, want ErrFormat", n, err)
		}
	}
}

func TestHeaderReserveLimits(t *testing.T) {
	c := tCab{folders: []tFolder{{comp: CompressNone}}, headerReserve: []byte("x"),
		files: []tFile{{name: "a", data: []byte("abc")}}}
	b, _ := c.build(t)
	binaryPut16(b, headerSize, 60001)
	if _, err := NewReader(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrFormat) {
		t.Errorf("header reserve of 60001 bytes: %v, want ErrFormat", err)
	}
	binaryPut16(b, headerSize, 50000)
	if _, err := NewReader(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrFormat) {
		t.Errorf("header reserve past the end: %v, want ErrFormat", err)
	}
}

func TestLongName(t *testing.T) {
	c := tCab{folders: []tFolder{{comp: CompressNone}},
		files: []tFile{{name: strings.Repeat("n", 300), data: []byte("abc")}}}
	b, _ := c.build(t)
	if _, err := NewReader(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "name longer") {
		t.Errorf("300-byte name: %v, want ErrFormat", err)
	}
}

func TestMultiCabinetSet(t *testing.T) {
	c := tCab{
		folders: []tFolder{{comp: CompressMSZIP}, {comp: CompressNone}, {comp: CompressMSZIP}},
		prev:    [2]string{"disk1.cab", "Disk 1"},
		next:    [2]string{"disk3.cab", "Disk 3"},
		index:   1,
		files: []tFile{
			{name: "first", data: []byte("continued"), folder: 0},
			{name: "middle", data: []byte("complete"), folder: 1},
			{name: "last", data: []byte("continues"), folder: 2},
		},
	}
	b, _ := c.build(t)
	r := openBytes(t, b)
	if r.PrevCabinet != "disk1.cab" || r.PrevDisk != "Disk 1" || r.NextCabinet != "disk3.cab" || r.NextDisk != "Disk 3" || r.CabinetIndex != 1 {
		t.Errorf("set fields: %q %q %q %q %d", r.PrevCabinet, r.PrevDisk, r.NextCabinet, r.NextDisk, r.CabinetIndex)
	}
	for _, tt := range []struct {
		file int
		ok   bool
	}{{0, false}, {1, true}, {2, false}} {
		rc, err := r.Files[tt.file].Open()
		if tt.ok {
			if err != nil {
				t.Errorf("%s: %v", r.Files[tt.file].Name, err)
				continue
			}
			got, _ := io.ReadAll(rc)
			if string(got) != "complete" {
				t.Errorf("middle = %q", got)
			}
			continue
		}
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "cabinet") {
			t.Errorf("%s: error %v, want ErrUnsupported naming the other cabinet", r.Files[tt.file].Name, err)
		}
	}
	dir := t.TempDir()
	if _, err := r.ExtractTo(dir); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ExtractTo: %v, want ErrUnsupported", err)
	}
	if entries, _ := readDirNames(dir); len(entries) != 0 {
		t.Errorf("ExtractTo wrote %v before failing", entries)
	}
}

func TestLimits(t *testing.T) {
	c := tCab{folders: []tFolder{{comp: CompressMSZIP}}}
	for i := range 10 {
		c.files = append(c.files, tFile{name: string(rune('a' + i)), data: bytes.Repeat([]byte{0}, 30000)})
	}
	b, _ := c.build(t)
	for _, tt := range []struct {
		name string
		lim  Limits
		ok   bool
	}{
		{"defaults", Limits{}, true},
		{"member count", Limits{MaxFiles: 9}, false},
		{"folder count", Limits{MaxFolders: 1}, true},
		{"member size", Limits{MaxFileSize: 29999}, false},
		{"total size", Limits{MaxTotalSize: 299999}, false},
		{"compression ratio", Limits{MaxRatio: 50}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReaderLimits(bytes.NewReader(b), int64(len(b)), tt.lim)
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok && !errors.Is(err, ErrLimit) {
				t.Fatalf("error %v, want ErrLimit", err)
			}
		})
	}
}

// TestOverlapBudget makes 50 members share the last byte of a folder:
// Walk decodes the folder again for each, until the total size limit.
func TestOverlapBudget(t *testing.T) {
	c := tCab{folders: []tFolder{{comp: CompressMSZIP}}}
	for i := range 50 {
		c.files = append(c.files, tFile{name: string(rune('a' + i%26)), data: semiRandom(uint64(i), 20000)})
	}
	b, lay := c.build(t)
	for i := range c.files {
		binaryPut32(b, lay.fileEntries[i], 1)
		binaryPut32(b, lay.fileEntries[i]+4, 50*20000-1)
	}
	lim := Limits{MaxTotalSize: 20 * 50 * 20000}
	r, err := NewReaderLimits(bytes.NewReader(b), int64(len(b)), lim)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Walk(func(_ *File, rd io.Reader) error { _, err := io.Copy(io.Discard, rd); return err })
	if !errors.Is(err, ErrLimit) {
		t.Errorf("Walk: %v, want ErrLimit", err)
	}
	// One overlap is fine.
	r, _ = NewReaderLimits(bytes.NewReader(b), int64(len(b)), Limits{MaxTotalSize: 2 * 50 * 20000})
	r.Files = r.Files[:2]
	if err := r.Walk(func(_ *File, rd io.Reader) error { _, err := io.Copy(io.Discard, rd); return err }); err != nil {
		t.Errorf("Walk over two overlapping members: %v", err)
	}
}
