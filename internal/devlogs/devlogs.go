// Package devlogs stores the logs phones upload (SPEC §6) under
// Logs/Client/<LogType>/<device>/<file>, and keeps them from filling the
// disk.
//
// An upload streams into a staging file under Logs/Client/.staging while
// it is counted against MaxLogFileSize, so no upload is ever held whole in
// memory and one that is cut off or too large leaves nothing behind. A
// complete upload is synced and kept in staging: that is the log cache of
// Lync's MaxLogCacheLimit and LogFlushInterval. The cache is flushed (its
// files renamed into place) every LogFlushInterval, as soon as it holds
// more than MaxLogCacheLimit bytes, before logs are listed, and on stop; a
// staged upload survives a crash and is flushed at the next start.
//
// A cleaner deletes logs older than LogCleanUpInterval days, at
// LogCleanUpTimeOfDay or hourly; a quota on all stored logs deletes the
// oldest first when it is exceeded.
//
// Which logs are stored is the Index's to say, and no one else's. On a
// single server the index is the folder Logs/Client (dirIndex). In a pool
// (SPEC §11) it is a table of the pool's database (Options.Index) and the
// bytes are in the pool's file store under their SHA-256 (Options.Blobs),
// so that every front end lists, serves and clears every log: an upload
// is staged as on a single server, then put in the file store and
// recorded before it is acknowledged (a pool keeps no cache, which would
// hide an upload from the other front ends until flushed); the bytes no
// record names any more are deleted after their last record. The
// clean-up and the quota are a round that one front end of the pool runs
// at a time (Options.Locks).
package devlogs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/blobstore"
	"github.com/deviceupdate/deviceupdate/internal/fsutil"
	"github.com/deviceupdate/deviceupdate/internal/pool"
)

// roundLock names the pool-wide lock of the clean-up and quota round.
const roundLock = "device-logs"

// StagingDir is the cache folder inside Logs/Client.
const StagingDir = ".staging"

// Recorder counts uploads in the device inventory.
type Recorder interface {
	RecordUpload(l deviceupdate.DeviceLog, u deviceupdate.LogUpload, at time.Time)
}

// Options configure a Store.
type Options struct {
	Dir string // Logs/Client
	// Settings returns the live log settings for a phone's address ("" for
	// the global ones), so a `config set` applies to the next upload.
	Settings func(remote string) (deviceupdate.LogSettings, error)
	Quota    int64 // bytes all stored logs may take; 0 for no quota
	Logger   *zap.Logger
	Registry prometheus.Registerer
	// Audit writes ClearLogs's entry, durably, before any log is deleted
	// (admin.Service.Record); nil audits nothing.
	Audit    func(e deviceupdate.AuditEntry) error
	Recorder Recorder // optional
	Now      func() time.Time

	// Index and Blobs keep a pool's logs: their records in the pool's
	// database and their bytes in its file store. Both nil on a single
	// server, whose logs are the files under Dir (Dir still stages
	// uploads in a pool).
	Index Index
	Blobs blobstore.Store
	// Locks makes the clean-up and the quota a round that one front end
	// of the pool runs at a time; nil on a single server.
	Locks pool.Locks
}

// Store implements deviceupdate.LogService.
type Store struct {
	o       Options
	staging string
	m       *metrics
	index   Index
	dir     *dirIndex // a single server's index (index), else nil

	flushMu sync.Mutex // one flush or clean-up at a time
	mu      sync.Mutex // guards the fields below
	staged  []staged
	cached  int64 // bytes in staging

	seq  atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

type staged struct {
	file string
	log  deviceupdate.DeviceLog
}

var _ deviceupdate.LogService = (*Store)(nil)

// Open prepares the folder, removes uploads a crash cut short, flushes the
// complete ones, indexes the stored logs, enforces the quota and starts
// the flusher and the cleaner. Close stops them.
func Open(o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if (o.Index == nil) != (o.Blobs == nil) {
		return nil, errors.New("open device logs: a pool's index and file store come together")
	}
	s := &Store{o: o, staging: filepath.Join(o.Dir, StagingDir), index: o.Index,
		stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	if s.m, err = newMetrics(o.Registry); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.staging, 0o750); err != nil {
		return nil, fmt.Errorf("open device logs: %w", err)
	}
	if s.index != nil {
		// A pool caches nothing: only uploads a crash cut short are here.
		parts, _ := filepath.Glob(filepath.Join(s.staging, "upload-*.part"))
		for _, p := range parts {
			_ = os.Remove(p)
		}
		go s.run()
		return s, nil
	}
	if err := s.recoverStaging(); err != nil {
		return nil, err
	}
	if s.dir, err = scanDir(o.Dir); err != nil {
		return nil, err
	}
	s.index = s.dir
	s.m.stored.Set(float64(s.dir.total))
	if err := s.Flush(); err != nil {
		return nil, err
	}
	go s.run()
	return s, nil
}

// Close stops the background work and flushes the cache.
func (s *Store) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	return s.Flush()
}

// stagedPath is where a complete upload waits in the cache, relative to
// the staging folder: <LogType>/<device>/<time>.<n>-<file>, so a restart
// knows where it belongs without another file. Each part is short enough
// for any file system (NAME_MAX is 255 bytes): the first two are the
// stored log's own, the last adds 41 bytes to a FileName of at most
// MaxLogFileName. Within a folder, names sort in upload order (the clock,
// then a counter for two uploads in one tick), so a replay keeps the last
// upload of a path.
func (s *Store) stagedPath(l deviceupdate.DeviceLog, at time.Time) string {
	return fmt.Sprintf("%s/%s/%019d.%020d-%s", l.Type, l.Device, at.UnixNano(), s.seq.Add(1), l.Name)
}

// parseStaged reads a path stagedPath made, and the single names of
// earlier versions, <time>.<n>-<hex of the log's path>.log, which a
// cache written before an upgrade may hold.
func parseStaged(rel string) (deviceupdate.DeviceLog, bool) {
	dir, base := path.Split(rel)
	stamp, name, ok := strings.Cut(base, "-")
	if !ok || !validStamp(stamp) {
		return deviceupdate.DeviceLog{}, false
	}
	if dir != "" {
		return parsePath(dir + name)
	}
	enc, ok := strings.CutSuffix(name, ".log")
	if !ok {
		return deviceupdate.DeviceLog{}, false
	}
	raw, err := hex.DecodeString(enc)
	if err != nil {
		return deviceupdate.DeviceLog{}, false
	}
	return parsePath(string(raw))
}

// validStamp reports whether s is <digits>.<digits>.
func validStamp(s string) bool {
	t, n, ok := strings.Cut(s, ".")
	return ok && allDigits(t) && allDigits(n)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// recoverStaging deletes partial uploads and anything else it does not
// recognise, queues complete uploads, and removes the folders left empty.
func (s *Store) recoverStaging() error {
	var dirs []string
	err := filepath.WalkDir(s.staging, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.staging, p)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case d.IsDir() && strings.Count(rel, "/") < 2:
			dirs = append(dirs, p)
			return nil
		}
		l, ok := parseStaged(rel)
		info, ierr := d.Info()
		if !ok || ierr != nil || !info.Mode().IsRegular() {
			_ = os.RemoveAll(p)
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		l.Size, l.Modified = info.Size(), info.ModTime().UTC()
		s.staged = append(s.staged, staged{file: p, log: l})
		s.cached += l.Size
		return nil
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", s.staging, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i]) // only an empty one goes
	}
	return nil
}

// parsePath reads <LogType>/<device>/<file>, accepting only what an
// upload could have produced.
func parsePath(p string) (deviceupdate.DeviceLog, bool) {
	parts := strings.Split(p, "/")
	if len(parts) != 3 || !deviceupdate.ValidIdentifier(parts[0]) || !deviceupdate.ValidDeviceID(parts[1]) {
		return deviceupdate.DeviceLog{}, false
	}
	name, err := deviceupdate.SafeLogName(parts[2])
	if err != nil || name != parts[2] {
		return deviceupdate.DeviceLog{}, false
	}
	return deviceupdate.DeviceLog{Type: parts[0], Device: parts[1], Name: parts[2]}, true
}

// Upload implements deviceupdate.LogService.
func (s *Store) Upload(ctx context.Context, u deviceupdate.LogUpload, r io.Reader, size int64) (deviceupdate.DeviceLog, error) {
	l, err := s.upload(ctx, u, r, size)
	s.m.uploads.WithLabelValues(resultOf(err)).Inc()
	if err != nil {
		return l, err
	}
	s.m.bytes.Add(float64(l.Size))
	if s.o.Recorder != nil {
		s.o.Recorder.RecordUpload(l, u, l.Modified)
	}
	return l, nil
}

func resultOf(err error) string {
	switch deviceupdate.ErrorCode(err) {
	case "":
		return "stored"
	case deviceupdate.ETOOLARGE:
		return "too_large"
	case deviceupdate.EUNAVAILABLE:
		return "disk_full"
	case deviceupdate.EINVALID:
		return "invalid"
	}
	return "error"
}

func (s *Store) upload(ctx context.Context, u deviceupdate.LogUpload, r io.Reader, size int64) (deviceupdate.DeviceLog, error) {
	ls, err := s.o.Settings(u.Remote)
	if err != nil {
		return deviceupdate.DeviceLog{}, err
	}
	l, err := ls.CheckUpload(u)
	if err != nil {
		return l, err
	}
	tooLarge := deviceupdate.Errorf(deviceupdate.ETOOLARGE, "the log is larger than MaxLogFileSize (%d bytes)", ls.MaxFileSize)
	if size > ls.MaxFileSize {
		return l, tooLarge
	}
	f, err := os.CreateTemp(s.staging, "upload-*.part")
	if err != nil {
		return l, storageError("stage device log", err)
	}
	part := f.Name()
	defer func() {
		if part != "" {
			_ = f.Close()
			_ = os.Remove(part)
		}
	}()
	h := sha256.New()
	var w io.Writer = f
	if s.dir == nil { // a pool's file store names it by its SHA-256
		w = io.MultiWriter(f, h)
	}
	n, err := io.Copy(w, io.LimitReader(r, ls.MaxFileSize+1))
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return l, storageError("write device log", err)
	case err != nil:
		return l, deviceupdate.Errorf(deviceupdate.EINVALID, "the upload was cut short after %d bytes; nothing was stored", n)
	case n > ls.MaxFileSize:
		return l, tooLarge
	case size >= 0 && n != size:
		return l, deviceupdate.Errorf(deviceupdate.EINVALID, "the upload has %d bytes, not the %d it announced; nothing was stored", n, size)
	}
	if s.dir == nil {
		l.Size, l.Modified = n, s.o.Now().UTC()
		return l, s.keep(ctx, Record{DeviceLog: l, Key: hex.EncodeToString(h.Sum(nil))}, f)
	}
	if err := f.Sync(); err != nil {
		return l, storageError("sync device log", err)
	}
	if err := f.Close(); err != nil {
		return l, storageError("close device log", err)
	}
	now := s.o.Now().UTC()
	final := filepath.Join(s.staging, filepath.FromSlash(s.stagedPath(l, now)))
	dir := filepath.Dir(final)
	_, err = os.Stat(dir)
	created := err != nil
	if created {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return l, storageError("stage device log", err)
		}
	}
	if err := os.Rename(part, final); err != nil {
		return l, storageError("stage device log", err)
	}
	part = ""
	syncs := []string{dir}
	if created {
		syncs = append(syncs, filepath.Dir(dir), s.staging)
	}
	for _, d := range syncs {
		if err := fsutil.SyncDir(d); err != nil {
			return l, storageError("stage device log", err)
		}
	}
	l.Size, l.Modified = n, now
	s.mu.Lock()
	s.staged = append(s.staged, staged{file: final, log: l})
	s.cached += n
	full := s.cached > ls.MaxCacheLimit
	s.mu.Unlock()
	if full {
		if err := s.Flush(); err != nil {
			s.o.Logger.Error("flush device logs", zap.Error(err))
		}
	}
	return l, nil
}

// keep puts a pool's upload, staged in f, in the file store and records
// it, both durably; then deletes the bytes of the log it replaced unless
// another record names them.
func (s *Store) keep(ctx context.Context, r Record, f *os.File) error {
	put := func() error {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return storageError("store device log", err)
		}
		if _, err := s.o.Blobs.Put(ctx, f, r.Size, r.Key); err != nil {
			return storageError("store device log", err)
		}
		return nil
	}
	if err := put(); err != nil {
		return err
	}
	old, replaced, err := s.index.PutLog(ctx, r)
	if err != nil {
		return fmt.Errorf("record device log: %w", err)
	}
	// A Put of bytes already stored does nothing: another front end may
	// have deleted them, as no record named them, between that Put and the
	// record. PutLog waited for such a delete (DropUnnamed), so a look now
	// tells, and the bytes are put again.
	if _, err := s.o.Blobs.Stat(ctx, r.Key); errors.Is(err, blobstore.ErrNotFound) {
		err = put()
		if err != nil {
			return err
		}
	} else if err != nil {
		return storageError("store device log", err)
	}
	if replaced && old.Key != r.Key {
		s.dropUnnamed(ctx, []Record{old})
	}
	return nil
}

// dropUnnamed deletes from a pool's file store the bytes of deleted
// records that no record names any more. A failure leaves bytes behind,
// not a log without its bytes: it is logged, not returned.
func (s *Store) dropUnnamed(ctx context.Context, gone []Record) {
	if s.o.Blobs == nil {
		return
	}
	seen := map[string]bool{}
	for _, r := range gone {
		if r.Key == "" || seen[r.Key] {
			continue
		}
		seen[r.Key] = true
		err := s.index.DropUnnamed(ctx, r.Key, func() error { return s.o.Blobs.Delete(ctx, r.Key) })
		if err != nil {
			s.o.Logger.Error("delete a device log's bytes from the file store", zap.String("key", r.Key), zap.Error(err))
		}
	}
}

// storageError is a full disk as EUNAVAILABLE with a safe message, and
// anything else as an internal error.
func storageError(op string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &deviceupdate.Error{Code: deviceupdate.EUNAVAILABLE, Message: "the server's disk is full; the log was not stored, try again later", Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Flush moves the cached uploads into place and enforces the quota. A
// pool caches nothing, and its quota is a round of run's.
func (s *Store) Flush() error {
	if s.dir == nil {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	batch := s.staged
	s.staged, s.cached = nil, 0
	s.mu.Unlock()
	dirs := map[string]bool{}
	var failed []staged
	var firstErr error
	for _, st := range batch {
		dst := s.dir.file(st.log)
		dir := filepath.Dir(dst)
		err := os.MkdirAll(dir, 0o750)
		if err == nil {
			err = os.Rename(st.file, dst)
		}
		if err != nil {
			failed = append(failed, st)
			if firstErr == nil {
				firstErr = fmt.Errorf("flush device log %s: %w", st.log.Path(), err)
			}
			continue
		}
		dirs[dir], dirs[filepath.Dir(dir)] = true, true
		_, _, _ = s.dir.PutLog(context.Background(), Record{DeviceLog: st.log})
	}
	for d := range dirs {
		if err := fsutil.SyncDir(d); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if len(failed) > 0 {
		s.mu.Lock()
		s.staged = append(failed, s.staged...)
		for _, st := range failed {
			s.cached += st.log.Size
		}
		s.mu.Unlock()
	}
	s.enforceQuota(context.Background())
	return firstErr
}

// enforceQuota deletes the oldest logs until the rest fit the quota.
// Callers hold flushMu, or the pool's round lock.
func (s *Store) enforceQuota(ctx context.Context) {
	defer s.updateStored(ctx)
	if s.o.Quota <= 0 {
		return
	}
	over, err := s.index.LogsOverQuota(ctx, s.o.Quota)
	if err != nil {
		s.o.Logger.Error("read device logs for the quota", zap.Error(err))
		return
	}
	if len(over) == 0 {
		return
	}
	gone, err := s.index.DeleteLogs(ctx, over)
	if err != nil {
		s.o.Logger.Error("delete device logs for the quota", zap.Error(err))
	}
	s.dropUnnamed(ctx, gone)
	var freed int64
	for _, r := range gone {
		freed += r.Size
	}
	s.m.evicted.Add(float64(len(gone)))
	stored, _ := s.index.LogBytes(ctx)
	s.o.Logger.Warn("device log quota reached; deleted the oldest logs", zap.Int64("quota_bytes", s.o.Quota),
		zap.Int("deleted", len(gone)), zap.Int64("freed_bytes", freed), zap.Int64("stored_bytes", stored))
}

// updateStored sets the gauge of stored bytes.
func (s *Store) updateStored(ctx context.Context) {
	if n, err := s.index.LogBytes(ctx); err == nil {
		s.m.stored.Set(float64(n))
	}
}

// Logs implements deviceupdate.LogService.
func (s *Store) Logs(ctx context.Context, f deviceupdate.LogFilter) (*deviceupdate.LogList, error) {
	after, err := deviceupdate.ParseLogCursor(f.Cursor)
	if err != nil {
		return nil, err
	}
	if err := s.Flush(); err != nil {
		return nil, err
	}
	q := Query{Type: f.Type, After: after}
	if f.Device != "" {
		if q.Device, err = deviceupdate.DeviceID(f.Device); err != nil {
			return nil, err
		}
	}
	if f.Limit > 0 {
		q.Limit = f.Limit + 1 // one more tells whether a page follows
	}
	page, err := s.index.PageLogs(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list device logs: %w", err)
	}
	if page == nil {
		page = []deviceupdate.DeviceLog{}
	}
	list := &deviceupdate.LogList{Logs: page}
	if f.Limit > 0 && len(page) > f.Limit {
		list.Logs = page[:f.Limit]
		list.Next = deviceupdate.LogCursor(list.Logs[f.Limit-1])
	}
	return list, nil
}

// OpenLog implements deviceupdate.LogService: only indexed logs open. A
// pool's log is read from the file store, checked against its SHA-256.
func (s *Store) OpenLog(ctx context.Context, logType, device, name string) (io.ReadSeekCloser, deviceupdate.DeviceLog, error) {
	if err := s.Flush(); err != nil {
		return nil, deviceupdate.DeviceLog{}, err
	}
	notFound := deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no such device log; `deviceupdate logs list` shows them")
	id, err := deviceupdate.DeviceID(device)
	if err != nil {
		return nil, deviceupdate.DeviceLog{}, notFound
	}
	r, ok, err := s.index.FindLog(ctx, logType+"/"+id+"/"+name)
	switch {
	case err != nil:
		return nil, deviceupdate.DeviceLog{}, fmt.Errorf("find device log: %w", err)
	case !ok:
		return nil, r.DeviceLog, notFound
	}
	var f io.ReadSeekCloser
	if s.dir != nil {
		f, err = os.Open(s.dir.file(r.DeviceLog))
	} else {
		f, _, err = s.o.Blobs.Open(ctx, r.Key)
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, blobstore.ErrNotFound) {
		return nil, r.DeviceLog, notFound
	}
	if err != nil {
		return nil, r.DeviceLog, fmt.Errorf("open device log: %w", err)
	}
	return f, r.DeviceLog, nil
}

// ClearLogs implements deviceupdate.LogService. Its audit entry, naming
// what it will delete, is written before anything is: a failure to write
// it deletes nothing. A deletion that then fails is audited too.
func (s *Store) ClearLogs(_ context.Context, daysBack int, actor string) (deviceupdate.ClearLogsResult, error) {
	e := deviceupdate.AuditEntry{Actor: actor, Action: "logs.clear", Target: fmt.Sprintf("days-back=%d", daysBack)}
	audit := func(res *deviceupdate.ClearLogsResult, err error) error {
		e.Result, e.After = deviceupdate.ErrorMessage(err), nil
		if res != nil {
			e.After = []byte(fmt.Sprintf(`{"deleted":%d,"bytes":%d}`, res.Deleted, res.Bytes))
		}
		if s.o.Audit == nil {
			return nil
		}
		return s.o.Audit(e)
	}
	if daysBack < deviceupdate.MinClearDays || daysBack > deviceupdate.MaxClearDays {
		err := deviceupdate.Errorf(deviceupdate.EINVALID, "--days-back %d: want %d to %d", daysBack, deviceupdate.MinClearDays, deviceupdate.MaxClearDays)
		return deviceupdate.ClearLogsResult{}, errors.Join(err, audit(nil, err))
	}
	intended, recorded := false, false
	res, err := s.deleteOlder(s.o.Now().Add(-time.Duration(daysBack)*24*time.Hour), func(plan deviceupdate.ClearLogsResult) error {
		intended = true
		err := audit(&plan, nil)
		recorded = err == nil
		return err
	})
	switch {
	case err != nil && !intended: // refused before the entry: nothing deleted
		err = errors.Join(err, audit(nil, err))
	case err != nil && recorded: // the entry said more than was done
		err = errors.Join(err, audit(&res, err))
	}
	return res, err
}

// CleanUp deletes the logs older than the LogCleanUpInterval setting.
func (s *Store) CleanUp() (deviceupdate.ClearLogsResult, error) {
	ls, err := s.o.Settings("")
	if err != nil {
		return deviceupdate.ClearLogsResult{}, err
	}
	return s.deleteOlder(s.o.Now().Add(-time.Duration(ls.CleanUpDays)*24*time.Hour), nil)
}

// deleteOlder deletes the stored logs last written before cutoff, after a
// flush, so a log cached before the cutoff goes too. intent, when not nil,
// is told what will be deleted before anything is, and its error stops it.
func (s *Store) deleteOlder(cutoff time.Time, intent func(plan deviceupdate.ClearLogsResult) error) (deviceupdate.ClearLogsResult, error) {
	if err := s.Flush(); err != nil {
		return deviceupdate.ClearLogsResult{}, err
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	ctx := context.Background()
	defer s.updateStored(ctx)
	var res, plan deviceupdate.ClearLogsResult
	doomed, err := s.index.LogsBefore(ctx, cutoff)
	if err != nil {
		return res, fmt.Errorf("read device logs: %w", err)
	}
	for _, r := range doomed {
		plan.Deleted++
		plan.Bytes += r.Size
	}
	if intent != nil {
		if err := intent(plan); err != nil {
			return res, err
		}
	}
	gone, err := s.index.DeleteLogs(ctx, doomed)
	s.dropUnnamed(ctx, gone)
	for _, r := range gone {
		res.Deleted++
		res.Bytes += r.Size
	}
	s.m.cleaned.Add(float64(res.Deleted))
	return res, err
}

// run flushes every LogFlushInterval and cleans up at
// LogCleanUpTimeOfDay (or hourly), re-reading the settings every second.
func (s *Store) run() {
	defer close(s.done)
	// A pool's round waits on the database: stopping ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastFlush := s.o.Now()
	var nextClean time.Time
	var cleanAt string
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ls, err := s.o.Settings("")
		if err != nil {
			s.o.Logger.Error("read log settings", zap.Error(err))
			continue
		}
		now := s.o.Now()
		if now.Sub(lastFlush) >= ls.FlushInterval {
			if err := s.Flush(); err != nil {
				s.o.Logger.Error("flush device logs", zap.Error(err))
			}
			lastFlush = now
		}
		if nextClean.IsZero() || ls.CleanUpAt != cleanAt {
			cleanAt, nextClean = ls.CleanUpAt, NextCleanUp(now, ls.CleanUpAt)
		}
		due := !now.Before(nextClean)
		if s.dir == nil {
			// A pool's quota and clean-up: a round of one front end at a
			// time. Another's round now has the lock: this one's clean-up,
			// when due, waits for the next second.
			ran := pool.Round(ctx, s.o.Locks, roundLock, func() {
				s.enforceQuota(ctx)
				if due {
					s.cleanUp(ls)
				}
			})
			if !ran {
				s.updateStored(ctx)
				due = false
			}
		} else if due {
			s.cleanUp(ls)
		}
		if due {
			nextClean = NextCleanUp(now, cleanAt)
		}
	}
}

// cleanUp runs CleanUp and logs what it did.
func (s *Store) cleanUp(ls deviceupdate.LogSettings) {
	res, err := s.CleanUp()
	if err != nil {
		s.o.Logger.Error("clean up device logs", zap.Error(err))
	} else if res.Deleted > 0 {
		s.o.Logger.Info("cleaned up device logs", zap.Int("deleted", res.Deleted), zap.Int64("bytes", res.Bytes), zap.Int("older_than_days", ls.CleanUpDays))
	}
}

// NextCleanUp is when the cleaner runs after now: at the next hh:mm in
// now's location, or an hour on when at is "".
func NextCleanUp(now time.Time, at string) time.Time {
	t, err := time.Parse("15:04", at)
	if err != nil {
		return now.Add(time.Hour)
	}
	next := time.Date(now.Year(), now.Month(), now.Day(), t.Hour(), t.Minute(), 0, 0, now.Location())
	if !next.After(now) {
		next = next.AddDate(0, 0, 1)
	}
	return next
}

type metrics struct {
	uploads *prometheus.CounterVec
	bytes   prometheus.Counter
	stored  prometheus.Gauge
	evicted prometheus.Counter
	cleaned prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deviceupdate_device_log_uploads_total",
			Help: "Device log uploads, by result: stored, invalid, too_large, disk_full, error."}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "deviceupdate_device_log_uploaded_bytes_total",
			Help: "Bytes of device logs stored."}),
		stored: prometheus.NewGauge(prometheus.GaugeOpts{Name: "deviceupdate_device_log_stored_bytes",
			Help: "Bytes of device logs stored: under Logs/Client, or in a pool (serve --store) all of the pool's."}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{Name: "deviceupdate_device_log_quota_deleted_total",
			Help: "Device logs deleted, oldest first, because the log quota was reached."}),
		cleaned: prometheus.NewCounter(prometheus.CounterOpts{Name: "deviceupdate_device_log_cleaned_total",
			Help: "Device logs deleted for their age, by the cleaner or logs clear."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.uploads, m.bytes, m.stored, m.evicted, m.cleaned} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register device log metrics: %w", err)
		}
	}
	return m, nil
}
