package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var created = time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)

type testFile struct {
	name string
	mode fs.FileMode
	data []byte
}

var sample = []testFile{
	{"data/deviceupdate.db", 0o600, bytes.Repeat([]byte("bolt"), 3000)},
	{"data/DeviceUpdateStore/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt", 0o640, bytes.Repeat([]byte{0xA5, 0x5A, 1}, 10000)},
	{"certs/admin.token", 0o600, []byte("token\n")},
	{"certs/empty", 0o644, nil},
}

// build writes a backup of files with the Writer.
func build(t testing.TB, files []testFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Created: created, Meta: json.RawMessage(`{"server":"test"}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		sum, err := w.Add(f.name, f.mode, created, int64(len(f.data)), bytes.NewReader(f.data))
		if err != nil {
			t.Fatal(err)
		}
		if want := sha256.Sum256(f.data); sum != hex.EncodeToString(want[:]) {
			t.Fatalf("Add(%s) = %s, want %x", f.name, sum, want)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads a backup through, returning its files' contents.
func readAll(data []byte) (Header, map[string][]byte, error) {
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return Header{}, nil, err
	}
	out := map[string][]byte{}
	for {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Header(), out, nil
		}
		if err != nil {
			return r.Header(), out, err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return r.Header(), out, err
		}
		if int64(len(b)) != f.Size {
			return r.Header(), out, errors.New("short read")
		}
		out[f.Name] = b
	}
}

func TestRoundTrip(t *testing.T) {
	h, files, err := readAll(build(t, sample))
	if err != nil {
		t.Fatal(err)
	}
	if h.Format != FormatName || h.Version != Version || !h.Created.Equal(created) || string(h.Meta) != `{"server":"test"}` {
		t.Errorf("header = %+v", h)
	}
	if len(files) != len(sample) {
		t.Errorf("%d files, want %d", len(files), len(sample))
	}
	for _, f := range sample {
		if !bytes.Equal(files[f.name], f.data) {
			t.Errorf("%s differs", f.name)
		}
	}
}

// The files a caller skips are still read and checked.
func TestSkippedFilesAreVerified(t *testing.T) {
	data := build(t, sample)
	i := bytes.Index(data, sample[1].data)
	data[i+5000] ^= 1
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err = r.Next(); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "CPE.nbt: its SHA-256 is") {
		t.Errorf("err = %v, want a SHA-256 mismatch of CPE.nbt", err)
	}
}

type rawEntry struct {
	hdr  tar.Header
	data []byte
}

func reg(name string, mode int64, data []byte) rawEntry {
	return rawEntry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data}
}

// rawTar writes entries as they are, without any check.
func rawTar(t testing.TB, entries ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func headerEntry(format string, version int) rawEntry {
	b, _ := json.Marshal(Header{Format: format, Version: version, Created: created})
	return reg(HeaderName, 0o644, b)
}

func manifestEntry(files ...File) rawEntry {
	b, _ := json.Marshal(Manifest{Files: files})
	return reg(ManifestName, 0o644, b)
}

func fileOf(name string, mode fs.FileMode, data []byte) File {
	sum := sha256.Sum256(data)
	return File{Name: name, Size: int64(len(data)), Mode: mode, SHA256: hex.EncodeToString(sum[:])}
}

func TestReaderRefuses(t *testing.T) {
	good := headerEntry(FormatName, Version)
	payload := []byte("payload")
	tests := []struct {
		name string
		data func(t *testing.T) []byte
		want error
		text string
	}{
		{"empty file", func(*testing.T) []byte { return nil }, ErrNotBackup, "the file is empty"},
		{"not a tar", func(*testing.T) []byte { return bytes.Repeat([]byte("text "), 300) }, ErrNotBackup, "not a tar stream"},
		{"another tar", func(t *testing.T) []byte { return rawTar(t, reg("etc/passwd", 0o644, payload)) }, ErrNotBackup, `first entry is "etc/passwd"`},
		{"another format", func(t *testing.T) []byte { return rawTar(t, headerEntry("other", 1)) }, ErrNotBackup, `format "other"`},
		{"header not JSON", func(t *testing.T) []byte { return rawTar(t, reg(HeaderName, 0o644, []byte("{"))) }, ErrNotBackup, "not JSON"},
		{"newer version", func(t *testing.T) []byte { return rawTar(t, headerEntry(FormatName, Version+1)) }, ErrUnsupported, "format version 2"},
		{"no manifest", func(t *testing.T) []byte { return rawTar(t, good, reg("a", 0o644, payload)) }, ErrTruncated, "ends before its manifest"},
		{"symlink", func(t *testing.T) []byte {
			return rawTar(t, good, rawEntry{tar.Header{Typeflag: tar.TypeSymlink, Name: "certs/ca.key", Linkname: "/etc/shadow"}, nil})
		}, ErrUnsafe, "not a plain file"},
		{"hard link", func(t *testing.T) []byte {
			return rawTar(t, good, rawEntry{tar.Header{Typeflag: tar.TypeLink, Name: "x", Linkname: "/etc/shadow"}, nil})
		}, ErrUnsafe, "not a plain file"},
		{"directory", func(t *testing.T) []byte {
			return rawTar(t, good, rawEntry{tar.Header{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755}, nil})
		}, ErrUnsafe, "not a plain file"},
		{"parent element", func(t *testing.T) []byte { return rawTar(t, good, reg("data/../../etc/cron.d/x", 0o644, payload)) }, ErrUnsafe, "not a clean relative path"},
		{"absolute name", func(t *testing.T) []byte { return rawTar(t, good, reg("/etc/cron.d/x", 0o644, payload)) }, ErrUnsafe, "not a clean relative path"},
		{"backslash", func(t *testing.T) []byte { return rawTar(t, good, reg(`data\..\x`, 0o644, payload)) }, ErrUnsafe, "backslash"},
		{"control character", func(t *testing.T) []byte { return rawTar(t, good, reg("data/a\nb", 0o644, payload)) }, ErrUnsafe, "control character"},
		{"long element", func(t *testing.T) []byte {
			return rawTar(t, good, reg("data/"+strings.Repeat("a", 256), 0o644, payload))
		}, ErrUnsafe, "longer than 255"},
		{"name twice", func(t *testing.T) []byte {
			return rawTar(t, good, reg("a", 0o644, payload), reg("a", 0o644, payload), manifestEntry(fileOf("a", 0o644, payload)))
		}, ErrMismatch, "appears twice"},
		{"second header", func(t *testing.T) []byte { return rawTar(t, good, good) }, ErrMismatch, "a second backup.json"},
		{"entry not listed", func(t *testing.T) []byte {
			return rawTar(t, good, reg("a", 0o644, payload), reg("b", 0o644, payload), manifestEntry(fileOf("a", 0o644, payload)))
		}, ErrMismatch, "b: not in the manifest"},
		{"listed entry missing", func(t *testing.T) []byte {
			return rawTar(t, good, reg("a", 0o644, payload), manifestEntry(fileOf("a", 0o644, payload), fileOf("b", 0o644, payload)))
		}, ErrMismatch, "b: listed in the manifest but missing"},
		{"listed twice", func(t *testing.T) []byte {
			return rawTar(t, good, reg("a", 0o644, payload), manifestEntry(fileOf("a", 0o644, payload), fileOf("a", 0o644, payload)))
		}, ErrMismatch, "listed twice"},
		{"other content", func(t *testing.T) []byte {
			return rawTar(t, good, reg("a", 0o644, []byte("PAYLOAD")), manifestEntry(fileOf("a", 0o644, payload)))
		}, ErrMismatch, "a: its SHA-256 is"},
		{"other size", func(t *testing.T) []byte {
			return rawTar(t, good, reg("a", 0o644, []byte("payload!")), manifestEntry(fileOf("a", 0o644, payload)))
		}, ErrMismatch, "8 bytes, the manifest says 7"},
		{"other mode", func(t *testing.T) []byte {
			return rawTar(t, good, reg("certs/ca.key", 0o644, payload), manifestEntry(fileOf("certs/ca.key", 0o600, payload)))
		}, ErrMismatch, "mode -rw-r--r--, the manifest says -rw-------"},
		{"manifest not JSON", func(t *testing.T) []byte { return rawTar(t, good, reg(ManifestName, 0o644, []byte("[1,2"))) }, ErrMismatch, "not a manifest"},
		{"entry after the manifest", func(t *testing.T) []byte {
			return rawTar(t, good, manifestEntry(), reg("a", 0o644, payload))
		}, ErrMismatch, "entries follow the manifest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(tc.data(t))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v with %q", err, tc.want, tc.text)
			}
			if tc.want != ErrUnsupported && !errors.Is(err, ErrFormat) {
				t.Errorf("err = %v does not wrap ErrFormat", err)
			}
		})
	}
}

// A sparse file, as GNU tar writes one, would expand a few kilobytes of
// backup into a terabyte of zeros before the manifest is reached.
func TestReaderRefusesSparseFiles(t *testing.T) {
	gnuTar, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar")
	}
	dir := t.TempDir()
	b, _ := json.Marshal(Header{Format: FormatName, Version: Version, Created: created})
	if err := os.WriteFile(filepath.Join(dir, HeaderName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1<<40); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "sparse.tar")
	cmd := exec.Command(gnuTar, "--sparse", "--format=posix", "-cf", out, HeaderName, "big")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("tar --sparse: %v %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := readAll(data); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "big: a sparse file") {
		t.Fatalf("%d-byte tar of a sparse terabyte: err = %v", len(data), err)
	}
}

// A backup cut anywhere before the end of its manifest is refused: never
// taken for whole.
func TestEveryCutIsRefused(t *testing.T) {
	data := build(t, sample)
	end := bytes.LastIndex(data, []byte(ManifestName)) + 512 // the manifest's content starts here
	mEnd := end + bytes.IndexByte(data[end:], 0)             // and ends before its padding
	for cut := 0; cut < mEnd; cut += 97 {
		_, _, err := readAll(data[:cut])
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrNotBackup) {
			t.Fatalf("cut at %d of %d: err = %v, want it truncated", cut, len(data), err)
		}
	}
	for _, cut := range []int{end - 512, end, end + 1, mEnd - 1} {
		if _, _, err := readAll(data[:cut]); !errors.Is(err, ErrTruncated) {
			t.Errorf("cut at %d (manifest at %d-%d): err = %v, want ErrTruncated", cut, end, mEnd, err)
		}
	}
}

func TestWriterRefuses(t *testing.T) {
	tests := []struct {
		name string
		add  func(w *Writer) error
		text string
	}{
		{"unsafe name", func(w *Writer) error {
			_, err := w.Add("../x", 0o644, created, 1, strings.NewReader("x"))
			return err
		}, "not a clean relative path"},
		{"reserved name", func(w *Writer) error {
			_, err := w.Add(ManifestName, 0o644, created, 1, strings.NewReader("x"))
			return err
		}, "the name is taken"},
		{"short source", func(w *Writer) error {
			_, err := w.Add("a", 0o644, created, 10, strings.NewReader("x"))
			return err
		}, "it ended after 1 of its 10 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWriter(io.Discard, Header{Created: created})
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.add(w); err == nil || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err = %v, want %q", err, tc.text)
			}
		})
	}
}

// FuzzReader reads arbitrary bytes as a backup: no panic, every refusal
// wraps ErrFormat or ErrUnsupported, and what reads to the end matches its
// own manifest.
func FuzzReader(f *testing.F) {
	f.Add(build(f, []testFile{{"data/deviceupdate.db", 0o600, []byte("bolt")}, {"certs/admin.token", 0o600, []byte("token\n")}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("NewReader: %v wraps neither ErrFormat nor ErrUnsupported", err)
			}
			return
		}
		sums := map[string]string{}
		for {
			file, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("Next: %v does not wrap ErrFormat", err)
				}
				return
			}
			if CheckName(file.Name) != nil {
				t.Fatalf("Next handed out the unsafe name %q", file.Name)
			}
			h := sha256.New()
			if _, err := io.Copy(h, r); err != nil {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("Read: %v does not wrap ErrFormat", err)
				}
				return
			}
			sums[file.Name] = hex.EncodeToString(h.Sum(nil))
		}
		for name, sum := range sums {
			if r.seen[name].SHA256 != sum {
				t.Fatalf("%s: read %s, verified %s", name, sum, r.seen[name].SHA256)
			}
		}
	})
}
