// Package archive writes and reads the backup file of deviceupdate: a tar
// stream (POSIX ustar, PAX where a name or a time needs it) whose first entry,
// backup.json, says what it is (the format, its version, when and by which
// server it was taken) and whose last entry, manifest.json, lists every
// other entry with its size, permission bits and SHA-256.
//
// A Reader verifies as it goes: it refuses a stream that does not begin
// with backup.json, entries that are not plain files, names that are not
// clean relative paths, names seen twice, and, at the manifest, any entry
// whose size, mode or SHA-256 differs from what the manifest lists, any
// entry it lacks and any entry it lists that the stream lacked. Only when
// Next returns io.EOF has every byte been checked; a stream cut anywhere
// before that is an error wrapping ErrTruncated.
//
// The package imports nothing else of this module; what the entries mean
// (the store, the certificates) is the caller's business.
package archive

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"
)

// The format's name and version, as backup.json states them. A Reader
// refuses a newer version with ErrUnsupported.
const (
	FormatName = "deviceupdate-backup"
	Version    = 1
)

// The two entries of every backup besides its files.
const (
	HeaderName   = "backup.json"
	ManifestName = "manifest.json"
)

// Bounds a Reader holds a stream to, whatever it claims.
const (
	// MaxFiles bounds the entries of one backup.
	MaxFiles = 1 << 20
	// MaxNameLen bounds an entry's name; each element of it is at most
	// 255 bytes, as Linux file names are.
	MaxNameLen = 1024
	// maxHeaderSize bounds backup.json.
	maxHeaderSize = 64 << 10
	// maxManifestSize bounds manifest.json: MaxFiles entries of about 250
	// bytes.
	maxManifestSize = 256 << 20
)

// Sentinel errors; every error a Reader returns for bad input wraps
// ErrFormat, and one of the others says which kind it is.
var (
	ErrFormat = errors.New("malformed backup")
	// ErrNotBackup: the stream is not a tar, or does not begin with backup.json.
	ErrNotBackup = &sentinel{"not a deviceupdate backup", ErrFormat}
	// ErrTruncated: the stream ends before its manifest was read whole.
	ErrTruncated = &sentinel{"the backup is truncated", ErrFormat}
	// ErrMismatch: an entry differs from what the manifest lists, or the
	// manifest and the entries do not list the same files.
	ErrMismatch = &sentinel{"the backup does not match its manifest", ErrFormat}
	// ErrUnsafe: an entry is not a plain file or its name is not a clean
	// relative path.
	ErrUnsafe = &sentinel{"the backup holds an entry that cannot be restored safely", ErrFormat}
	// ErrUnsupported: a newer deviceupdate wrote the backup. It does not
	// wrap ErrFormat.
	ErrUnsupported = errors.New("the backup was written by a newer deviceupdate")
)

type sentinel struct {
	msg    string
	parent error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.parent }

// FormatError is bad input found at an entry (Entry is "" before the
// first). Unwrap returns the sentinel that says which kind.
type FormatError struct {
	Entry  string
	Kind   error
	Reason string
}

func (e *FormatError) Error() string {
	if e.Entry == "" {
		return e.Kind.Error() + ": " + e.Reason
	}
	return fmt.Sprintf("%s: %s: %s", e.Kind.Error(), e.Entry, e.Reason)
}

// Unwrap returns the kind of error.
func (e *FormatError) Unwrap() error { return e.Kind }

func formatErr(kind error, entry, format string, args ...any) error {
	return &FormatError{Entry: entry, Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// Header is backup.json.
type Header struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// Meta is the caller's description of what was backed up.
	Meta json.RawMessage `json:"meta,omitempty"`
}

// File is one entry as the manifest lists it.
type File struct {
	Name   string      `json:"name"`
	Size   int64       `json:"size"`
	Mode   fs.FileMode `json:"mode"` // permission bits only
	SHA256 string      `json:"sha256"`
	// ModTime is the entry's modification time, from its tar header; the
	// manifest does not vouch for it.
	ModTime time.Time `json:"-"`
}

// Manifest is manifest.json.
type Manifest struct {
	Files []File `json:"files"`
}

// CheckName reports whether name may be an entry's name: a clean relative
// path of slash-separated elements (no "", "." or ".." element, no leading
// slash), valid UTF-8 without control characters or backslashes, at most
// MaxNameLen bytes, each element at most 255.
func CheckName(name string) error {
	switch {
	case len(name) > MaxNameLen:
		return fmt.Errorf("a name longer than %d bytes", MaxNameLen)
	case !fs.ValidPath(name) || name == ".":
		return fmt.Errorf("%q is not a clean relative path", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%q is not valid UTF-8", name)
	case strings.ContainsAny(name, "\\"):
		return fmt.Errorf("%q holds a backslash", name)
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Errorf("%q holds a control character", name)
	}
	for _, el := range strings.Split(name, "/") {
		if len(el) > 255 {
			return fmt.Errorf("%q has an element longer than 255 bytes", name)
		}
	}
	return nil
}

// Writer writes a backup. Add each file, then Close to write the
// manifest; an error leaves the stream unusable.
type Writer struct {
	tw    *tar.Writer
	files []File
	names map[string]bool
	err   error
}

// NewWriter writes backup.json, with h's Created and Meta, to w.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	h.Format, h.Version = FormatName, Version
	data, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("write backup header: %w", err)
	}
	aw := &Writer{tw: tar.NewWriter(w), names: map[string]bool{HeaderName: true, ManifestName: true}}
	if err := aw.writeJSON(HeaderName, data, h.Created); err != nil {
		return nil, err
	}
	return aw, nil
}

func (w *Writer) writeJSON(name string, data []byte, modTime time.Time) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644, ModTime: modTime.Truncate(time.Second)}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write backup %s: %w", name, err)
	}
	if _, err := w.tw.Write(data); err != nil {
		return fmt.Errorf("write backup %s: %w", name, err)
	}
	return nil
}

// Add writes one file: exactly size bytes read from r, which must hold at
// least that many, with mode's permission bits and modTime. It returns the
// SHA-256 of what it wrote, as the manifest will list it.
func (w *Writer) Add(name string, mode fs.FileMode, modTime time.Time, size int64, r io.Reader) (string, error) {
	if w.err != nil {
		return "", w.err
	}
	if err := CheckName(name); err != nil {
		return "", fmt.Errorf("add %s to the backup: %w", name, err)
	}
	if w.names[name] {
		return "", fmt.Errorf("add %s to the backup: the name is taken", name)
	}
	if size < 0 {
		return "", fmt.Errorf("add %s to the backup: negative size %d", name, size)
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: int64(mode.Perm()), ModTime: modTime}
	if modTime.Nanosecond() != 0 {
		hdr.Format = tar.FormatPAX // keeps the time to the nanosecond, as the file system has it
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		w.err = fmt.Errorf("add %s to the backup: %w", name, err)
		return "", w.err
	}
	h := sha256.New()
	n, err := io.CopyN(io.MultiWriter(w.tw, h), r, size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("it ended after %d of its %d bytes", n, size)
		}
		w.err = fmt.Errorf("add %s to the backup: %w", name, err)
		return "", w.err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	w.names[name] = true
	w.files = append(w.files, File{Name: name, Size: size, Mode: mode.Perm(), SHA256: sum})
	return sum, nil
}

// Files returns the files added so far.
func (w *Writer) Files() []File { return w.files }

// Close writes the manifest and the end of the tar stream; it does not
// close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	files := w.files
	if files == nil {
		files = []File{}
	}
	data, err := json.Marshal(Manifest{Files: files})
	if err != nil {
		return fmt.Errorf("write backup manifest: %w", err)
	}
	if err := w.writeJSON(ManifestName, data, time.Now()); err != nil {
		return err
	}
	if err := w.tw.Close(); err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	return nil
}

// Reader reads and verifies a backup: Next steps from file to file, Read
// reads the current one.
type Reader struct {
	tr     *tar.Reader
	header Header
	cur    *File
	h      hash.Hash
	seen   map[string]File
	order  []string
	done   bool
	err    error
}

// NewReader reads backup.json from r and checks that it names this format
// in a version this build reads.
func NewReader(r io.Reader) (*Reader, error) {
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return nil, formatErr(ErrNotBackup, "", "%s", describeTarError(err, "no tar header"))
	}
	if hdr.Name != HeaderName || hdr.Typeflag != tar.TypeReg {
		return nil, formatErr(ErrNotBackup, "", "its first entry is %q, not %s", truncate(hdr.Name, 80), HeaderName)
	}
	if hdr.Size > maxHeaderSize {
		return nil, formatErr(ErrNotBackup, HeaderName, "%d bytes, more than the %d it may have", hdr.Size, maxHeaderSize)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return nil, formatErr(ErrTruncated, HeaderName, "%s", describeTarError(err, ""))
	}
	var h Header
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, formatErr(ErrNotBackup, HeaderName, "not JSON: %v", err)
	}
	switch {
	case h.Format != FormatName:
		return nil, formatErr(ErrNotBackup, HeaderName, "format %q, not %q", truncate(h.Format, 80), FormatName)
	case h.Version > Version:
		return nil, fmt.Errorf("%w (format version %d; this build reads up to %d): restore it with that build or a newer one", ErrUnsupported, h.Version, Version)
	case h.Version < 1:
		return nil, formatErr(ErrNotBackup, HeaderName, "format version %d", h.Version)
	}
	return &Reader{tr: tr, header: h, seen: map[string]File{}}, nil
}

// Header returns backup.json.
func (r *Reader) Header() Header { return r.header }

// Next finishes the current file (reading what the caller left of it) and
// moves to the next one. After the last file it reads the manifest,
// checks every file against it and returns io.EOF: only then is the
// backup verified. Any other error is final.
func (r *Reader) Next() (File, error) {
	if r.err != nil {
		return File{}, r.err
	}
	f, err := r.next()
	if err != nil {
		r.err = err
	}
	return f, err
}

func (r *Reader) next() (File, error) {
	if r.done {
		return File{}, io.EOF
	}
	if err := r.finish(); err != nil {
		return File{}, err
	}
	hdr, err := r.tr.Next()
	if err != nil {
		return File{}, r.tarError(err, "it ends before its manifest")
	}
	if hdr.Name == ManifestName && hdr.Typeflag == tar.TypeReg {
		if err := r.checkManifest(hdr.Size); err != nil {
			return File{}, err
		}
		if _, err := r.tr.Next(); !errors.Is(err, io.EOF) {
			if err == nil {
				return File{}, formatErr(ErrMismatch, ManifestName, "entries follow the manifest")
			}
			return File{}, r.tarError(err, "")
		}
		r.done = true
		return File{}, io.EOF
	}
	name := hdr.Name
	nameErr := CheckName(name)
	switch {
	case hdr.Typeflag != tar.TypeReg:
		return File{}, formatErr(ErrUnsafe, truncate(name, 200), "not a plain file (tar type %q)", hdr.Typeflag)
	case isSparse(hdr):
		// A sparse entry's holes read as zeros: a few bytes could claim a
		// terabyte, to be written out before the manifest could refuse it.
		return File{}, formatErr(ErrUnsafe, truncate(name, 200), "a sparse file (its size is not backed by the stream)")
	case nameErr != nil:
		return File{}, formatErr(ErrUnsafe, "", "%v", nameErr)
	case name == HeaderName || name == ManifestName:
		return File{}, formatErr(ErrMismatch, name, "a second %s", name)
	case r.seen[name].Name != "":
		return File{}, formatErr(ErrMismatch, name, "the name appears twice")
	case len(r.seen) >= MaxFiles:
		return File{}, formatErr(ErrMismatch, name, "more than %d files", MaxFiles)
	case hdr.Size < 0:
		return File{}, formatErr(ErrMismatch, name, "negative size")
	}
	f := File{Name: name, Size: hdr.Size, Mode: fs.FileMode(hdr.Mode).Perm(), ModTime: hdr.ModTime}
	r.cur, r.h = &f, sha256.New()
	return f, nil
}

// Read reads the current file's content; io.EOF at its end.
func (r *Reader) Read(p []byte) (int, error) {
	if r.cur == nil {
		return 0, io.EOF
	}
	n, err := r.tr.Read(p)
	r.h.Write(p[:n])
	if err != nil && !errors.Is(err, io.EOF) {
		err = r.tarError(err, "")
		r.err = err
	}
	return n, err
}

// finish reads the rest of the current file and records its hash.
func (r *Reader) finish() error {
	if r.cur == nil {
		return nil
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	f := *r.cur
	f.SHA256 = hex.EncodeToString(r.h.Sum(nil))
	r.seen[f.Name] = f
	r.order = append(r.order, f.Name)
	r.cur = nil
	return nil
}

// checkManifest reads manifest.json and compares it with the files read.
func (r *Reader) checkManifest(size int64) error {
	if size > maxManifestSize {
		return formatErr(ErrMismatch, ManifestName, "%d bytes, more than the %d it may have", size, maxManifestSize)
	}
	data, err := io.ReadAll(r.tr) // at most size bytes, grown as they come
	if err != nil {
		return r.tarError(err, "it ends inside its manifest")
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return formatErr(ErrMismatch, ManifestName, "not a manifest: %v", err)
	}
	listed := make(map[string]bool, len(m.Files))
	for _, want := range m.Files {
		if listed[want.Name] {
			return formatErr(ErrMismatch, truncate(want.Name, 200), "listed twice in the manifest")
		}
		listed[want.Name] = true
		got, ok := r.seen[want.Name]
		switch {
		case !ok:
			return formatErr(ErrMismatch, truncate(want.Name, 200), "listed in the manifest but missing from the backup")
		case got.Size != want.Size:
			return formatErr(ErrMismatch, want.Name, "%d bytes, the manifest says %d", got.Size, want.Size)
		case got.SHA256 != want.SHA256:
			return formatErr(ErrMismatch, want.Name, "its SHA-256 is %s, the manifest says %s (the backup was altered or damaged)", got.SHA256, truncate(want.SHA256, 64))
		case got.Mode != want.Mode.Perm():
			return formatErr(ErrMismatch, want.Name, "mode %v, the manifest says %v", got.Mode, want.Mode.Perm())
		}
	}
	for _, name := range r.order {
		if !listed[name] {
			return formatErr(ErrMismatch, name, "not in the manifest")
		}
	}
	return nil
}

// isSparse reports a PAX sparse file, which archive/tar hands out as a
// regular file whose holes it fills with zeros.
func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// tarError turns an error of the tar reader into a FormatError: a stream
// that ends early is truncated, anything else is not a sound tar.
func (r *Reader) tarError(err error, atEOF string) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		return err
	}
	entry := ""
	if r.cur != nil {
		entry = r.cur.Name
	}
	switch {
	case errors.Is(err, io.EOF) && atEOF != "":
		return formatErr(ErrTruncated, entry, "%s", atEOF)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return formatErr(ErrTruncated, entry, "it ends in the middle of an entry")
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrInsecurePath):
		return formatErr(ErrMismatch, entry, "a damaged tar header: %v", err)
	}
	return fmt.Errorf("read backup: %w", err)
}

// describeTarError says why a stream does not even start as a tar.
func describeTarError(err error, atEOF string) string {
	switch {
	case errors.Is(err, io.EOF) && atEOF != "":
		return "the file is empty"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends within its first entry"
	}
	return "not a tar stream (" + err.Error() + ")"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
