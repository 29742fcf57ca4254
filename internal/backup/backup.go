// Package backup takes consistent backups of a running service and
// restores them into empty folders (SPEC §1: `backup -o FILE`, `restore
// FILE`). The file is the tar stream of internal/backup/archive; its
// entries are named data/<path below --data> and certs/<path below
// --certs>.
//
// A backup is consistent: the store is one bbolt read transaction; the
// audit trail is cut where it stood when that transaction began, taken
// under the trail's append lock; the update files are those the
// snapshot's records name, opened while no import or files clear can move
// them, and checked against their records' SHA-256 as they are written.
// Nothing is copied from the live folders by name after the fact: every
// file of the backup is opened while the state it belongs to is held, so
// an import, a files clear or a certificate renewal that runs meanwhile
// changes nothing in it.
package backup

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/backup/archive"
	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// Entry name prefixes and the paths below --data a backup holds.
const (
	dataPrefix  = "data/"
	certsPrefix = "certs/"
)

// Paths below --data, slash-separated.
var (
	trailPath   = audit.Dir + "/" + audit.FileName
	clientLogs  = "Logs/Client"
	requestLogs = "Logs/Server/Audit/imageUpdates"
	stagingLogs = clientLogs + "/.staging"
)

// certFiles are the files of --certs a backup holds when they exist, with
// trusted/ besides.
var certFiles = []string{certs.CACertFile, certs.CAKeyFile, certs.ServerCertFile, certs.ServerKeyFile, certs.TokenFile}

// Meta is what backup.json says of the server a backup comes from.
type Meta struct {
	Server        string `json:"server"` // the build, as --version names it
	Host          string `json:"host"`
	Domain        string `json:"domain,omitempty"`
	SchemaVersion int    `json:"schemaVersion"`
	// AuditEntries is the sequence number of the trail's last entry in
	// the backup.
	AuditEntries uint64 `json:"auditEntries"`
	Logs         bool   `json:"logs"`
}

// Imports holds imports and files clear off the update store while fn
// runs (*importer.Importer).
type Imports interface {
	Hold(fn func() error) error
}

// Inventory writes the polls' records it batches (*inventory.Recorder).
type Inventory interface {
	Flush() error
}

// Service takes backups of the running service.
type Service struct {
	// DB and Trail are the bbolt store and the trail it appends to
	// (DB.SetTrail): a backup copies the store file and the trail file,
	// so it works on them, not on any store.Store.
	DB      *store.DB
	Trail   *audit.Trail
	Imports Imports
	// Inventory, when set, is flushed first, so the backup holds the
	// polls seen up to it.
	Inventory Inventory
	DataDir   string // --data
	CertsDir  string // --certs
	Info      deviceupdate.ServerInfo
	Logger    *zap.Logger
	Now       func() time.Time
	// SharedFiles is serve --files: the update files are in a pool's
	// file store, not under DataDir, and a backup refuses.
	SharedFiles string
}

var _ deviceupdate.BackupService = (*Service)(nil)

// Backup takes the copy, then audits it: a backup that could not be taken
// is audited with its error, and one whose entry cannot be written is not
// handed out.
func (s *Service) Backup(_ context.Context, opts deviceupdate.BackupOptions, actor string) (deviceupdate.Backup, error) {
	if s.Inventory != nil {
		if err := s.Inventory.Flush(); err != nil {
			s.Logger.Warn("backup: the inventory could not be flushed; the backup holds the polls written before", zap.Error(err))
		}
	}
	var snap *snapshot
	var err error
	if s.SharedFiles != "" {
		err = deviceupdate.Errorf(deviceupdate.EINVALID, "backup copies a single server; the update files are in the file store %s (serve --files): back that up, and the store, with their own tools", s.SharedFiles)
	} else {
		snap, err = s.take(opts)
	}
	entry := audit.Entry{Actor: actor, Action: "backup", Target: "state", Result: audit.ResultOK}
	if err != nil {
		entry.Result = deviceupdate.ErrorMessage(err)
		if aerr := s.DB.Audited(entry, nil); aerr != nil {
			s.Logger.Error("audit a failed backup", zap.Error(aerr))
		}
		return nil, err
	}
	entry.After, _ = json.Marshal(struct {
		Files        int    `json:"files"`
		Bytes        int64  `json:"bytes"`
		AuditEntries uint64 `json:"auditEntries"`
		Logs         bool   `json:"logs"`
	}{len(snap.sources), snap.bytes(), snap.meta.AuditEntries, opts.Logs})
	if err := s.DB.Audited(entry, nil); err != nil {
		snap.Close()
		return nil, err
	}
	return snap, nil
}

// source is one file of a backup, opened while its state was held.
type source struct {
	name    string // entry name
	f       *os.File
	size    int64 // bytes to copy: the file's size then, or the trail's cut
	mode    fs.FileMode
	modTime time.Time
	sha256  string // what the store records of it, "" for no record
}

// snapshot is a backup taken and not yet written.
type snapshot struct {
	created time.Time
	meta    Meta
	sources []source
	dataDir string
	logs    bool
	logger  *zap.Logger
}

// take holds imports, then the trail, while it snapshots the store into an
// unlinked temporary file beside it (so that no client's speed holds a
// read transaction open) and opens the trail; it opens the update files
// the snapshot names before it lets imports go on.
func (s *Service) take(opts deviceupdate.BackupOptions) (*snapshot, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	host, _ := os.Hostname()
	snap := &snapshot{
		created: now().UTC(),
		meta:    Meta{Server: s.Info.Version, Host: host, Domain: s.Info.Domain, SchemaVersion: s.Info.SchemaVersion, Logs: opts.Logs},
		dataDir: s.DataDir, logs: opts.Logs, logger: s.Logger,
	}
	dbCopy, err := os.CreateTemp(s.DataDir, ".backup-*.db")
	if err != nil {
		return nil, internal("the store could not be copied", err)
	}
	ok := false
	defer func() {
		if !ok {
			snap.Close()
			_ = dbCopy.Close() // when it was not among the sources yet
		}
	}()
	_ = os.Remove(dbCopy.Name()) // unlinked: a crash leaves nothing behind
	err = s.Imports.Hold(func() error {
		var updates []deviceupdate.StoredUpdate
		err := s.Trail.Hold(func(trailSize int64, seq uint64) error {
			w := bufio.NewWriterSize(dbCopy, 1<<20)
			var size int64
			var err error
			if updates, size, err = s.DB.Snapshot(w); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return fmt.Errorf("copy the store: %w", err)
			}
			snap.add(source{name: dataPrefix + store.FileName, f: dbCopy, size: size, mode: 0o600, modTime: snap.created})
			trail, err := os.Open(s.Trail.Path())
			if err != nil {
				return err
			}
			snap.meta.AuditEntries = seq
			return snap.addOpened(dataPrefix+trailPath, trail, trailSize)
		})
		if err != nil {
			return err
		}
		return snap.openUpdates(s.DataDir, updates)
	})
	if err != nil {
		return nil, internal("the backup could not be taken", err)
	}
	if err := snap.openCerts(s.CertsDir); err != nil {
		return nil, internal("the certificates could not be read", err)
	}
	ok = true
	return snap, nil
}

func internal(msg string, err error) error {
	var de *deviceupdate.Error
	if errors.As(err, &de) {
		return err
	}
	return &deviceupdate.Error{Code: deviceupdate.EINTERNAL, Message: msg + "; the server log has the details", Err: err}
}

func (s *snapshot) add(src source) { s.sources = append(s.sources, src) }

// addOpened adds an opened file, size bytes of it (-1: all it holds now).
func (s *snapshot) addOpened(name string, f *os.File, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("%s is not a regular file", f.Name())
	}
	if size < 0 || size > fi.Size() {
		size = fi.Size()
	}
	s.add(source{name: name, f: f, size: size, mode: fi.Mode().Perm(), modTime: fi.ModTime()})
	return nil
}

// openUpdates opens every file the records name, checking its size
// against the record; the content is checked as it is written.
func (s *snapshot) openUpdates(dataDir string, updates []deviceupdate.StoredUpdate) error {
	for _, u := range updates {
		dir := updatestore.Folder(dataDir, u.RuleKey, u.Version)
		rel, err := filepath.Rel(dataDir, dir)
		if err != nil {
			return err
		}
		for _, want := range u.Files() {
			f, err := os.Open(filepath.Join(dir, want.Name))
			if err != nil {
				return fmt.Errorf("the update store lacks a recorded file: %w", err)
			}
			if err := s.addOpened(dataPrefix+filepath.ToSlash(rel)+"/"+want.Name, f, -1); err != nil {
				return err
			}
			got := &s.sources[len(s.sources)-1]
			if got.size != want.Size {
				return fmt.Errorf("%s is %d bytes, its record says %d: the update store was changed outside the service", f.Name(), got.size, want.Size)
			}
			got.sha256 = want.SHA256
		}
	}
	return nil
}

// openCerts opens the certificates, keys and token that exist, and every
// file of trusted/ (following links, as the service reads them).
func (s *snapshot) openCerts(dir string) error {
	for _, name := range certFiles {
		if err := s.openIfExists(filepath.Join(dir, name), certsPrefix+name); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, certs.TrustedDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		name := certsPrefix + certs.TrustedDir + "/" + e.Name()
		if archive.CheckName(name) != nil {
			s.logger.Warn("backup: a trusted publisher's file name cannot be backed up; it is left out", zap.String("file", e.Name()))
			continue
		}
		if err := s.openIfExists(filepath.Join(dir, certs.TrustedDir, e.Name()), name); err != nil {
			return err
		}
	}
	return nil
}

// openIfExists adds the regular file at p, if there is one; a folder or
// another kind of file in trusted/ is not a certificate and is skipped.
func (s *snapshot) openIfExists(p, name string) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		f.Close()
		return nil
	}
	return s.addOpened(name, f, -1)
}

func (s *snapshot) bytes() int64 {
	var n int64
	for _, src := range s.sources {
		n += src.size
	}
	return n
}

// WriteTo writes the backup: backup.json, the store, the trail, the
// certificates, the update files, the logs when asked for, the manifest.
func (s *snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	meta, err := json.Marshal(s.meta)
	if err != nil {
		return 0, err
	}
	aw, err := archive.NewWriter(cw, archive.Header{Created: s.created, Meta: meta})
	if err != nil {
		return cw.n, err
	}
	for _, src := range s.sources {
		if _, err := src.f.Seek(0, io.SeekStart); err != nil {
			return cw.n, fmt.Errorf("read %s: %w", src.f.Name(), err)
		}
		sum, err := aw.Add(src.name, src.mode, src.modTime, src.size, bufio.NewReaderSize(src.f, 1<<20))
		if err != nil {
			return cw.n, err
		}
		if src.sha256 != "" && sum != src.sha256 {
			return cw.n, &deviceupdate.Error{Code: deviceupdate.EINTERNAL,
				Message: "a stored update file differs from its record (the update store was changed outside the service); the server log names it",
				Err:     fmt.Errorf("%s: its SHA-256 is %s, its record says %s", src.f.Name(), sum, src.sha256)}
		}
	}
	if s.logs {
		for _, dir := range []string{clientLogs, requestLogs} {
			if err := s.addLogs(aw, dir); err != nil {
				return cw.n, err
			}
		}
	}
	if err := aw.Close(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

// addLogs adds the log files under dir (below --data) as they are when
// each is opened; the upload cache is left out, and so is a log deleted
// before it could be opened.
func (s *snapshot) addLogs(aw *archive.Writer, dir string) error {
	root := filepath.Join(s.dataDir, filepath.FromSlash(dir))
	var names []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		}
		rel, err := filepath.Rel(s.dataDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() && rel == stagingLogs {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list logs: %w", err)
	}
	sort.Strings(names)
	for _, rel := range names {
		name := dataPrefix + rel
		if archive.CheckName(name) != nil {
			s.logger.Warn("backup: a log's name cannot be backed up; it is left out", zap.String("log", rel))
			continue
		}
		if err := s.addLog(aw, name, filepath.Join(s.dataDir, filepath.FromSlash(rel))); err != nil {
			return err
		}
	}
	return nil
}

func (s *snapshot) addLog(aw *archive.Writer, name, p string) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = aw.Add(name, fi.Mode().Perm(), fi.ModTime(), fi.Size(), bufio.NewReaderSize(f, 256<<10))
	return err
}

// Close closes every file the backup holds; the store's copy, unlinked,
// goes with it.
func (s *snapshot) Close() error {
	for _, src := range s.sources {
		_ = src.f.Close()
	}
	s.sources = nil
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// entryPath splits an entry name into its folder ("data" or "certs") and
// its path below it, and checks that a restore may create it there.
func entryPath(name string) (folder, rel string, err error) {
	switch {
	case strings.HasPrefix(name, dataPrefix):
		folder, rel = "data", strings.TrimPrefix(name, dataPrefix)
		top, _, _ := strings.Cut(rel, "/")
		if rel == store.FileName || rel == trailPath || top == updatestore.Dir && rel != top ||
			strings.HasPrefix(rel, clientLogs+"/") && !strings.HasPrefix(rel, stagingLogs+"/") || strings.HasPrefix(rel, requestLogs+"/") {
			return folder, rel, nil
		}
	case strings.HasPrefix(name, certsPrefix):
		folder, rel = "certs", strings.TrimPrefix(name, certsPrefix)
		if dir, file := path.Split(rel); dir == certs.TrustedDir+"/" && file != "" || dir == "" && isCertFile(file) {
			return folder, rel, nil
		}
	}
	return "", "", fmt.Errorf("%w: %s: not a file a backup holds", archive.ErrUnsafe, name)
}

func isCertFile(name string) bool {
	for _, f := range certFiles {
		if name == f {
			return true
		}
	}
	return false
}
