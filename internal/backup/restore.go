package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/backup/archive"
	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/fsutil"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// ErrNotEmpty means a folder to restore into holds something already.
var ErrNotEmpty = errors.New("is not empty")

// Result is what Restore laid down.
type Result struct {
	Header archive.Header
	Meta   Meta
	Files  int
	Bytes  int64
	// Warnings name what the admin should know of the restored state,
	// such as an audit trail that was already broken when it was backed up.
	Warnings []string
}

// target is one folder being restored: the folder, the temporary one
// beside it that receives the files, and whether it existed (empty).
type target struct {
	flag    string // --data or --certs, for messages
	dir     string
	tmp     string
	root    *os.Root
	existed fs.FileInfo
	made    []string // folders above dir that makeTemp created, outermost first
}

// Restore reads a backup from r and lays it into dataDir and certsDir,
// which must be empty or absent (ErrNotEmpty otherwise, naming what they
// hold). The files go into temporary folders beside them; only once every
// byte matches the manifest, the store passes bbolt's consistency check
// and both folders are complete are they renamed into place. A damaged or
// truncated backup, a cancelled ctx or a full disk leaves both folders as
// they were. ctx is checked between files; to stop within a file, close
// what r reads from.
func Restore(ctx context.Context, r io.Reader, dataDir, certsDir string) (res *Result, err error) {
	data, certsT, err := prepare(dataDir, certsDir)
	if err != nil {
		return nil, err
	}
	targets := []*target{data, certsT}
	defer func() {
		for _, t := range targets {
			if t.root != nil {
				t.root.Close()
			}
			if t.tmp != "" {
				_ = os.RemoveAll(t.tmp)
			}
		}
		for j := len(targets) - 1; err != nil && j >= 0; j-- {
			for i := len(targets[j].made) - 1; i >= 0; i-- {
				_ = os.Remove(targets[j].made[i]) // only while empty
			}
		}
	}()
	for _, t := range targets {
		if err := t.makeTemp(); err != nil {
			return nil, err
		}
	}
	res, err = extract(ctx, r, map[string]*target{"data": data, "certs": certsT})
	if err != nil {
		return nil, err
	}
	if err := checkStore(filepath.Join(data.tmp, store.FileName)); err != nil {
		return nil, err
	}
	if w := checkTrail(filepath.Join(data.tmp, filepath.FromSlash(trailPath))); w != "" {
		res.Warnings = append(res.Warnings, w)
	}
	for _, t := range targets {
		if err := syncTree(t.tmp); err != nil {
			return nil, err
		}
	}
	if err := data.moveIntoPlace(); err != nil {
		return nil, err
	}
	if err := certsT.moveIntoPlace(); err != nil {
		if berr := data.moveBack(); berr != nil {
			return nil, fmt.Errorf("%w; and moving %s back failed too: %v (remove it before restoring again)", err, data.dir, berr)
		}
		return nil, err
	}
	return res, nil
}

// prepare checks the two folders: absent or empty, and apart.
func prepare(dataDir, certsDir string) (*target, *target, error) {
	var ts [2]*target
	for i, p := range []struct{ flag, dir string }{{"--data", dataDir}, {"--certs", certsDir}} {
		abs, err := filepath.Abs(p.dir)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s: %w", p.flag, p.dir, err)
		}
		t := &target{flag: p.flag, dir: abs}
		if t.existed, err = checkEmpty(p.flag, abs); err != nil {
			return nil, nil, err
		}
		ts[i] = t
	}
	if rel, err := filepath.Rel(ts[0].dir, ts[1].dir); err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
		return nil, nil, fmt.Errorf("--certs %s lies in --data %s: restore them into separate folders", certsDir, dataDir)
	}
	if rel, err := filepath.Rel(ts[1].dir, ts[0].dir); err == nil && !strings.HasPrefix(rel, "..") {
		return nil, nil, fmt.Errorf("--data %s lies in --certs %s: restore them into separate folders", dataDir, certsDir)
	}
	return ts[0], ts[1], nil
}

// checkEmpty returns the folder's info when it exists and is empty, nil
// when it is absent, and an error naming what it holds otherwise.
func checkEmpty(flag, dir string) (fs.FileInfo, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s %s is not a folder: restore into an empty or absent folder", flag, dir)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s %s: %w", flag, dir, err)
	}
	if len(names) > 0 {
		held := strings.Join(names[:min(len(names), 3)], ", ")
		if len(names) > 3 {
			held += ", ..."
		}
		return nil, fmt.Errorf("%s %s %w (it holds %s): restore only into an empty or absent folder; stop the server and move the folder aside first", flag, dir, ErrNotEmpty, held)
	}
	return fi, nil
}

// makeTemp creates the temporary folder beside the target.
func (t *target) makeTemp() error {
	parent := filepath.Dir(t.dir)
	for p := parent; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		t.made = append([]string{p}, t.made...)
	}
	if err := os.MkdirAll(parent, 0o750); err != nil {
		return fmt.Errorf("%s: %w", t.flag, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(t.dir)+".restore-*")
	if err != nil {
		return fmt.Errorf("%s: %w", t.flag, err)
	}
	t.tmp = tmp
	mode := fs.FileMode(0o750)
	if t.existed != nil {
		mode = t.existed.Mode().Perm()
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	t.root, err = os.OpenRoot(tmp)
	return err
}

// extract reads every entry into its target's temporary folder.
func extract(ctx context.Context, r io.Reader, targets map[string]*target) (*Result, error) {
	ar, err := archive.NewReader(r)
	if err != nil {
		return nil, err
	}
	res := &Result{Header: ar.Header()}
	if err := json.Unmarshal(ar.Header().Meta, &res.Meta); err != nil {
		return nil, &archive.FormatError{Entry: archive.HeaderName, Kind: archive.ErrNotBackup, Reason: "no description of the server: " + err.Error()}
	}
	buf := make([]byte, 1<<20)
	haveStore := false
	for {
		f, err := ar.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		folder, rel, err := entryPath(f.Name)
		if err != nil {
			return nil, err
		}
		haveStore = haveStore || f.Name == dataPrefix+store.FileName
		if err := writeEntry(targets[folder], rel, f, ar, buf); err != nil {
			return nil, err
		}
		res.Files++
		res.Bytes += f.Size
	}
	if !haveStore {
		return nil, &archive.FormatError{Kind: archive.ErrMismatch, Reason: "it holds no store (" + dataPrefix + store.FileName + ")"}
	}
	return res, nil
}

// writeEntry creates rel below t's temporary folder with the entry's
// content, mode and time, and syncs it.
func writeEntry(t *target, rel string, f archive.File, r io.Reader, buf []byte) error {
	if dir := path.Dir(rel); dir != "." {
		if err := t.root.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("restore %s: %w", f.Name, err)
		}
	}
	mode := restoredMode(rel, f.Mode)
	out, err := t.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("restore %s: %w", f.Name, err)
	}
	_, err = io.CopyBuffer(out, r, buf)
	if err == nil {
		err = out.Chmod(mode) // exactly, whatever the umask
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var fe *archive.FormatError
		if errors.As(err, &fe) {
			return err
		}
		return fmt.Errorf("restore %s: %w", f.Name, err)
	}
	if !f.ModTime.IsZero() {
		_ = t.root.Chtimes(rel, time.Now(), f.ModTime)
	}
	return nil
}

// restoredMode is the recorded mode without execute bits or write access
// for others, readable and writable by the owner; keys, the admin token
// and the store are the owner's alone.
func restoredMode(rel string, recorded fs.FileMode) fs.FileMode {
	switch rel {
	case certs.CAKeyFile, certs.ServerKeyFile, certs.TokenFile, store.FileName:
		return 0o600
	}
	return recorded.Perm()&0o644 | 0o600
}

// checkStore opens the restored store read-only and checks every page.
func checkStore(p string) error {
	db, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("the backup's store does not open: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain, so the checker ends
			if first == nil {
				first = fmt.Errorf("the backup's store fails bbolt's check: %w", err)
			}
		}
		return first
	})
}

// checkTrail says when the restored audit trail does not verify.
func checkTrail(p string) string {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if err := audit.Verify(f); err != nil {
		return "the audit trail in the backup does not verify (" + err.Error() + "): it was so on the server; `deviceupdate audit verify` will report it"
	}
	return ""
}

// syncTree syncs every folder below dir and dir itself (the files were
// synced as they were written).
func syncTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := fsutil.SyncDir(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// moveIntoPlace renames the temporary folder to the target; rename(2)
// replaces an empty folder at once and refuses one that is not.
func (t *target) moveIntoPlace() error {
	t.root.Close()
	t.root = nil
	if err := syscall.Rename(t.tmp, t.dir); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("%s %s %w: something was put there during the restore; nothing was restored", t.flag, t.dir, ErrNotEmpty)
		}
		return fmt.Errorf("%s: move the restored files into %s: %w", t.flag, t.dir, err)
	}
	t.tmp = ""
	return fsutil.SyncDir(filepath.Dir(t.dir))
}

// moveBack undoes moveIntoPlace, leaving the target as it was.
func (t *target) moveBack() error {
	tmp := t.dir + ".restore-undo"
	if err := os.Rename(t.dir, tmp); err != nil {
		return err
	}
	t.tmp = tmp
	if t.existed != nil {
		return os.Mkdir(t.dir, t.existed.Mode().Perm())
	}
	return nil
}
