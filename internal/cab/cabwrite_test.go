package cab

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func memberFiles(files map[string][]byte, order []string) []WriterFile {
	var out []WriterFile
	for _, name := range order {
		data := files[name]
		out = append(out, WriterFile{
			Name: name, Size: int64(len(data)), Modified: time.Date(2026, 11, 21, 8, 30, 10, 0, time.UTC),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		})
	}
	return out
}

// TestWriteReadsBack: what Write makes, this package, cabextract and gcab
// read back byte for byte.
func TestWriteReadsBack(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	random := make([]byte, 150000)
	r.Read(random)
	files := map[string][]byte{
		"UCPhone/CX600/CPE.nbt": append(bytes.Repeat([]byte("firmware image "), 20000), random...),
		"UCPhone/CX600/CPE.xml": []byte(`<Update/>`),
		"UCPhone/CX600/CPE.cat": random[:5000],
		"empty.txt":             nil,
		"updateInfo.xml":        []byte("<Updates/>"),
		"naïve/ü.bin":           []byte("utf-8 name"),
	}
	order := []string{"updateInfo.xml", "UCPhone/CX600/CPE.xml", "UCPhone/CX600/CPE.nbt", "empty.txt", "UCPhone/CX600/CPE.cat", "naïve/ü.bin"}
	for _, comp := range []Compression{CompressNone, CompressMSZIP} {
		t.Run(comp.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.cab")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := Write(f, memberFiles(files, order), comp); err != nil {
				t.Fatal(err)
			}
			f.Close()
			data, _ := os.ReadFile(path)
			cr, err := NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if cr.CabinetSize != int64(len(data)) || len(cr.Files) != len(order) {
				t.Fatalf("cabinet size %d of %d bytes, %d members", cr.CabinetSize, len(data), len(cr.Files))
			}
			got := map[string][]byte{}
			err = cr.Walk(func(f *File, rd io.Reader) error {
				b, err := io.ReadAll(rd)
				got[strings.ReplaceAll(f.Name, `\`, "/")] = b
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range files {
				if !bytes.Equal(got[name], want) {
					t.Errorf("%s: read back %d bytes, want %d", name, len(got[name]), len(want))
				}
			}
			if cr.Files[0].Modified != time.Date(2026, 11, 21, 8, 30, 10, 0, time.UTC) {
				t.Errorf("date = %v", cr.Files[0].Modified)
			}

			out := filepath.Join(t.TempDir(), "x")
			if b, err := exec.Command(needTool(t, "cabextract"), "-q", "-d", out, path).CombinedOutput(); err != nil {
				t.Fatalf("cabextract: %v\n%s", err, b)
			}
			for name, want := range files {
				b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
				if err != nil || !bytes.Equal(b, want) {
					t.Errorf("cabextract's %s differs (%v)", name, err)
				}
			}
			list, err := exec.Command(needTool(t, "gcab"), "-t", path).CombinedOutput()
			if err != nil || !strings.Contains(string(list), `CPE.nbt`) {
				t.Errorf("gcab -t: %v\n%s", err, list)
			}
		})
	}
}

func TestWriteRefuses(t *testing.T) {
	short := WriterFile{Name: "short.bin", Size: 10, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abc")), nil }}
	long := WriterFile{Name: "long.bin", Size: 2, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abc")), nil }}
	huge := WriterFile{Name: "huge.bin", Size: 3 << 30, Open: func() (io.ReadCloser, error) { panic("must not be read") }}
	tests := []struct {
		name    string
		files   []WriterFile
		comp    Compression
		wantErr string
	}{
		{"file shorter than declared", []WriterFile{short}, CompressMSZIP, "3 bytes, but 10 were declared"},
		{"file longer than declared", []WriterFile{long}, CompressNone, "grew past its 2 bytes"},
		{"more than a folder holds", []WriterFile{huge}, CompressMSZIP, "more than one folder holds"},
		{"unsafe name", []WriterFile{{Name: "../x", Open: short.Open}}, CompressNone, "member name"},
		{"LZX", []WriterFile{short}, CompressLZX, "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "out.cab"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			err = Write(f, tt.files, tt.comp)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Write = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
