package devlogs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

// Record is the index's entry of one stored log.
type Record struct {
	deviceupdate.DeviceLog
	// Key is the SHA-256 of the log's bytes in a pool's file store
	// (blobstore); "" on a single server, where the bytes are the file at
	// the log's path under Logs/Client.
	Key string
}

// Query selects a page of records; zero fields select all.
type Query struct {
	Device string                  // a device ID
	Type   string                  // matched in any letter case
	After  *deviceupdate.DeviceLog // only the logs listed after it (its time and path)
	Limit  int                     // at most this many; 0 for all
}

// Index is the one owner of the device logs' index: which logs are
// stored, their sizes, times and bytes. A single server's is the folder
// Logs/Client itself (its files are the records, indexed in memory);
// a pool's is a table of its database (pgstore's LogIndex), shared by
// every front end. Methods are safe for concurrent use.
type Index interface {
	// PutLog records r, replacing the record of its path, durably before
	// it returns; it returns the record it replaced (ok false when none).
	PutLog(ctx context.Context, r Record) (replaced Record, ok bool, err error)
	// FindLog returns the record of a log's path; ok false when none.
	FindLog(ctx context.Context, path string) (r Record, ok bool, err error)
	// PageLogs returns the logs q selects in the list's order
	// (DeviceLog.ListedBefore).
	PageLogs(ctx context.Context, q Query) ([]deviceupdate.DeviceLog, error)
	// LogsBefore returns the records of the logs last written before
	// cutoff.
	LogsBefore(ctx context.Context, cutoff time.Time) ([]Record, error)
	// LogsOverQuota returns the oldest records whose deletion brings the
	// bytes of all stored logs within quota.
	LogsOverQuota(ctx context.Context, quota int64) ([]Record, error)
	// DeleteLogs deletes the records of rs, each only while it is still
	// the record of its path (a log uploaded again since stays), and
	// returns those it deleted. It stops at the first failure.
	DeleteLogs(ctx context.Context, rs []Record) ([]Record, error)
	// LogBytes is the size of all stored logs.
	LogBytes(ctx context.Context) (int64, error)
	// DropUnnamed calls drop, which deletes the bytes of key, when no
	// record names key, and meanwhile keeps PutLog from recording one
	// that does: PutLog of key waits until drop has returned.
	DropUnnamed(ctx context.Context, key string, drop func() error) error
}

// dirIndex is a single server's index: the files under Logs/Client,
// read at start and kept in memory. Deleting a record deletes its file.
type dirIndex struct {
	dir   string
	mu    sync.Mutex
	logs  map[string]deviceupdate.DeviceLog
	total int64
}

var _ Index = (*dirIndex)(nil)

// scanDir indexes the stored logs: regular files at <type>/<device>/<name>.
func scanDir(dir string) (*dirIndex, error) {
	x := &dirIndex{dir: dir, logs: map[string]deviceupdate.DeviceLog{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir() && (rel == StagingDir || strings.Count(rel, "/") > 1):
			return filepath.SkipDir
		case d.IsDir() || !d.Type().IsRegular():
			return nil
		}
		l, ok := parsePath(rel)
		if !ok {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		l.Size, l.Modified = info.Size(), info.ModTime().UTC()
		x.logs[rel] = l
		x.total += l.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index device logs: %w", err)
	}
	return x, nil
}

// StoredLogs returns the logs a single server keeps in dir (its
// Logs/Client folder), in no order, and the file that holds each:
// what `migrate` moves into a pool.
func StoredLogs(dir string) (logs []deviceupdate.DeviceLog, file func(deviceupdate.DeviceLog) string, err error) {
	x, err := scanDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range x.logs {
		logs = append(logs, l)
	}
	return logs, x.file, nil
}

// file is where a log's bytes are.
func (x *dirIndex) file(l deviceupdate.DeviceLog) string {
	return filepath.Join(x.dir, filepath.FromSlash(l.Path()))
}

// PutLog records a log whose file the flush has moved into place.
func (x *dirIndex) PutLog(_ context.Context, r Record) (Record, bool, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	old, ok := x.logs[r.Path()]
	x.total += r.Size - old.Size
	x.logs[r.Path()] = r.DeviceLog
	return Record{DeviceLog: old}, ok, nil
}

func (x *dirIndex) FindLog(_ context.Context, path string) (Record, bool, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	l, ok := x.logs[path]
	return Record{DeviceLog: l}, ok, nil
}

func (x *dirIndex) PageLogs(_ context.Context, q Query) ([]deviceupdate.DeviceLog, error) {
	// The page is the first Limit logs in the list's order: keep the
	// first Limit seen, in order, rather than sort every log.
	page := []deviceupdate.DeviceLog{}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, l := range x.logs {
		if q.Device != "" && l.Device != q.Device || q.Type != "" && !strings.EqualFold(q.Type, l.Type) || q.After != nil && !q.After.ListedBefore(l) {
			continue
		}
		if q.Limit > 0 && len(page) == q.Limit && !l.ListedBefore(page[q.Limit-1]) {
			continue
		}
		i, _ := slices.BinarySearchFunc(page, l, func(a, b deviceupdate.DeviceLog) int {
			if a.ListedBefore(b) {
				return -1
			}
			return 1
		})
		page = slices.Insert(page, i, l)
		if q.Limit > 0 && len(page) > q.Limit {
			page = page[:q.Limit]
		}
	}
	return page, nil
}

func (x *dirIndex) LogsBefore(_ context.Context, cutoff time.Time) ([]Record, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Record
	for _, l := range x.logs {
		if l.Modified.Before(cutoff) {
			out = append(out, Record{DeviceLog: l})
		}
	}
	return out, nil
}

func (x *dirIndex) LogsOverQuota(_ context.Context, quota int64) ([]Record, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.total <= quota {
		return nil, nil
	}
	all := make([]deviceupdate.DeviceLog, 0, len(x.logs))
	for _, l := range x.logs {
		all = append(all, l)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Modified.Before(all[j].Modified) })
	var out []Record
	for total := x.total; total > quota && len(out) < len(all); {
		l := all[len(out)]
		out = append(out, Record{DeviceLog: l})
		total -= l.Size
	}
	return out, nil
}

// DeleteLogs deletes each log's file, then its record.
func (x *dirIndex) DeleteLogs(_ context.Context, rs []Record) ([]Record, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var done []Record
	for _, r := range rs {
		l, ok := x.logs[r.Path()]
		if !ok || !l.Modified.Equal(r.Modified) || l.Size != r.Size {
			continue
		}
		if err := os.Remove(x.file(l)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return done, fmt.Errorf("delete device log %s: %w", l.Path(), err)
		}
		delete(x.logs, l.Path())
		x.total -= l.Size
		done = append(done, Record{DeviceLog: l})
	}
	return done, nil
}

func (x *dirIndex) LogBytes(context.Context) (int64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.total, nil
}

// DropUnnamed has nothing to do: a single server's records name no key.
func (x *dirIndex) DropUnnamed(context.Context, string, func() error) error { return nil }
