package cab

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
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
	return ExtractAll(dir, []*Reader{r})
}

// ExtractAll writes the members of several cabinets, such as those
// [Search] finds in one file, below dir, as [Reader.ExtractTo] does for
// one: every check is made on all of them before anything is written, and
// members are renamed into place only when every member of every cabinet
// decoded. Where cabextract would let a member of a later cabinet
// overwrite one of an earlier cabinet, ExtractAll refuses the name with an
// error wrapping [ErrUnsafeName].
func ExtractAll(dir string, cabs []*Reader) ([]string, error) {
	type member struct {
		c, i int    // cabinet and file index
		path string // safe path
	}
	var members []member
	files := make(map[string]member)
	dirs := make(map[string]member)
	name := func(m member) string {
		f := cabs[m.c].Files[m.i]
		if len(cabs) == 1 {
			return fmt.Sprintf("member %d %q", m.i, f.Name)
		}
		return fmt.Sprintf("member %d %q of the cabinet at offset %d", m.i, f.Name, cabs[m.c].Offset)
	}
	for c, r := range cabs {
		for i, f := range r.Files {
			p, err := SafePath(f.Name)
			m := member{c, i, p}
			if err != nil {
				if len(cabs) == 1 {
					return nil, fmt.Errorf("member %d: %w", i, err)
				}
				return nil, fmt.Errorf("member %d of the cabinet at offset %d: %w", i, r.Offset, err)
			}
			if prev, ok := files[p]; ok && prev.c != c {
				return nil, fmt.Errorf("%w: %q names member %d of the cabinet at offset %d and member %d of the cabinet at offset %d; one would overwrite the other",
					ErrUnsafeName, p, prev.i, cabs[prev.c].Offset, i, r.Offset)
			}
			members = append(members, m)
			files[p] = m
			for d := path.Dir(p); d != "."; d = path.Dir(d) {
				dirs[d] = m
			}
		}
	}
	for p, m := range files {
		if d, ok := dirs[p]; ok {
			return nil, fmt.Errorf("%w: %s is also the directory of %s", ErrUnsafeName, name(m), name(d))
		}
	}
	// Errors of a cabinet inside another file name its offset in the
	// file, since theirs count from the cabinet's start.
	where := func(r *Reader, err error) error {
		if r.Offset == 0 {
			return err
		}
		return fmt.Errorf("cabinet at offset %d: %w", r.Offset, err)
	}
	for _, r := range cabs {
		for _, f := range r.Files {
			if err := f.openErr(); err != nil {
				return nil, where(r, err)
			}
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

	// Decode every member into staging/<cabinet>-<index>, in folder order.
	stagedName := func(c, i int) string { return path.Join(staging, strconv.Itoa(c)+"-"+strconv.Itoa(i)) }
	for c, r := range cabs {
		err = r.Walk(func(f *File, rd io.Reader) error {
			name := stagedName(c, f.index)
			out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if err := writeMember(root, name, out, f, rd); err != nil {
				return fmt.Errorf("cab: extracting %s: %w", f.item(), err)
			}
			return nil
		})
		if err != nil {
			return nil, where(r, err)
		}
	}
	// Every member decoded: move them into place, in file-table order so
	// that the last of several same-named members wins.
	written := make([]string, 0, len(members))
	for _, m := range members {
		if parent := path.Dir(m.path); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return written, err
			}
		}
		if err := root.Rename(stagedName(m.c, m.i), m.path); err != nil {
			return written, err
		}
		written = append(written, filepath.Join(dir, filepath.FromSlash(m.path)))
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
