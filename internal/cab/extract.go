package cab

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// SafePath turns a member name into a clean relative path with `/`
// separators, suitable for filepath.FromSlash below an extraction
// directory. The cabinet separator `\` becomes `/`. Names that are empty,
// absolute (a leading `/` or `\`), carry a drive letter ("C:"), contain a
// ".." component or a NUL byte are refused with an error wrapping
// [ErrUnsafeName] that quotes the name. Empty and "." components are
// dropped.
func SafePath(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrUnsafeName, name, why)
	}
	if name == "" {
		return bad("empty name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return bad("contains a NUL byte")
	}
	p := strings.ReplaceAll(name, `\`, "/")
	if p[0] == '/' {
		return bad("absolute path")
	}
	if len(p) >= 2 && p[1] == ':' && ('a' <= p[0]|0x20 && p[0]|0x20 <= 'z') {
		return bad("drive letter")
	}
	parts := strings.Split(p, "/")
	kept := parts[:0]
	for _, c := range parts {
		switch c {
		case "..":
			return bad(`contains a ".." component`)
		case "", ".":
			continue
		}
		kept = append(kept, c)
	}
	if len(kept) == 0 {
		return bad("names no file")
	}
	return strings.Join(kept, "/"), nil
}

// ExtractTo writes every member of the cabinet below dir, which is created
// if needed, and returns the paths it wrote (dir joined with the member's
// safe path) in the order written.
//
// Before writing anything it checks every name with [SafePath], refuses a
// name that is used both as a file and as a directory, and checks that
// every member can be decoded. Members are then decoded into a staging
// folder inside dir and, only when every one decoded, renamed into place;
// any failure removes the staging folder, so a refused cabinet leaves dir
// as it was. Each member gets its permissions from [File.Mode] and its
// modification time from the cabinet. All file system access goes through
// an [os.Root] on dir, so no symbolic link can lead outside it. A later
// member with the same name as an earlier one replaces it, as with
// cabextract.
func (r *Reader) ExtractTo(dir string) ([]string, error) {
	paths := make([]string, len(r.Files))
	files := make(map[string]int, len(r.Files))
	dirs := make(map[string]int)
	for i, f := range r.Files {
		p, err := SafePath(f.Name)
		if err != nil {
			return nil, fmt.Errorf("member %d: %w", i, err)
		}
		paths[i] = p
		files[p] = i
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			dirs[d] = i
		}
	}
	for p, i := range files {
		if j, ok := dirs[p]; ok {
			return nil, fmt.Errorf("%w: member %d %q is also the directory of member %d %q",
				ErrUnsafeName, i, r.Files[i].Name, j, r.Files[j].Name)
		}
	}
	for _, f := range r.Files {
		if err := f.openErr(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	staging, err := createStaging(root)
	if err != nil {
		return nil, err
	}
	defer root.RemoveAll(staging)

	// Decode every member into staging/<index>, in folder order.
	var order []int
	err = r.Walk(func(f *File, rd io.Reader) error {
		name := path.Join(staging, strconv.Itoa(f.index))
		out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if err := writeMember(root, name, out, f, rd); err != nil {
			return fmt.Errorf("cab: extracting %s: %w", f.item(), err)
		}
		order = append(order, f.index)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Every member decoded: move them into place, in file-table order so
	// that the last of several same-named members wins.
	sort.Ints(order)
	written := make([]string, 0, len(order))
	for _, i := range order {
		rel := paths[i]
		if parent := path.Dir(rel); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return written, err
			}
		}
		if err := root.Rename(path.Join(staging, strconv.Itoa(i)), rel); err != nil {
			return written, err
		}
		written = append(written, filepath.Join(dir, filepath.FromSlash(rel)))
	}
	return written, nil
}

// createStaging makes a new, uniquely named staging folder in root.
func createStaging(root *os.Root) (string, error) {
	for seq := 0; ; seq++ {
		name := fmt.Sprintf(".cab-extract-%d-%d", os.Getpid(), seq)
		err := root.Mkdir(name, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, err
	}
}

// writeMember copies the member into out, closes it and sets its mode and
// times.
func writeMember(root *os.Root, name string, out *os.File, f *File, rd io.Reader) error {
	_, err := io.Copy(out, rd)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := root.Chmod(name, f.Mode()); err != nil {
		return err
	}
	return root.Chtimes(name, f.Modified, f.Modified)
}
