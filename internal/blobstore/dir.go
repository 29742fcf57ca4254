package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/fsutil"
)

// Folders inside a Dir store.
const (
	// objectsDir holds the objects, fanned out by their first two bytes:
	// sha256/ab/cd/abcd... (at most 65,536 folders, so that 100,000
	// objects leave each folder small on any shared file system).
	objectsDir = "sha256"
	// incomingDir holds Puts of unknown hash while they are written.
	incomingDir = ".incoming"
	// tmpPrefix begins the name of a file being written.
	tmpPrefix = ".tmp-"
)

// DirStore keeps the objects in a folder, a shared file system for a
// pool (Lync's file store). Writes are atomic: a temporary file in the
// object's folder, synced, renamed under the key, the folder synced.
type DirStore struct {
	root string
}

var _ Store = (*DirStore)(nil)

// Dir returns the store in the folder path, which it creates when
// missing.
func Dir(path string) (*DirStore, error) {
	if path == "" {
		return nil, errors.New("files folder: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("files folder %s: %w", path, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, objectsDir), filepath.Join(abs, incomingDir)} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("files folder: %w", err)
		}
	}
	return &DirStore{root: abs}, nil
}

// Root returns the store's folder.
func (d *DirStore) Root() string { return d.root }

// folder returns the folder of a valid key.
func (d *DirStore) folder(key string) string {
	return filepath.Join(d.root, objectsDir, key[:2], key[2:4])
}

func (d *DirStore) path(key string) string {
	return filepath.Join(d.folder(key), key)
}

// Put implements Store.
func (d *DirStore) Put(ctx context.Context, r io.Reader, size int64, wantSHA256 string) (string, error) {
	if err := checkPut(size, wantSHA256); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	// Known hash: staged in the object's folder. Unknown: in .incoming,
	// moved to its folder once hashed (on the same file system).
	stageIn := filepath.Join(d.root, incomingDir)
	var created []string // parents of new folders, synced after the rename
	if wantSHA256 != "" {
		if d.present(wantSHA256, size) {
			return wantSHA256, nil
		}
		stageIn = d.folder(wantSHA256)
		var err error
		if created, err = mkdirs(stageIn); err != nil {
			return "", fmt.Errorf("put: %w", err)
		}
	}
	f, err := os.CreateTemp(stageIn, tmpPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if tmp != "" {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	hr := newHashingReader(ctx, r, size)
	if _, err := io.Copy(f, hr); errors.Is(err, ErrMismatch) {
		return "", err
	} else if err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	key, err := hr.check(wantSHA256)
	if err != nil {
		return "", err
	}
	if wantSHA256 == "" && d.present(key, hr.n) {
		return key, nil // stored already: the deferred clean-up drops the copy
	}
	if err := f.Chmod(0o440); err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	dir := d.folder(key)
	if wantSHA256 == "" {
		if created, err = mkdirs(dir); err != nil {
			return "", fmt.Errorf("put: %w", err)
		}
	}
	if err := os.Rename(tmp, d.path(key)); err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	tmp = ""
	for _, dir := range append([]string{dir}, created...) {
		if err := fsutil.SyncDir(dir); err != nil {
			return "", fmt.Errorf("put: %w", err)
		}
	}
	return key, nil
}

// present reports whether key is stored with the announced size (any
// size when unknown). A stored object of another size is damaged, and
// Put replaces it.
func (d *DirStore) present(key string, size int64) bool {
	fi, err := os.Lstat(d.path(key))
	return err == nil && fi.Mode().IsRegular() && (size < 0 || fi.Size() == size)
}

// mkdirs makes the missing folders of an object's folder and returns the
// parents whose entries changed, so that they are synced too.
func mkdirs(dir string) ([]string, error) {
	var changed []string
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		}
		changed = append(changed, filepath.Dir(p))
	}
	if len(changed) == 0 {
		return nil, nil
	}
	return changed, os.MkdirAll(dir, 0o750)
}

// Open implements Store.
func (d *DirStore) Open(_ context.Context, key string) (*Reader, Info, error) {
	if err := checkKey(key); err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Info{}, fmt.Errorf("object %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("open object: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", f.Name())
	}
	if err != nil {
		f.Close()
		return nil, Info{}, fmt.Errorf("open object: %w", err)
	}
	info := Info{Key: key, Size: fi.Size(), Modified: fi.ModTime().UTC()}
	return newReader(f, key, info.Size), info, nil
}

// Stat implements Store.
func (d *DirStore) Stat(_ context.Context, key string) (Info, error) {
	if err := checkKey(key); err != nil {
		return Info{}, err
	}
	fi, err := os.Lstat(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("object %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat object: %w", err)
	}
	return Info{Key: key, Size: fi.Size(), Modified: fi.ModTime().UTC()}, nil
}

// Delete implements Store. The emptied fan-out folders stay: another
// front end may be putting into them.
func (d *DirStore) Delete(_ context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := os.Remove(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete object: %w", err)
	}
	return fsutil.SyncDir(d.folder(key))
}

// List implements Store. It reads only the fan-out folders that may hold
// keys of the page.
func (d *DirStore) List(ctx context.Context, prefix, after string, limit int) ([]Info, error) {
	limit, err := checkList(prefix, after, limit)
	if err != nil {
		return nil, err
	}
	page := []Info{}
	base := filepath.Join(d.root, objectsDir)
	err = d.walkLevel(base, 0, prefix, after, func() bool {
		return len(page) < limit
	}, func(dir, name string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := os.Lstat(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted since the folder was read
		}
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			page = append(page, Info{Key: name, Size: fi.Size(), Modified: fi.ModTime().UTC()})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	return page, nil
}

// walkLevel visits, in order, the entries of the fan-out folder dir at
// level (0: sha256/, 1: sha256/ab/, 2: sha256/ab/cd/) that may hold keys
// starting with prefix and sorting after after, while more() holds.
// Names that are not part of the layout (temporary files, anything an
// operator left) are skipped.
func (d *DirStore) walkLevel(dir string, level int, prefix, after string, more func() bool, visit func(dir, name string) error) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) && level > 0 {
		return nil // removed by hand meanwhile
	}
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	// So far the key is fixed up to 2*level digits by the path; each
	// name at this level adds 2 digits (level < 2) or is the key.
	for _, name := range names {
		if !more() {
			return nil
		}
		var full string // the key digits this entry fixes
		if level < 2 {
			if len(name) != 2 || !isLowerHex(name) {
				continue
			}
			full = filepath.Base(dir) + name
			if level == 0 {
				full = name
			}
		} else {
			if !ValidKey(name) || !strings.HasPrefix(name, filepath.Base(filepath.Dir(dir))+filepath.Base(dir)) {
				continue
			}
			full = name
		}
		if !compatible(full, prefix) {
			continue
		}
		if after != "" {
			// Skip what sorts wholly before after: a folder whose digits
			// come first, or a key up to after itself.
			if a := after[:len(full)]; full < a || level == 2 && full == a {
				continue
			}
		}
		if level < 2 {
			if err := d.walkLevel(filepath.Join(dir, name), level+1, prefix, after, more, visit); err != nil {
				return err
			}
			continue
		}
		if err := visit(dir, name); err != nil {
			return err
		}
	}
	return nil
}

// compatible reports whether a key beginning with digits may start with
// prefix.
func compatible(digits, prefix string) bool {
	n := min(len(digits), len(prefix))
	return digits[:n] == prefix[:n]
}

// RemoveStale deletes the temporary files a crash left behind, those
// older than age: a Put in progress on another front end is younger. It
// returns how many it removed.
func (d *DirStore) RemoveStale(ctx context.Context, age time.Duration, now time.Time) (int, error) {
	removed := 0
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || !strings.HasPrefix(e.Name(), tmpPrefix) {
			return nil
		}
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) < age {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed++
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("remove stale files: %w", err)
	}
	return removed, nil
}
