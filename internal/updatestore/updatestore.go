// Package updatestore owns the update store, <data>/DeviceUpdateStore
// (SPEC §2): one folder per stored update,
// <DeviceType>/<Brand>/<Model>/<Revision>/<Locale>/<Version>/<UpdateType>/,
// holding its images, catalog and description. No other package builds or
// parses that layout. It names the folders, reads a download path back
// into the file it names, opens files for download, keeps their chunk
// lists, moves an import's staged folders in and removes cleared ones,
// and reconciles the folders with the records at start.
//
// With a pool's file store (NewShared: serve --files), the update files are
// not in folders but in that store, named by the SHA-256 their records
// hold: an import puts them (checked) before its commit, a download reads
// them through a local cache, checked as they are read, and a files clear
// deletes those no record names. Callers see the same methods either way.
//
// The records (*store.DB) are the truth and the folders follow them.
// Before a folder changes outside a transaction (an import moving files in
// before its commit, a files clear removing them after its commit), the
// records note the change as in progress, and the note ends once the
// folder is dealt with. A crash in between leaves folders the records
// note, which Reconcile removes at the next start when no update record
// names them; it removes no other folder.
package updatestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/blobstore"
)

// Dir is the update store's folder inside the data folder.
const Dir = "DeviceUpdateStore"

// StagingDir is the folder, inside the data folder, of the imports in
// progress: on the store's file system, so that moving in is a rename.
const StagingDir = "staging"

// depth counts the folders from the store to an update's files:
// DeviceType/Brand/Model/Revision/Locale/Version/UpdateType.
const depth = 7

// Store is the update store of one data folder. It is safe for
// concurrent use.
type Store struct {
	data    string
	dir     string // <data>/DeviceUpdateStore
	staging string // <data>/staging
	logger  *zap.Logger

	rootMu sync.Mutex
	root   atomic.Pointer[os.Root] // opened at the first download

	chunksMu sync.Mutex
	chunks   map[chunkKey]*chunkEntry

	// locker serializes what adds files and what deletes them.
	locker Locker
	// shared is the pool's file store and cache the local copies of its
	// files (NewShared); both nil when the files are in folders.
	shared  blobstore.Store
	cache   *blobstore.Cache
	damaged prometheus.Counter
}

// New returns the update store of the data folder dataDir, which logs
// what it finds amiss to logger (nil: nowhere).
func New(dataDir string, logger *zap.Logger) *Store {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Store{data: dataDir, dir: filepath.Join(dataDir, Dir), staging: filepath.Join(dataDir, StagingDir),
		logger: logger, chunks: map[chunkKey]*chunkEntry{}, locker: NewLocalLocker(),
		damaged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deviceupdate_update_files_damaged_total",
			Help: "Update files found damaged in the file store (--files) when read: not served whole, and reported in the log.",
		})}
}

// Collectors returns the store's metrics, for a registry.
func (s *Store) Collectors() []prometheus.Collector { return []prometheus.Collector{s.damaged} }

// Dir returns the store's folder, <data>/DeviceUpdateStore.
func (s *Store) Dir() string { return s.dir }

// Create makes the store's folder when it is missing.
func (s *Store) Create() error {
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return fmt.Errorf("create update store: %w", err)
	}
	return nil
}

// Close releases the folder the downloads are opened in.
func (s *Store) Close() error {
	if r := s.root.Swap(nil); r != nil {
		return r.Close()
	}
	return nil
}

// Rel returns the folder of an update's files inside the store, with
// slashes, as the download URLs name it: deviceupdate.Update.Folder.
func Rel(k deviceupdate.RuleKey, v deviceupdate.Version) string {
	return deviceupdate.Update{RuleKey: k, Version: v}.Folder()
}

// Folder returns the folder of an update's files in the data folder
// dataDir.
func Folder(dataDir string, k deviceupdate.RuleKey, v deviceupdate.Version) string {
	return filepath.Join(dataDir, Dir, filepath.FromSlash(Rel(k, v)))
}

// Folder returns the folder of an update's files.
func (s *Store) Folder(k deviceupdate.RuleKey, v deviceupdate.Version) string {
	return Folder(s.data, k, v)
}

// ParseFilePath reads the path of an update's file as a download URL
// names it, DeviceType/Brand/Model/Revision/Locale/Version/UpdateType/Name,
// back into the update's key and version and the file's name. The path
// comes from a phone: ok is true only when each part is an identifier
// (SPEC §3), the version is in the canonical form Rel writes and the name
// a plain file name, so that the path leads to no other place than the
// folder Rel names.
func ParseFilePath(p string) (k deviceupdate.RuleKey, v deviceupdate.Version, name string, ok bool) {
	parts := strings.SplitN(p, "/", depth+2)
	if len(parts) != depth+1 {
		return k, v, "", false
	}
	k = deviceupdate.RuleKey{DeviceType: parts[0], Brand: parts[1], Model: parts[2], Revision: parts[3], Locale: parts[4], UpdateType: parts[6]}
	v, err := deviceupdate.ParseVersion(parts[5])
	if err != nil || k.Validate() != nil || !deviceupdate.ValidFileName(parts[7]) {
		return deviceupdate.RuleKey{}, deviceupdate.Version{}, "", false
	}
	return k, v, parts[7], true
}

// HoldsFiles reports whether the update store of the data folder dataDir
// holds any file, in any folder below it.
func HoldsFiles(dataDir string) (bool, error) {
	found := false
	err := filepath.WalkDir(filepath.Join(dataDir, Dir), func(_ string, d fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case !d.IsDir():
			found = true
			return fs.SkipAll
		}
		return nil
	})
	return found, err
}

// OpenFile opens a file of a stored update for download: from its folder
// through an os.Root on the store, so that no name or link leads out of
// it, or from the pool's file store, checked as it is read (a damaged file
// ends in an error, never whole). A file that is not there is an
// fs.ErrNotExist.
func (s *Store) OpenFile(ctx context.Context, u *deviceupdate.StoredUpdate, f deviceupdate.UpdateFile) (*deviceupdate.Download, error) {
	if s.Shared() {
		r, err := s.openBlob(ctx, Rel(u.RuleKey, u.Version)+"/"+f.Name, f)
		if err != nil {
			return nil, err
		}
		// The same on every front end, whatever its copy's age.
		return &deviceupdate.Download{File: f, ModTime: u.ImportedAt, Content: r}, nil
	}
	file, err := s.open(u.RuleKey, u.Version, f.Name)
	if err != nil {
		return nil, err
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, err
	}
	return &deviceupdate.Download{File: f, ModTime: fi.ModTime(), Content: file}, nil
}

// open opens the file name of an update in its folder.
func (s *Store) open(k deviceupdate.RuleKey, v deviceupdate.Version, name string) (*os.File, error) {
	root, err := s.openRoot()
	if err != nil {
		return nil, err
	}
	return root.Open(Rel(k, v) + "/" + name)
}

// openRoot opens the store's folder once it exists, and keeps it open.
func (s *Store) openRoot() (*os.Root, error) {
	if r := s.root.Load(); r != nil {
		return r, nil
	}
	s.rootMu.Lock()
	defer s.rootMu.Unlock()
	if r := s.root.Load(); r != nil {
		return r, nil
	}
	r, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, fmt.Errorf("update store: %w", err)
	}
	s.root.Store(r)
	return r, nil
}

// Check reads an update's files in its folder (or the pool's file store)
// and checks each one's size and SHA-256 against the record.
func (s *Store) Check(ctx context.Context, u *deviceupdate.StoredUpdate) error {
	if s.Shared() {
		return s.checkBlobs(ctx, u)
	}
	dir := s.Folder(u.RuleKey, u.Version)
	buf := make([]byte, 1<<20)
	for _, want := range u.Files() {
		f, err := os.Open(filepath.Join(dir, want.Name))
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.CopyBuffer(h, f, buf)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", want.Name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != want.Size || got != want.SHA256 {
			return fmt.Errorf("%s: %d bytes with SHA-256 %s, the record says %d bytes with %s", want.Name, n, got, want.Size, want.SHA256)
		}
	}
	return nil
}
