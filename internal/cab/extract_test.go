package cab

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func readDirNames(dir string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return err
	})
	sort.Strings(names)
	return names, err
}

func TestSafePath(t *testing.T) {
	tests := []struct {
		name, want string
		ok         bool
	}{
		{`a.txt`, "a.txt", true},
		{`dir\sub\file.bin`, "dir/sub/file.bin", true},
		{`dir/sub/file.bin`, "dir/sub/file.bin", true},
		{`.\a\.\b`, "a/b", true},
		{`a\\b`, "a/b", true},
		{`dir\`, "dir", true},
		{`..x\y..`, "..x/y..", true},
		{``, "", false},
		{`..\..\x`, "", false},
		{`a\..\b`, "", false},
		{`..`, "", false},
		{`/etc/x`, "", false},
		{`\x`, "", false},
		{`\\server\share\x`, "", false},
		{`C:\x`, "", false},
		{`c:x`, "", false},
		{"a\x00b", "", false},
		{`.`, "", false},
		{`\`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SafePath(tt.name)
			if !tt.ok {
				if !errors.Is(err, ErrUnsafeName) {
					t.Fatalf("SafePath(%q) = %q, %v; want ErrUnsafeName", tt.name, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("SafePath(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
			}
		})
	}
}

func TestExtractTo(t *testing.T) {
	modified := time.Date(2019, 6, 30, 12, 0, 4, 0, time.UTC)
	date := uint16((2019-1980)<<9 | 6<<5 | 30)
	tm := uint16(12<<11 | 0<<5 | 4/2)
	c := tCab{folders: []tFolder{{comp: CompressMSZIP}, {comp: CompressNone}}, files: []tFile{
		{name: `top.txt`, data: []byte("top"), date: date, time: tm},
		{name: `dir\sub\deep.bin`, data: semiRandom(1, 70000), folder: 1, date: date, time: tm},
		{name: `dir\ro.txt`, data: []byte("read only"), attrs: AttrReadOnly, date: date, time: tm},
		{name: `dir\run.sh`, data: []byte("#!/bin/sh\n"), attrs: AttrExec, date: date, time: tm},
		{name: `empty`, date: date, time: tm},
	}}
	b, _ := c.build(t)
	r := openBytes(t, b)
	dir := filepath.Join(t.TempDir(), "out")
	written, err := r.ExtractTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != len(c.files) {
		t.Errorf("written = %v", written)
	}
	for _, f := range c.files {
		rel, _ := SafePath(f.name)
		p := filepath.Join(dir, filepath.FromSlash(rel))
		got, err := os.ReadFile(p)
		if err != nil || string(got) != string(f.data) {
			t.Errorf("%s: %v (%d bytes, want %d)", rel, err, len(got), len(f.data))
		}
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if !st.ModTime().Equal(modified) {
			t.Errorf("%s: mtime %v, want %v", rel, st.ModTime(), modified)
		}
		want := os.FileMode(0o644)
		switch {
		case f.attrs&AttrReadOnly != 0:
			want = 0o444
		case f.attrs&AttrExec != 0:
			want = 0o755
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", rel, st.Mode().Perm(), want)
		}
	}
	names, _ := readDirNames(dir)
	for _, n := range names {
		if strings.Contains(n, ".tmp") {
			t.Errorf("temporary file %s left behind", n)
		}
	}
	// Extracting again replaces the files.
	if _, err := r.ExtractTo(dir); err != nil {
		t.Errorf("second extraction: %v", err)
	}
}

// TestExtractRefusesUnsafeNames checks that one bad name anywhere in the
// cabinet stops extraction before anything is written.
func TestExtractRefusesUnsafeNames(t *testing.T) {
	for _, bad := range []string{`..\..\x`, `/etc/x`, `C:\x`, `\x`, `a\..\..\b`, ``} {
		t.Run(bad, func(t *testing.T) {
			c := tCab{folders: []tFolder{{comp: CompressNone}}, files: []tFile{
				{name: "good1", data: []byte("1")},
				{name: bad, data: []byte("evil")},
				{name: "good2", data: []byte("2")},
			}}
			b, _ := c.build(t)
			r := openBytes(t, b)
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			_, err := r.ExtractTo(dir)
			if !errors.Is(err, ErrUnsafeName) {
				t.Fatalf("error %v, want ErrUnsafeName", err)
			}
			if !strings.Contains(err.Error(), "member 1") {
				t.Errorf("error %q does not name the member", err)
			}
			if names, _ := readDirNames(parent); len(names) != 0 {
				t.Errorf("files written despite the refusal: %v", names)
			}
		})
	}
}

func TestExtractFileDirectoryConflict(t *testing.T) {
	c := tCab{folders: []tFolder{{comp: CompressNone}}, files: []tFile{
		{name: `a`, data: []byte("file")},
		{name: `a\b`, data: []byte("under a")},
	}}
	b, _ := c.build(t)
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := openBytes(t, b).ExtractTo(dir); !errors.Is(err, ErrUnsafeName) {
		t.Fatalf("error %v, want ErrUnsafeName", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("output directory created despite the refusal")
	}
}

// TestExtractDoesNotFollowSymlinksOut plants symbolic links in the target
// directory that point outside it.
func TestExtractDoesNotFollowSymlinksOut(t *testing.T) {
	outside := t.TempDir()
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "sub")); err != nil {
		t.Skipf("symlinks not available: %v", err)
	}
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	c := tCab{folders: []tFolder{{comp: CompressNone}}, files: []tFile{
		{name: `link`, data: []byte("replaces the link, not the target")},
		{name: `sub\x`, data: []byte("must not land outside")},
	}}
	b, _ := c.build(t)
	_, err := openBytes(t, b).ExtractTo(dir)
	if err == nil {
		t.Fatalf("extraction through a symlink to outside succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); !os.IsNotExist(err) {
		t.Errorf("a file was written outside the directory")
	}
	if got, _ := os.ReadFile(victim); string(got) != "keep" {
		t.Errorf("the symlink's target was overwritten: %q", got)
	}
	if st, err := os.Lstat(filepath.Join(dir, "link")); err != nil || st.Mode()&os.ModeSymlink != 0 {
		t.Errorf("member 'link' did not replace the symlink itself: %v", err)
	}
}
