// Package fsutil holds the one way this service writes a file that must
// never be seen half-written: stage in the same folder, fsync, rename,
// fsync the folder.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// File is one file for WriteFilesAtomic.
type File struct {
	Path string
	Data []byte
	Mode os.FileMode
}

// WriteFileAtomic writes data to path with the given mode so that path
// either keeps its old content or has all of the new, even across a crash.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return WriteFilesAtomic(File{Path: path, Data: data, Mode: mode})
}

// WriteFilesAtomic writes each file as WriteFileAtomic does, but stages
// and syncs them all before the first rename, so the renames follow one
// another in the given order with nothing in between: a reader sees a
// mix of old and new files (a certificate and the key of another) only
// for that instant, or after a crash between two renames. Should a
// staging step fail, every file keeps its old content.
func WriteFilesAtomic(files ...File) error {
	tmps := make([]string, 0, len(files))
	defer func() {
		for _, tmp := range tmps {
			_ = os.Remove(tmp) // those not renamed
		}
	}()
	for _, f := range files {
		tmp, err := stage(f)
		if err != nil {
			return err
		}
		tmps = append(tmps, tmp)
	}
	for i, f := range files {
		if err := os.Rename(tmps[i], f.Path); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		tmps[i] = ""
	}
	synced := map[string]bool{}
	for _, f := range files {
		if dir := filepath.Dir(f.Path); !synced[dir] {
			if err := SyncDir(dir); err != nil {
				return err
			}
			synced[dir] = true
		}
	}
	return nil
}

// stage writes f's data to a new file beside f.Path, synced, and returns
// its name.
func stage(f File) (string, error) {
	out, err := os.CreateTemp(filepath.Dir(f.Path), "."+filepath.Base(f.Path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", f.Path, err)
	}
	err = out.Chmod(f.Mode)
	if err == nil {
		_, err = out.Write(f.Data)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(out.Name())
		return "", fmt.Errorf("write %s: %w", f.Path, err)
	}
	return out.Name(), nil
}

// SyncDir makes a rename or create in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}
