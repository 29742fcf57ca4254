package main_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
)

// needTool returns the path of a third-party tool, skipping the test when
// it is missing outside CI (CI installs it, so there it is a failure).

// makeTree writes files (relative path → content) under dir.
func makeTree(t *testing.T, dir string, files map[string][]byte) {
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

// gcab builds a cabinet of the files under src, keeping their relative
// paths as member names (gcab's -n would drop them).
func gcab(t *testing.T, src, out string, compress bool, names ...string) {
	t.Helper()
	args := []string{"-c"}
	if compress {
		args = append(args, "-z")
	}
	args = append(args, out)
	cmd := exec.Command(testpkg.NeedTool(t, "gcab"), append(args, names...)...)
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcab: %v\n%s", err, b)
	}
}

func TestCabListAndExtract(t *testing.T) {
	big := make([]byte, 300<<10)
	rand.Read(big[:100<<10]) // part incompressible, part zeros
	files := map[string][]byte{
		"CPE.nbt":            big,
		"CPE.xml":            []byte(`<Update DeviceType="UCPhone"/>`),
		"empty.txt":          nil,
		"sub/dir/deep.bin":   bytes.Repeat([]byte("firmware "), 5000),
		"sub/other name.cat": []byte("catalog"),
	}
	src := t.TempDir()
	makeTree(t, src, files)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	for _, compress := range []bool{false, true} {
		kind := map[bool]string{false: "stored", true: "MSZIP"}[compress]
		t.Run(kind, func(t *testing.T) {
			work := t.TempDir()
			cabPath := filepath.Join(work, "pkg.cab")
			gcab(t, src, cabPath, compress, names...)

			res := e2e.Run(t, work, nil, "cab", "list", "--json", cabPath)
			if res.Code != 0 {
				t.Fatalf("cab list: %d %s", res.Code, res.Stderr)
			}
			var listed []struct {
				Name        string `json:"name"`
				Size        int64  `json:"size"`
				Compression string `json:"compression"`
			}
			if err := json.Unmarshal([]byte(res.Stdout), &listed); err != nil {
				t.Fatalf("cab list --json: %v\n%s", err, res.Stdout)
			}
			if len(listed) != len(files) {
				t.Fatalf("listed %d members, want %d", len(listed), len(files))
			}
			wantComp := map[bool]string{false: "none", true: "MSZIP"}[compress]
			for _, m := range listed {
				want, ok := files[strings.ReplaceAll(m.Name, `\`, "/")]
				if !ok || m.Size != int64(len(want)) || m.Compression != wantComp {
					t.Errorf("listed %+v; want one of the source files, compression %s", m, wantComp)
				}
			}
			if res := e2e.Run(t, work, nil, "cab", "list", cabPath); !strings.Contains(res.Stdout, "sub\\dir\\deep.bin") {
				t.Errorf("table listing lacks a member:\n%s", res.Stdout)
			}

			// Flags after the argument, as SPEC §1 allows.
			out := filepath.Join(work, "ours")
			res = e2e.Run(t, work, nil, "cab", "extract", cabPath, "-o", out)
			if res.Code != 0 {
				t.Fatalf("cab extract: %d %s", res.Code, res.Stderr)
			}
			for name, want := range files {
				got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: extracted %d bytes (%v), want %d", name, len(got), err, len(want))
				}
			}
			// The same bytes as cabextract, the reference extractor.
			ref := filepath.Join(work, "cabextract")
			if b, err := exec.Command(testpkg.NeedTool(t, "cabextract"), "-q", "-d", ref, cabPath).CombinedOutput(); err != nil {
				t.Fatalf("cabextract: %v %s", err, b)
			}
			for name := range files {
				a, _ := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
				b, err := os.ReadFile(filepath.Join(ref, filepath.FromSlash(name)))
				if err != nil || !bytes.Equal(a, b) {
					t.Errorf("%s differs from cabextract's extraction (%v)", name, err)
				}
			}
		})
	}
}

func TestCabExtractRefusals(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src, map[string][]byte{"ok.txt": []byte("fine"), "xx/xx/evil": []byte("escape")})
	work := t.TempDir()
	good := filepath.Join(work, "good.cab")
	gcab(t, src, good, true, "ok.txt", "xx/xx/evil")

	// The same cabinet with the second name patched to climb out of DIR.
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`xx\xx\evil`))
	if i < 0 {
		t.Fatal("gcab did not store the name with backslashes")
	}
	evil := bytes.Clone(data)
	copy(evil[i:], `..\..\evil`)
	evilPath := filepath.Join(work, "evil.cab")
	os.WriteFile(evilPath, evil, 0o644)
	truncPath := filepath.Join(work, "truncated.cab")
	os.WriteFile(truncPath, data[:len(data)-10], 0o644)
	notCab := filepath.Join(work, "not.cab")
	os.WriteFile(notCab, []byte("MZ this is not a cabinet"), 0o644)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"name escaping the folder", []string{"cab", "extract", evilPath, "-o", "OUT"}, 1, `contains a ".." component`},
		{"truncated cabinet", []string{"cab", "extract", truncPath, "-o", "OUT"}, 1, "truncated.cab"},
		{"not a cabinet", []string{"cab", "list", notCab}, 1, "not.cab"},
		{"missing file", []string{"cab", "list", filepath.Join(work, "nope.cab")}, 1, "no such file"},
		{"no -o", []string{"cab", "extract", good}, 2, "needs -o DIR"},
		{"two files", []string{"cab", "list", good, good}, 2, "takes one FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			res := e2e.Run(t, dir, nil, tt.args...)
			if res.Code != tt.wantCode || !strings.Contains(res.Stderr, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", res.Code, res.Stderr, tt.wantCode, tt.wantErr)
			}
			if strings.Count(res.Stderr, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", res.Stderr)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 0 {
				t.Errorf("a refused command wrote %v", entries)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "evil")); err == nil {
				t.Error("a member escaped the output folder")
			}
		})
	}
}
