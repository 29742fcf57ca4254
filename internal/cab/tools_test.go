package cab

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/cab/internal/lzxenc"
)

// needTool returns the path of an external program. Missing tools skip
// the test locally and fail it in CI (CI installs gcab and cabextract).
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; CI must install it (Debian package %s)", name, name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

func run(t testing.TB, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TZ=UTC")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// writeTree writes files (slash paths) below dir.
func writeTree(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree reads every regular file below dir, keyed by slash path.
func readTree(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t testing.TB, what string, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d files, want %d", what, len(got), len(want))
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g, ok := got[n]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", what, n)
		case !bytes.Equal(g, want[n]):
			t.Errorf("%s: %s differs (%d bytes, want %d)", what, n, len(g), len(want[n]))
		}
	}
}

// extractBoth extracts cabPath with ExtractTo and with cabextract, compares
// both trees with want, and compares modification times.
func extractBoth(t *testing.T, cabPath string, want map[string][]byte) {
	t.Helper()
	cabextract := needTool(t, "cabextract")
	f, err := os.Open(cabPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	r, err := NewReader(f, st.Size())
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	ours := filepath.Join(t.TempDir(), "ours")
	written, err := r.ExtractTo(ours)
	if err != nil {
		t.Fatalf("ExtractTo: %v", err)
	}
	if len(written) != len(r.Files) {
		t.Errorf("ExtractTo reported %d paths for %d members", len(written), len(r.Files))
	}
	theirs := filepath.Join(t.TempDir(), "cabextract")
	run(t, "", cabextract, "-q", "-d", theirs, cabPath)
	got, ref := readTree(t, ours), readTree(t, theirs)
	compareTrees(t, "ours vs source", got, want)
	compareTrees(t, "ours vs cabextract", got, ref)
	for name := range ref {
		a, errA := os.Stat(filepath.Join(ours, name))
		b, errB := os.Stat(filepath.Join(theirs, name))
		if errA == nil && errB == nil && !a.ModTime().Equal(b.ModTime()) {
			t.Errorf("%s: mtime %v, cabextract %v", name, a.ModTime(), b.ModTime())
			break
		}
	}
}

// gcabTree is the source tree cabinets are made from: many small files,
// empty files, subdirectories and a file of several MiB.
func gcabTree() map[string][]byte {
	files := map[string][]byte{
		"big/firmware.bin":       semiRandom(1, 5<<20+12345),
		"empty.txt":              nil,
		"sub/deeper/empty2":      nil,
		"sub/deeper/nested.cfg":  []byte("key=value\r\n"),
		"sub/exactly-32768.bin":  semiRandom(2, 32768),
		"sub/one-more-block.bin": semiRandom(3, 32769),
	}
	for i := range 300 {
		files[fmt.Sprintf("many/file%03d.txt", i)] = semiRandom(uint64(100+i), i*37%2000)
	}
	return files
}

func TestGcabCabinets(t *testing.T) {
	gcab := needTool(t, "gcab")
	src := t.TempDir()
	files := gcabTree()
	writeTree(t, src, files)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, tt := range []struct {
		name string
		flag []string
		comp string
	}{
		{"stored", nil, "none"},
		{"MSZIP", []string{"-z"}, "MSZIP"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cabPath := filepath.Join(t.TempDir(), "out.cab")
			args := append(append([]string{"-c"}, tt.flag...), cabPath)
			run(t, src, gcab, append(args, names...)...)
			b, err := os.ReadFile(cabPath)
			if err != nil {
				t.Fatal(err)
			}
			r := openBytes(t, b)
			if len(r.Files) != len(files) {
				t.Fatalf("%d members, want %d", len(r.Files), len(files))
			}
			for _, fo := range r.Folders {
				if fo.Compression.String() != tt.comp {
					t.Errorf("folder %d: %s, want %s", fo.Index, fo.Compression, tt.comp)
				}
			}
			got := readAll(t, r)
			for _, f := range r.Files {
				p, err := SafePath(f.Name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[f.Name], files[p]) {
					t.Errorf("%s differs from the source", f.Name)
				}
			}
			extractBoth(t, cabPath, files)
		})
	}
}

// TestWriterCabinetsMatchCabextract checks cabinets from the test writer,
// with several folders, small blocks and reserve areas, against
// cabextract, which also validates the writer's checksums.
func TestWriterCabinetsMatchCabextract(t *testing.T) {
	for _, tt := range []struct {
		name string
		cab  tCab
	}{
		// MSZIP folders keep 32 KiB blocks here: cabextract decodes
		// each MSZIP block as a 32 KiB frame and mishandles matches
		// that reach across shorter blocks (the package itself is
		// tested with short MSZIP blocks elsewhere).
		{"three folders", tCab{folders: []tFolder{{comp: CompressMSZIP}, {comp: CompressNone, blockSize: 1000}, {comp: CompressMSZIP}}}},
		{"reserves", tCab{folders: []tFolder{{comp: CompressMSZIP, reserve: []byte("fr")}, {comp: CompressNone}},
			headerReserve: bytes.Repeat([]byte{0xAA}, 20), folderReserve: 2, dataReserve: 8}},
		{"no checksums", tCab{folders: []tFolder{{comp: CompressMSZIP}}, noChecksum: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := make(map[string][]byte)
			for i := range 12 {
				name := fmt.Sprintf("d%d/f%02d.bin", i%3, i)
				data := semiRandom(uint64(i), i*i*701)
				want[name] = data
				tt.cab.files = append(tt.cab.files, tFile{name: filepath.FromSlash(name), data: data, folder: i % len(tt.cab.folders),
					date: (2020-1980)<<9 | 2<<5 | 29, time: 23<<11 | 59<<5 | 58/2})
			}
			for i := range tt.cab.files {
				tt.cab.files[i].name = toBackslash(tt.cab.files[i].name)
			}
			b, _ := tt.cab.build(t)
			cabPath := filepath.Join(t.TempDir(), "w.cab")
			if err := os.WriteFile(cabPath, b, 0o644); err != nil {
				t.Fatal(err)
			}
			extractBoth(t, cabPath, want)
		})
	}
}

func toBackslash(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("/"), []byte(`\`)))
}

// TestSignedCabinet signs a gcab cabinet with osslsigncode: the signature
// directory lands in the header reserve and the PKCS#7 blob after the
// declared cabinet size. Signing tools are optional, even in CI.
func TestSignedCabinet(t *testing.T) {
	gcab := needTool(t, "gcab")
	osslsigncode, err1 := exec.LookPath("osslsigncode")
	openssl, err2 := exec.LookPath("openssl")
	if err1 != nil || err2 != nil {
		t.Skip("osslsigncode or openssl not installed")
	}
	dir := t.TempDir()
	files := map[string][]byte{"fw.bin": semiRandom(8, 100000), "notes.txt": []byte("signed\n")}
	writeTree(t, dir, files)
	run(t, dir, gcab, "-c", "-z", "u.cab", "fw.bin", "notes.txt")
	run(t, dir, openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem",
		"-out", "cert.pem", "-days", "2", "-subj", "/CN=cab test")
	run(t, dir, osslsigncode, "sign", "-certs", "cert.pem", "-key", "key.pem", "-in", "u.cab", "-out", "s.cab")
	b, err := os.ReadFile(filepath.Join(dir, "s.cab"))
	if err != nil {
		t.Fatal(err)
	}
	r := openBytes(t, b)
	if len(r.HeaderReserve) < 12 || r.CabinetSize >= int64(len(b)) {
		t.Fatalf("header reserve of %d bytes, cabinet size %d of %d", len(r.HeaderReserve), r.CabinetSize, len(b))
	}
	sigOff := int64(binary.LittleEndian.Uint32(r.HeaderReserve[4:]))
	sigLen := int64(binary.LittleEndian.Uint32(r.HeaderReserve[8:]))
	if sigOff != r.CabinetSize || sigOff+sigLen != int64(len(b)) {
		t.Errorf("signature at %d+%d, want %d+%d", sigOff, sigLen, r.CabinetSize, int64(len(b))-r.CabinetSize)
	}
	got := readAll(t, r)
	for name, data := range files {
		if !bytes.Equal(got[name], data) {
			t.Errorf("%s differs", name)
		}
	}
}

// lzxTestData mixes text-like, random, repetitive and zero runs so that
// every kind of LZX symbol and offset occurs.
func lzxTestData(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		switch i % 4 {
		case 0:
			b = append(b, semiRandom(uint64(i), 20000)...)
		case 1:
			b = append(b, bytes.Repeat([]byte("firmware block "), 700)...)
		case 2:
			b = append(b, make([]byte, 9000)...)
		default:
			b = append(b, b[len(b)/3:len(b)/3+15000]...) // a far repeat
		}
	}
	return b[:n]
}

// TestLZXMatchesCabextract compresses data with the test encoder in every
// window size and block type mix, then compares our extraction with the
// source and with cabextract, an independent LZX decoder. Small windows
// wrap many times.
func TestLZXMatchesCabextract(t *testing.T) {
	data := lzxTestData(600000)
	for _, tt := range []struct {
		name  string
		wbits int
		types []int
	}{
		{"window 15 verbatim", 15, []int{lzxenc.Verbatim}},
		{"window 16 aligned", 16, []int{lzxenc.Aligned}},
		{"window 17 mixed", 17, []int{lzxenc.Verbatim, lzxenc.Uncompressed, lzxenc.Aligned}},
		{"window 19 uncompressed", 19, []int{lzxenc.Uncompressed}},
		{"window 21 mixed", 21, []int{lzxenc.Aligned, lzxenc.Verbatim, lzxenc.Uncompressed, lzxenc.Verbatim}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tCab{folders: []tFolder{{comp: CompressLZX | Compression(tt.wbits)<<8, lzxTypes: tt.types}}}
			want := map[string][]byte{}
			sizes := []int{0, 1, 32767, 32768, 32769, 100001, len(data) - 100001 - 32769 - 32768 - 32767 - 1}
			off := 0
			for i, n := range sizes {
				name := fmt.Sprintf("part%d.bin", i)
				c.files = append(c.files, tFile{name: name, data: data[off : off+n]})
				want[name] = data[off : off+n]
				off += n
			}
			b, _ := c.build(t)
			r := openBytes(t, b)
			if got := r.Folders[0].Compression.String(); got != fmt.Sprintf("LZX:%d", tt.wbits) {
				t.Errorf("compression %s", got)
			}
			got := readAll(t, r)
			for name, w := range want {
				if !bytes.Equal(got[name], w) {
					t.Errorf("%s differs from the source", name)
				}
			}
			cabPath := filepath.Join(t.TempDir(), "lzx.cab")
			if err := os.WriteFile(cabPath, b, 0o644); err != nil {
				t.Fatal(err)
			}
			extractBoth(t, cabPath, want)
		})
	}
}
