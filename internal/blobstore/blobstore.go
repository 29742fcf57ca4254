// Package blobstore is the file store of a pool (SPEC §11): the update
// files and device logs that every front end serves, kept where all of
// them reach, in a shared folder (Dir) or an S3-compatible bucket (S3).
//
// Objects are content-addressed: an object's key is the SHA-256 of its
// bytes, 64 lower-case hex digits, and nothing else is a key. That gives
// the store its three promises without any locking across front ends:
//
//   - a file is written once: Put of content already stored does nothing,
//     and two front ends putting the same file at once write the same
//     bytes under the same key, the last rename or upload winning;
//   - nothing half-written or wrong is ever visible: Put stages the bytes
//     out of the key space, checks their hash (and size) and only then
//     moves them under their key;
//   - a damaged file is never served whole: Open hashes what it reads and
//     returns ErrCorrupt in place of the last bytes when the object is not
//     what its key names (or before the first byte of a range).
//
// The records (the store of rules and updates) say which keys are in use;
// this package keeps no reference counts. Deleting a key that a record
// still names is the caller's mistake, and so is forgetting to delete one
// that none names. Since a Put of a stored file is a no-op, a delete
// racing an import of the same file could remove what the import relies
// on: a delete checks that no record names the key and deletes under a
// pool-wide lock that an import holds from its first Put to its commit.
//
// # Layout and configuration
//
// Dir keeps key k at <folder>/sha256/<k[0:2]>/<k[2:4]>/<k>, read-only,
// and stages in .tmp-* files beside it (or in <folder>/.incoming when
// the hash is not known yet). S3 keeps it at PREFIX/sha256/<k> and
// stages in PREFIX/.incoming/. Names outside that layout are ignored;
// RemoveStale deletes the staged files a crash left.
//
// S3 is configured by the AWS tools' environment variables (see
// S3ConfigFromEnv): AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) for a store
// other than Amazon's, e.g. http://minio.example:9000; AWS_ACCESS_KEY_ID
// and AWS_SECRET_ACCESS_KEY (required), AWS_SESSION_TOKEN; AWS_REGION
// (or AWS_DEFAULT_REGION). Credentials never go in the --files URL.
//
// # Update files
//
// An update's files are named in its record with their SHA-256 and size
// (deviceupdate.UpdateFile), so a pool needs no other index: an import
// Puts each staged file with its hash before committing the records; a
// download reads the record the path names (updatestore.ParseFilePath)
// and serves Open(file.SHA256) through a front end's Cache with
// http.ServeContent; a chunk list reads the same; a files clear deletes,
// after its commit, the keys that no remaining record names. Two updates
// sharing a file share one object.
//
// # Device logs
//
// A device log is named by its path, <LogType>/<device>/<file>, and a
// re-upload of the same path replaces it (SPEC §6), so a log cannot be
// named by its content alone. The proposal for a pool: keep each log's
// bytes here under their SHA-256 (Put with an empty hash, which computes
// it), and the path in the store's records, as a row
// (type, device, name) → (key, size, modified). An upload puts the bytes,
// then upserts the row; a clean-up or quota deletes rows, then deletes
// the keys no row names any more (two devices uploading the same file
// share one object, which is why the delete waits for the last row).
// Listing logs is then a query on the rows, never a List of the bucket.
// The single server keeps its folder layout under Logs/Client.
package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// Errors the stores return, checked with errors.Is.
var (
	// ErrNotFound: no object has this key.
	ErrNotFound = errors.New("no such object")
	// ErrInvalidKey: the key is not 64 lower-case hex digits (or a list
	// prefix is not a prefix of one).
	ErrInvalidKey = errors.New("not a SHA-256 key (64 lower-case hex digits)")
	// ErrMismatch: Put was given bytes whose SHA-256 or size is not the
	// one announced; nothing was stored.
	ErrMismatch = errors.New("content does not match its announced SHA-256 or size")
	// ErrCorrupt: a stored object's bytes are not those its key names.
	// Open returns it at the end of the object, or before the first byte
	// of a read that does not start where the previous one ended.
	ErrCorrupt = errors.New("stored object is damaged: its content does not match its key")
)

// MaxListLimit bounds one page of List.
const MaxListLimit = 1000

// Info describes one stored object.
type Info struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Store is a content-addressed file store. Every method is safe for
// concurrent use, by one process or by several sharing the backend.
type Store interface {
	// Put stores the bytes r yields and returns their key. size is their
	// length, or -1 when unknown; wantSHA256 their SHA-256 in hex, or ""
	// to have it computed (the key is then returned). Bytes that do not
	// match a given size or hash are ErrMismatch and leave nothing
	// visible. When wantSHA256 is given and already stored, Put returns
	// at once without reading r.
	Put(ctx context.Context, r io.Reader, size int64, wantSHA256 string) (string, error)
	// Open opens an object for reading. The reader checks the object's
	// SHA-256 as it is read from the start to the end and, on a
	// mismatch, returns ErrCorrupt in place of the last bytes. A read after a Seek
	// elsewhere first checks the whole object (ErrCorrupt before any
	// byte); a read that stops before the end is not checked (Reader's
	// Verify checks it). ErrNotFound when the key is not stored.
	Open(ctx context.Context, key string) (*Reader, Info, error)
	// Stat describes an object; ErrNotFound when the key is not stored.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes an object; deleting a key that is not stored is not
	// an error, so that two front ends may clear the same file.
	Delete(ctx context.Context, key string) error
	// List returns, in key order, up to limit objects (at most
	// MaxListLimit; 0 means MaxListLimit) whose key starts with prefix
	// (lower-case hex, possibly empty) and sorts after after ("" for the
	// first page; else the last key of the previous page). A page shorter
	// than the limit is the last.
	List(ctx context.Context, prefix, after string, limit int) ([]Info, error)
	// RemoveStale deletes the files being put that were last written
	// before now minus age: those a crashed Put left. With age 0, the
	// caller holds what keeps every Put out (the pool's lock).
	RemoveStale(ctx context.Context, age time.Duration, now time.Time) (int, error)
}

// ValidKey reports whether key is a SHA-256 in lower-case hex: the only
// names the stores use, so that no key names a path or an object outside
// the store.
func ValidKey(key string) bool {
	return len(key) == sha256.Size*2 && isLowerHex(key)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkKey returns ErrInvalidKey, naming the key's length only (a hostile
// key is not echoed into logs), unless the key is valid.
func checkKey(key string) error {
	if !ValidKey(key) {
		return fmt.Errorf("key of %d bytes: %w", len(key), ErrInvalidKey)
	}
	return nil
}

// checkList validates List's arguments and returns the limit to use.
func checkList(prefix, after string, limit int) (int, error) {
	if len(prefix) > sha256.Size*2 || !isLowerHex(prefix) {
		return 0, fmt.Errorf("list prefix of %d bytes: %w", len(prefix), ErrInvalidKey)
	}
	if after != "" && !ValidKey(after) {
		return 0, fmt.Errorf("list after a key of %d bytes: %w", len(after), ErrInvalidKey)
	}
	if limit < 0 {
		return 0, fmt.Errorf("list limit %d is negative", limit)
	}
	if limit == 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	return limit, nil
}

// checkPut validates Put's announced size and hash.
func checkPut(size int64, wantSHA256 string) error {
	if size < -1 {
		return fmt.Errorf("put: size %d is negative", size)
	}
	if wantSHA256 != "" {
		return checkKey(wantSHA256)
	}
	return nil
}

// hashingReader counts and hashes the bytes a Put reads, refuses more
// than the announced size as soon as they come, and stops when the Put's
// context ends.
type hashingReader struct {
	ctx  context.Context
	r    io.Reader
	h    hash.Hash
	n    int64
	size int64 // -1: unknown
	err  error // r's failure, or too many bytes
}

func newHashingReader(ctx context.Context, r io.Reader, size int64) *hashingReader {
	return &hashingReader{ctx: ctx, r: r, h: sha256.New(), size: size}
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	if err := hr.ctx.Err(); err != nil {
		hr.err = err
		return 0, err
	}
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	switch {
	case hr.size >= 0 && hr.n > hr.size:
		hr.err = fmt.Errorf("put: more than the announced %d bytes: %w", hr.size, ErrMismatch)
		return n, hr.err
	case err == io.EOF && hr.size >= 0 && hr.n < hr.size:
		// Said at once, so that no client sends (and retries) a short body.
		hr.err = fmt.Errorf("put: %d bytes, not the announced %d: %w", hr.n, hr.size, ErrMismatch)
		return n, hr.err
	case err != nil && err != io.EOF:
		hr.err = err
	}
	return n, err
}

// check returns the key of the bytes read, or ErrMismatch when they are
// not the announced size and hash.
func (hr *hashingReader) check(wantSHA256 string) (string, error) {
	if hr.size >= 0 && hr.n != hr.size {
		return "", fmt.Errorf("put: %d bytes, not the announced %d: %w", hr.n, hr.size, ErrMismatch)
	}
	key := hex.EncodeToString(hr.h.Sum(nil))
	if wantSHA256 != "" && key != wantSHA256 {
		return "", fmt.Errorf("put: SHA-256 %s, not the announced %s: %w", key, wantSHA256, ErrMismatch)
	}
	return key, nil
}

// Reader reads a stored object and checks it against its key. It
// implements io.ReadSeekCloser, so that http.ServeContent serves it
// (ranges included). Not safe for concurrent use.
//
// Reads from the start to the end (a whole download) hash the bytes on
// the way and cost one pass; the last Read returns ErrCorrupt, and not
// the object's last bytes, when the object is damaged. A read anywhere
// else (a range after a Seek) first hashes the whole object, so that a
// damaged object serves no byte. The object is the size Open found.
type Reader struct {
	src       io.ReadSeekCloser
	key       string
	size      int64
	h         hash.Hash
	hashed    int64 // the bytes hashed, from the start
	pos       int64 // where the caller's next Read starts
	srcPos    int64 // where src's next Read starts
	verified  bool
	err       error  // sticky: ErrCorrupt once found
	onCorrupt func() // called once when the object is found damaged
}

func newReader(src io.ReadSeekCloser, key string, size int64) *Reader {
	return &Reader{src: src, key: key, size: size, h: sha256.New()}
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if !r.verified && r.pos != r.hashed {
		if err := r.Verify(); err != nil {
			return 0, err
		}
	}
	if r.pos >= r.size {
		if !r.verified {
			if err := r.finish(); err != nil { // an empty object
				return 0, err
			}
		}
		return 0, io.EOF
	}
	// The object is the size bytes Open found: no more are read.
	if rest := r.size - r.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	if r.srcPos != r.pos {
		if _, err := r.src.Seek(r.pos, io.SeekStart); err != nil {
			return 0, fmt.Errorf("read object %s: %w", r.key, err)
		}
		r.srcPos = r.pos
	}
	n, err := r.src.Read(p)
	r.pos += int64(n)
	r.srcPos = r.pos
	if r.verified {
		return n, err
	}
	r.h.Write(p[:n])
	r.hashed += int64(n)
	if r.hashed == r.size || err == io.EOF {
		// The last bytes are held back until the whole object checks out:
		// a reader that stops at the size without reading to io.EOF
		// (io.CopyN, http.ServeContent) never gets a damaged object whole.
		if cerr := r.finish(); cerr != nil {
			return 0, cerr
		}
	}
	return n, err
}

// finish compares the hash of the whole object, once hashed to its end,
// with its key.
func (r *Reader) finish() error {
	if hex.EncodeToString(r.h.Sum(nil)) != r.key {
		r.err = fmt.Errorf("object %s: %w", r.key, ErrCorrupt)
		if r.onCorrupt != nil {
			r.onCorrupt()
			r.onCorrupt = nil
		}
		return r.err
	}
	r.verified = true
	return nil
}

// Verify reads the rest of the object that has not been hashed yet and
// returns ErrCorrupt when the object is damaged. After it returns nil,
// reads are no longer hashed.
func (r *Reader) Verify() error {
	if r.err != nil || r.verified {
		return r.err
	}
	if r.srcPos != r.hashed {
		if _, err := r.src.Seek(r.hashed, io.SeekStart); err != nil {
			return fmt.Errorf("verify object %s: %w", r.key, err)
		}
		r.srcPos = r.hashed
	}
	n, err := io.Copy(r.h, io.LimitReader(r.src, r.size-r.hashed))
	r.hashed += n
	r.srcPos += n
	if err != nil {
		return fmt.Errorf("verify object %s: %w", r.key, err)
	}
	return r.finish()
}

// Seek implements io.Seeker; the size is the stored object's, as Open
// found it.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return r.pos, fmt.Errorf("seek object %s: whence %d: %w", r.key, whence, errors.ErrUnsupported)
	}
	if abs < 0 {
		return r.pos, fmt.Errorf("seek object %s: negative position %d", r.key, abs)
	}
	r.pos = abs
	return abs, nil
}

// Close implements io.Closer.
func (r *Reader) Close() error { return r.src.Close() }
