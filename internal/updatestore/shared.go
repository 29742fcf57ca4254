package updatestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/blobstore"
)

// CacheDir is the folder, inside the data folder, of a front end's local
// copies of a pool's update files.
const CacheDir = "cache"

// DefaultCacheBytes bounds the local copies when the caller gives no
// bound: a few updates' images.
const DefaultCacheBytes = 10 << 30

// Locker serializes, across every front end of a pool, the changes that
// add update files (an import, from its first file put to its commit)
// and those that delete them (a files clear, from reading which files the
// records name to the last deletion). Since a put of a file already
// stored writes nothing, a delete between an import's put and its commit
// would leave a committed update without its file; the lock forbids it.
type Locker interface {
	// Lock waits for the lock, or for ctx to end, and returns the
	// function that releases it.
	Lock(ctx context.Context) (unlock func(), err error)
}

// LocalLocker is a Locker for the front ends of one process: a single
// server, or a pool whose store has no lock of its own yet.
type LocalLocker struct{ ch chan struct{} }

// NewLocalLocker returns an unlocked LocalLocker.
func NewLocalLocker() *LocalLocker { return &LocalLocker{ch: make(chan struct{}, 1)} }

// Lock implements Locker.
func (l *LocalLocker) Lock(ctx context.Context) (func(), error) {
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// SharedOptions configure NewShared.
type SharedOptions struct {
	// CacheBytes bounds the local copies in <data>/cache; 0 means
	// DefaultCacheBytes.
	CacheBytes int64
	// Locker is the pool's lock; nil means a LocalLocker.
	Locker Locker
	Logger *zap.Logger
}

// NewShared returns the update store of a front end of a pool, whose
// update files are in files (a shared folder or an S3 bucket), named by
// their SHA-256 as the update records hold it, and read through a local
// cache in <data>/cache. The data folder still holds the imports being
// staged.
func NewShared(ctx context.Context, dataDir string, files blobstore.Store, o SharedOptions) (*Store, error) {
	s := New(dataDir, o.Logger)
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	cache, err := blobstore.NewCache(ctx, files, filepath.Join(dataDir, CacheDir), o.CacheBytes)
	if err != nil {
		return nil, err
	}
	if o.Locker != nil {
		s.locker = o.Locker
	}
	s.shared, s.cache = files, cache
	return s, nil
}

// Shared reports whether the update files are in a pool's file store.
func (s *Store) Shared() bool { return s.shared != nil }

// openBlob opens an update file in the pool's file store, through the
// cache. The reader reports (and refuses to finish) a damaged file.
func (s *Store) openBlob(ctx context.Context, what string, f deviceupdate.UpdateFile) (io.ReadSeekCloser, error) {
	r, info, err := s.cache.Open(ctx, f.SHA256)
	if errors.Is(err, blobstore.ErrNotFound) {
		s.logger.Error("an update file is missing from the file store; import its package again",
			zap.String("file", what), zap.String("sha256", f.SHA256))
		return nil, fmt.Errorf("%s: %w", what, os.ErrNotExist)
	}
	if err != nil {
		s.reportDamage(what, f, err)
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	if info.Size != f.Size {
		r.Close()
		err := fmt.Errorf("%d bytes, the record says %d: %w", info.Size, f.Size, blobstore.ErrCorrupt)
		s.reportDamage(what, f, err)
		return nil, fmt.Errorf("open %s: %w", what, err)
	}
	return &checkedReader{Reader: r, s: s, what: what, file: f}, nil
}

// reportDamage logs and counts a damaged update file, once per read.
func (s *Store) reportDamage(what string, f deviceupdate.UpdateFile, err error) {
	if !errors.Is(err, blobstore.ErrCorrupt) {
		return
	}
	s.damaged.Inc()
	s.logger.Error("update file damaged in the file store: not served",
		zap.String("file", what), zap.String("sha256", f.SHA256), zap.Error(err),
		zap.String("fix", "put the package's copy of the file back in the file store under its SHA-256"))
}

// checkedReader is a file store reader that reports the damage it finds.
type checkedReader struct {
	*blobstore.Reader
	s        *Store
	what     string
	file     deviceupdate.UpdateFile
	reported bool
}

func (r *checkedReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if err != nil && !r.reported && errors.Is(err, blobstore.ErrCorrupt) {
		r.reported = true
		r.s.reportDamage(r.what, r.file, err)
	}
	return n, err
}

// checkBlobs reads an update's files in the file store itself (not a
// local copy) and checks each one against the record.
func (s *Store) checkBlobs(ctx context.Context, u *deviceupdate.StoredUpdate) error {
	for _, f := range u.Files() {
		if err := verifyBlob(ctx, s.shared, f); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return nil
}

func verifyBlob(ctx context.Context, b blobstore.Store, f deviceupdate.UpdateFile) error {
	r, info, err := b.Open(ctx, f.SHA256)
	if err != nil {
		return err
	}
	defer r.Close()
	if info.Size != f.Size {
		return fmt.Errorf("%d bytes, the record says %d: %w", info.Size, f.Size, blobstore.ErrCorrupt)
	}
	return r.Verify()
}

// putBlobs puts the files of the staged updates into the file store,
// each checked against its record's size and SHA-256. A file already
// stored is read back and checked rather than written; a damaged one is
// replaced. It returns the keys it handled.
func (s *Store) putBlobs(ctx context.Context, moves []Move) ([]string, error) {
	var keys []string
	for _, m := range moves {
		for _, f := range m.Update.Files() {
			keys = append(keys, f.SHA256)
			if err := s.putBlob(ctx, filepath.Join(m.Staged, f.Name), f); err != nil {
				return keys, fmt.Errorf("import: put %s/%s in the file store: %w", Rel(m.Update.RuleKey, m.Update.Version), f.Name, err)
			}
		}
	}
	return keys, nil
}

func (s *Store) putBlob(ctx context.Context, path string, f deviceupdate.UpdateFile) error {
	return putFile(ctx, s.shared, s.cache, path, f, s.logger)
}

// putFile puts the file at path, f by its record, into a file store
// through put (the store itself, or a cache in front of it) under its
// SHA-256, checked as it is read. A copy already in the store (read in
// check, the store itself) is read back and checked instead; a damaged
// one is replaced.
func putFile(ctx context.Context, check, put blobstore.Store, path string, f deviceupdate.UpdateFile, logger *zap.Logger) error {
	err := verifyBlob(ctx, check, f)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, blobstore.ErrCorrupt):
		logger.Warn("an update file in the file store is damaged; putting the package's in its place",
			zap.String("sha256", f.SHA256), zap.Error(err))
		if err := put.Delete(ctx, f.SHA256); err != nil {
			return err
		}
	case !errors.Is(err, blobstore.ErrNotFound):
		return err
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	_, err = put.Put(ctx, file, f.Size, f.SHA256)
	return err
}

// PutShared puts the files of an update that a single server keeps in
// its data folder dataDir into a pool's file store b, each checked
// against the record (`deviceupdate migrate`). It returns the bytes of
// the files.
func PutShared(ctx context.Context, dataDir string, b blobstore.Store, u *deviceupdate.StoredUpdate, logger *zap.Logger) (int64, error) {
	var n int64
	for _, f := range u.Files() {
		if err := putFile(ctx, b, b, filepath.Join(Folder(dataDir, u.RuleKey, u.Version), f.Name), f, logger); err != nil {
			return n, fmt.Errorf("put %s/%s in the file store: %w", Rel(u.RuleKey, u.Version), f.Name, err)
		}
		n += f.Size
	}
	return n, nil
}

// referenced returns the keys the update records name.
func referenced(r Records) (map[string]bool, error) {
	updates, err := r.Updates()
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for _, u := range updates {
		for _, f := range u.Files() {
			keys[f.SHA256] = true
		}
	}
	return keys, nil
}

// deleteUnreferenced deletes the objects among keys (every object in the
// file store when keys is nil) that no update record names. Callers hold
// the pool's lock. It returns the objects and bytes deleted.
func (s *Store) deleteUnreferenced(ctx context.Context, r Records, keys []string) (n int, bytes int64, err error) {
	known, err := referenced(r)
	if err != nil {
		return 0, 0, err
	}
	del := func(in blobstore.Info) error {
		if known[in.Key] {
			return nil
		}
		if err := s.cache.Delete(ctx, in.Key); err != nil {
			return fmt.Errorf("delete unreferenced update file %s: %w", in.Key, err)
		}
		known[in.Key] = true // once
		n, bytes = n+1, bytes+in.Size
		return nil
	}
	if keys != nil {
		for _, k := range keys {
			in, err := s.shared.Stat(ctx, k)
			if errors.Is(err, blobstore.ErrNotFound) {
				continue
			}
			if err == nil {
				err = del(in)
			}
			if err != nil {
				return n, bytes, err
			}
		}
		return n, bytes, nil
	}
	for after := ""; ; {
		page, err := s.shared.List(ctx, "", after, blobstore.MaxListLimit)
		if err != nil {
			return n, bytes, err
		}
		for _, in := range page {
			if err := del(in); err != nil {
				return n, bytes, err
			}
		}
		if len(page) < blobstore.MaxListLimit {
			return n, bytes, nil
		}
		after = page[len(page)-1].Key
	}
}

// reconcileShared warns, at start, of the update records whose files the
// file store lacks (a single server's records moved into a pool without
// their files): their downloads fail until the package is imported again.
func (s *Store) reconcileShared(ctx context.Context, r Records) error {
	updates, err := r.Updates()
	if err != nil {
		return err
	}
	for _, u := range updates {
		for _, f := range u.Files() {
			_, err := s.shared.Stat(ctx, f.SHA256)
			if errors.Is(err, blobstore.ErrNotFound) {
				s.logger.Warn("an update's file is missing from the file store; import its package again",
					zap.String("update", Rel(u.RuleKey, u.Version)), zap.String("file", f.Name), zap.String("sha256", f.SHA256))
				continue
			}
			if err != nil {
				return fmt.Errorf("reconcile update store: %w", err)
			}
		}
	}
	if n, err := s.cache.RemoveStale(ctx, time.Hour, time.Now()); err != nil {
		s.logger.Warn("remove what interrupted copies left in the file cache", zap.Error(err))
	} else if n > 0 {
		s.logger.Info("removed what interrupted copies left in the file cache", zap.Int("files", n))
	}
	return nil
}
