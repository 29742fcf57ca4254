package main_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

// caseDeadline bounds one extraction: a hang is a failure.
const caseDeadline = 30 * time.Second

type extraction struct {
	code   int
	stderr string
	files  map[string][]byte // relative path → content
}

// extractWith runs an extractor on cabPath into a fresh folder under dir.
func extractWith(t *testing.T, dir string, name string, args ...string) extraction {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), caseDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = e2e.Env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within %v (a hang)", filepath.Base(name), args, caseDeadline)
	}
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return extraction{code: code, stderr: stderr.String()}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		data, _ := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	return files
}

// checkAgainstCabextract extracts data with deviceupdate and, where it is
// installed, with cabextract, and holds deviceupdate to the rule: where
// cabextract extracts, the same files and bytes; where it refuses, a clean
// refusal (exit 1, one line, nothing written). Nothing may ever appear
// outside the output folder, and nothing may hang or panic.
//
// cabextract extracts names that would escape, rewritten (".." to "xx", a
// leading "/" dropped); deviceupdate refuses them instead, as documented.
// cabextract writes a name without the UTF-8 flag as raw bytes;
// deviceupdate converts it from Windows-1252 to UTF-8.
//
// mayRefuse allows deviceupdate to refuse what cabextract extracts, for
// cabinets that break [MS-CAB] in ways cabextract overlooks.
func checkAgainstCabextract(t *testing.T, data []byte, strictRefusal, mayRefuse bool) (ours extraction) {
	t.Helper()
	root := t.TempDir()
	jail := filepath.Join(root, "jail") // the only folder anything may be written to
	os.Mkdir(jail, 0o755)
	cabPath := filepath.Join(root, "case.cab")
	if err := os.WriteFile(cabPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(jail, "ours")
	ours = extractWith(t, root, e2e.Binary(t), "cab", "extract", cabPath, "-o", out)
	ours.files = readTree(t, out)
	if strings.Contains(ours.stderr, "goroutine ") || strings.Contains(ours.stderr, "panic") {
		t.Fatalf("deviceupdate panicked:\n%s", ours.stderr)
	}
	switch ours.code {
	case 0:
	case 1:
		if strings.Count(ours.stderr, "\n") != 1 || !strings.HasPrefix(ours.stderr, "deviceupdate: ") {
			t.Errorf("refusal is not one line: %q", ours.stderr)
		}
		if len(ours.files) != 0 {
			t.Errorf("a refused extraction left files: %v", keys(ours.files))
		}
	default:
		t.Fatalf("exit code %d: %s", ours.code, ours.stderr)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.Name() != "jail" && e.Name() != "case.cab" {
			t.Errorf("%s was written outside the output folder", e.Name())
		}
	}
	if parentEntries, _ := os.ReadDir(jail); len(parentEntries) > 1 {
		t.Errorf("files beside the output folder: %v", parentEntries)
	}

	cabextract, err := exec.LookPath("cabextract")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("cabextract is not installed; .ci/run installs it")
		}
		return ours
	}
	refDir := filepath.Join(t.TempDir(), "ref")
	ref := extractWith(t, root, cabextract, "-q", "-d", refDir, cabPath)
	ref.files = map[string][]byte{}
	for name, content := range readTree(t, refDir) {
		ref.files[latin1ToUTF8(name)] = content
	}
	switch {
	case ref.code == 0 && ours.code == 0:
		if len(ref.files) != len(ours.files) {
			t.Errorf("cabextract extracted %v, deviceupdate %v", keys(ref.files), keys(ours.files))
		}
		for name, want := range ref.files {
			if got, ok := ours.files[name]; !ok || !bytes.Equal(got, want) {
				t.Errorf("%s: deviceupdate wrote %d bytes (present %v), cabextract %d; contents differ", name, len(got), ok, len(want))
			}
		}
	case ref.code == 0 && ours.code != 0 && (mayRefuse || strings.Contains(ours.stderr, "unsafe member name")):
		// deviceupdate refuses what cabextract rewrites or overlooks.
	case ref.code == 0 && ours.code != 0:
		t.Errorf("cabextract extracts this cabinet (%v) but deviceupdate refused it: %s", keys(ref.files), ours.stderr)
	case ref.code != 0 && ours.code == 0 && strictRefusal:
		t.Errorf("cabextract refuses this cabinet (%s) but deviceupdate extracted %v", strings.TrimSpace(ref.stderr), keys(ours.files))
	}
	return ours
}

// latin1ToUTF8 converts a name that is not UTF-8 byte by byte, as
// Windows-1252 agrees with ISO-8859-1 outside 0x80-0x9F.
func latin1ToUTF8(name string) string {
	if utf8.ValidString(name) {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		b.WriteRune(rune(name[i]))
	}
	return b.String()
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCabHostileCorpus: cabinets built field by field, among them
// reconstructions of published bugs in cabinet readers.
func TestCabHostileCorpus(t *testing.T) {
	text := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog. "), 3000) // 135 KB
	small := []byte("hello, phone\n")
	twoFolders := func() tCab {
		return tCab{
			folders: []tFolder{
				{typeCompress: 0, blocks: storedBlocks(append(append([]byte{}, small...), small...))},
				{typeCompress: 1, blocks: mszipBlocks(text)},
			},
			files: []tFile{
				{name: []byte("a.txt"), size: uint32(len(small)), offset: 0, folder: 0},
				{name: []byte(`dir\b.txt`), size: uint32(len(small)), offset: uint32(len(small)), folder: 0},
				{name: []byte(`dir\sub\c.bin`), size: uint32(len(text)), offset: 0, folder: 1},
			},
		}
	}
	one := func(name []byte, attrs uint16) tCab {
		return tCab{
			folders: []tFolder{{blocks: storedBlocks(small)}},
			files:   []tFile{{name: name, size: uint32(len(small)), folder: 0, attrs: attrs}},
		}
	}
	with := func(c tCab, f func(*tCab)) tCab { f(&c); return c }

	tests := []struct {
		name    string
		cab     tCab
		wantOK  bool   // deviceupdate must extract it
		wantErr string // else: a substring of the refusal
		// stricter: cabextract extracts it, deviceupdate refuses it (the
		// cabinet breaks [MS-CAB] and the issue asks for a refusal).
		stricter bool
	}{
		{"two folders, stored and MSZIP", twoFolders(), true, "", false},
		{"data block checksums not computed", with(twoFolders(), func(c *tCab) {
			for i := range c.folders[1].blocks {
				c.folders[1].blocks[i].checksum = u32(0)
			}
		}), true, "", false},
		{"UTF-8 name", one([]byte("café\\ñ.txt"), 0x80), true, "", false},
		{"Windows-1252 name", one([]byte("caf\xe9.txt"), 0), true, "", false},
		{"duplicate names", with(twoFolders(), func(c *tCab) { c.files[1].name = []byte("a.txt") }), true, "", false},
		{"empty member", with(one([]byte("empty"), 0), func(c *tCab) { c.files[0].size = 0 }), true, "", false},

		// Names that must never leave the output folder (CVE-2015-2060 and
		// the path-traversal class).
		{"dot-dot backslash", one([]byte(`..\..\evil.txt`), 0), false, "unsafe", false},
		{"dot-dot slash", one([]byte("../../evil.txt"), 0), false, "unsafe", false},
		{"dot-dot in the middle", one([]byte(`dir\..\..\evil.txt`), 0), false, "unsafe", false},
		{"absolute slash", one([]byte("/tmp/evil.txt"), 0), false, "unsafe", false},
		{"absolute backslash", one([]byte(`\evil.txt`), 0), false, "unsafe", false},
		{"drive letter", one([]byte(`C:\evil.txt`), 0), false, "unsafe", false},
		{"empty name (libarchive #505)", one([]byte(""), 0), false, "", false},
		// An overlong "/" must not become a separator: each invalid byte
		// becomes U+FFFD, as cabextract does, and the name stays inside.
		{"overlong UTF-8 slash (CVE-2015-2060)", one([]byte("..\xc0\xaf..\xc0\xafevil.txt"), 0x80), true, "", false},
		{"overlong UTF-8 NUL (CVE-2015-2060)", one([]byte("a\xc0\x80/../../evil.txt"), 0x80), false, "unsafe", false},

		// Lying tables.
		{"name runs to the end of the file (CVE-2017-11423)", with(one([]byte("abcdefghij"), 0), func(c *tCab) {
			c.patch = nil
		}), false, "", false},
		{"member in a folder that does not exist (CVE-2014-9732)", with(twoFolders(), func(c *tCab) { c.files[2].folder = 7 }), false, "folder", false},
		{"member past its folder's end", with(twoFolders(), func(c *tCab) { c.files[2].size += 100 }), false, "", false},
		{"member offset past its folder's end", with(twoFolders(), func(c *tCab) { c.files[1].offset = 1 << 30 }), false, "", false},
		{"folder claims 65535 data blocks", with(twoFolders(), func(c *tCab) { c.folders[1].cCFData = u16(65535) }), false, "", false},
		{"65535 members in a small file", with(twoFolders(), func(c *tCab) {
			c.patch = func(b []byte) { b[28], b[29] = 0xff, 0xff }
		}), false, "", false},
		{"65535 folders in a small file", with(twoFolders(), func(c *tCab) {
			c.patch = func(b []byte) { b[26], b[27] = 0xff, 0xff }
		}), false, "", false},
		{"file table beyond the end", with(twoFolders(), func(c *tCab) {
			c.patch = func(b []byte) { b[16], b[17], b[18], b[19] = 0, 0, 0, 0x7f }
		}), false, "", false},
		{"cabinet size larger than the file", with(twoFolders(), func(c *tCab) {
			c.patch = func(b []byte) { b[8], b[9], b[10], b[11] = 0, 0, 0, 0x10 }
		}), false, "", false},
		{"format version 2.3", with(twoFolders(), func(c *tCab) {
			c.patch = func(b []byte) { b[25] = 2 }
		}), false, "version", true},

		// Lying data blocks.
		{"bad checksum", with(twoFolders(), func(c *tCab) { c.folders[1].blocks[1].checksum = u32(0xdeadbeef) }), false, "checksum", false},
		{"stored block larger than 32 KiB", tCab{
			folders: []tFolder{{blocks: []tBlock{{data: bytes.Repeat([]byte{'x'}, 40000), cbUncomp: 40000}}}},
			files:   []tFile{{name: []byte("big"), size: 40000}},
		}, false, "", false},
		{"block of 65535 bytes (CVE-2018-18584)", tCab{
			folders: []tFolder{{typeCompress: 1, blocks: []tBlock{{data: append([]byte("CK"), bytes.Repeat([]byte{0}, 65533)...), cbUncomp: 32768}}}},
			files:   []tFile{{name: []byte("big"), size: 32768}},
		}, false, "", false},
		{"stored block whose sizes disagree", tCab{
			folders: []tFolder{{blocks: []tBlock{{data: small, cbUncomp: uint16(len(small) + 5)}}}},
			files:   []tFile{{name: []byte("f"), size: uint32(len(small) + 5)}},
		}, false, "", false},
		{"MSZIP reserved block type (CVE-2010-2800)", tCab{
			folders: []tFolder{{typeCompress: 1, blocks: []tBlock{{data: []byte{'C', 'K', 0x07, 0, 0, 0}, cbUncomp: 100}}}},
			files:   []tFile{{name: []byte("f"), size: 100}},
		}, false, "", false},
		{"MSZIP block without its CK signature", with(twoFolders(), func(c *tCab) {
			b := &c.folders[1].blocks[0]
			b.data = append([]byte("XX"), b.data[2:]...)
		}), false, "", false},
		{"MSZIP block inflating past its declared size", with(twoFolders(), func(c *tCab) {
			c.folders[1].blocks[0].cbUncomp = 1000
			c.files[2].size = uint32(len(text)) - 32768 + 1000
		}), false, "past its declared size", true},
		{"MSZIP block inflating short of its declared size", tCab{
			folders: []tFolder{{typeCompress: 1, blocks: []tBlock{{data: mszipBlocks(small)[0].data, cbUncomp: 5000}}}},
			files:   []tFile{{name: []byte("f"), size: 5000}},
		}, false, "", false},

		// Unsupported and invalid methods.
		{"Quantum folder", with(twoFolders(), func(c *tCab) { c.folders[1].typeCompress = 0x1002 }), false, "Quantum", false},
		{"LZX window of 2^31 bytes", with(twoFolders(), func(c *tCab) { c.folders[1].typeCompress = 0x1f03 }), false, "", false},
		{"LZX window of 2^14 bytes", with(twoFolders(), func(c *tCab) { c.folders[1].typeCompress = 0x0e03 }), false, "", false},
		{"unknown compression type", with(twoFolders(), func(c *tCab) { c.folders[1].typeCompress = 7 }), false, "", false},
		{"continued from a previous cabinet", with(twoFolders(), func(c *tCab) { c.files[0].folder = 0xfffd }), false, "", false},
		{"set with a previous cabinet", with(twoFolders(), func(c *tCab) { c.flags = 1 }), false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.cab.bytes()
			if strings.Contains(tt.name, "CVE-2017-11423") {
				// Cut the cabinet in the middle of the first name, and make
				// the header agree, so the name has no terminator.
				i := bytes.Index(data, []byte("abcdefghij"))
				data = data[:i+5]
				data[8], data[9], data[10], data[11] = byte(len(data)), byte(len(data)>>8), 0, 0
			}
			ours := checkAgainstCabextract(t, data, true, tt.stricter)
			switch {
			case tt.wantOK && ours.code != 0:
				t.Fatalf("refused a valid cabinet: %s", ours.stderr)
			case !tt.wantOK && ours.code == 0:
				t.Fatalf("extracted a bad cabinet: %v", keys(ours.files))
			case !tt.wantOK && !strings.Contains(ours.stderr, tt.wantErr):
				t.Errorf("refusal %q does not say %q", ours.stderr, tt.wantErr)
			}
		})
	}
}

// TestCabExtractDoesNotFollowSymlinks: a symbolic link already in the
// output folder cannot carry a member outside it.
func TestCabExtractDoesNotFollowSymlinks(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(root, "outside")
	out := filepath.Join(root, "out")
	os.Mkdir(outside, 0o755)
	os.Mkdir(out, 0o755)
	if err := os.Symlink(outside, filepath.Join(out, "dir")); err != nil {
		t.Fatal(err)
	}
	c := tCab{
		folders: []tFolder{{blocks: storedBlocks([]byte("payload"))}},
		files:   []tFile{{name: []byte(`dir\planted.txt`), size: 7}},
	}
	cabPath := filepath.Join(root, "x.cab")
	os.WriteFile(cabPath, c.bytes(), 0o644)
	res := e2e.Run(t, root, nil, "cab", "extract", cabPath, "-o", out)
	if _, err := os.Stat(filepath.Join(outside, "planted.txt")); err == nil {
		t.Fatalf("a member was written through a symbolic link to outside the output folder (exit %d)", res.Code)
	}
	if res.Code != 1 {
		t.Errorf("exit %d, want a refusal: %s", res.Code, res.Stderr)
	}
}

// TestCabCorruptedStreams flips bytes in the compressed data of real
// cabinets, with the data checksums cleared so that the decoders, not the
// checksums, meet the damage. Nothing may hang, panic or escape, and when
// both deviceupdate and cabextract extract, the bytes must agree.
func TestCabCorruptedStreams(t *testing.T) {
	lzx, err := os.ReadFile("../../internal/cab/testdata/lzx.cab")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string][]byte{"lzx": lzx}
	src := t.TempDir()
	text := make([]byte, 200<<10)
	for i := range text { // compressible, but not trivially
		text[i] = "firmware image block; "[i%22] ^ byte(i/4096)
	}
	makeTree(t, src, map[string][]byte{"image.nbt": text})
	gcab(t, src, filepath.Join(src, "mszip.cab"), true, "image.nbt")
	mszip, err := os.ReadFile(filepath.Join(src, "mszip.cab"))
	if err != nil {
		t.Fatal(err)
	}
	sources["mszip"] = mszip
	rng := rand.New(rand.NewPCG(1, 2))
	for name, src := range sources {
		blocks := dataBlocks(t, src)
		for i := range 12 {
			t.Run(name, func(t *testing.T) {
				data := bytes.Clone(src)
				for _, b := range blocks { // clear the checksums
					copy(data[b.hdr:b.hdr+4], []byte{0, 0, 0, 0})
				}
				for range 1 + i%4 {
					b := blocks[rng.IntN(len(blocks))]
					pos := b.hdr + 8 + rng.IntN(b.size)
					data[pos] ^= byte(1 + rng.IntN(255))
				}
				checkAgainstCabextract(t, data, false, false)
			})
		}
	}
}

type blockPos struct{ hdr, size int }

// dataBlocks finds the data blocks of a single-folder cabinet without
// reserve areas.
func dataBlocks(t *testing.T, data []byte) []blockPos {
	t.Helper()
	le := func(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 | int(b[3])<<24 }
	if data[30]&4 != 0 {
		t.Fatal("reserve areas are not expected here")
	}
	first := le(data[36:40])
	n := int(data[40]) | int(data[41])<<8
	var out []blockPos
	pos := first
	for range n {
		size := int(data[pos+4]) | int(data[pos+5])<<8
		out = append(out, blockPos{pos, size})
		pos += 8 + size
	}
	return out
}
