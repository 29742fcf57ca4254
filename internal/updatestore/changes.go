package updatestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/fsutil"
)

// Operations a Change names.
const (
	OpImport = "import" // the update's files are being moved into its folder
	OpClear  = "clear"  // the update's record is deleted and its folder is being removed
)

// Change is the records' note that the folder of one update is being
// changed outside a transaction: the only folders Reconcile may remove
// are those of such notes that no update record names.
type Change struct {
	RuleKey deviceupdate.RuleKey `json:"ruleKey"`
	Version deviceupdate.Version `json:"version"`
	Op      string               `json:"op"`
	Since   time.Time            `json:"since"`
}

// Records is what the update store needs of the records (*store.DB):
// the stored updates, and the notes of the changes in progress.
type Records interface {
	// FindUpdate returns the record of an update; ENOTFOUND when there
	// is none.
	FindUpdate(k deviceupdate.RuleKey, v deviceupdate.Version) (*deviceupdate.StoredUpdate, error)
	// Updates returns every update record.
	Updates() ([]deviceupdate.StoredUpdate, error)
	// BeginImport notes that files are about to move into the folders of
	// these updates (OpImport); committing their records ends the notes.
	BeginImport(updates []*deviceupdate.StoredUpdate, now time.Time) error
	// InProgressChanges returns the notes of the changes in progress.
	InProgressChanges() ([]Change, error)
	// EndInProgress deletes the notes of changes dealt with.
	EndInProgress(done []Change) error
}

// Stage makes an empty folder for one import, on the store's file system,
// for the package and the updates staged from it; Unstage removes it when
// the import ends, and Reconcile at the next start should it not.
func (s *Store) Stage() (string, error) {
	dir, err := os.MkdirTemp(s.staging, "import-")
	if err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(s.staging, 0o750); err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	if dir, err = os.MkdirTemp(s.staging, "import-"); err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	return dir, nil
}

// Unstage removes an import's folder that Stage made.
func (s *Store) Unstage(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		s.logger.Warn("remove staging folder", zap.String("dir", dir), zap.Error(err))
	}
}

// Move is one update an import moves into the store: its record, and the
// folder below Stage's that holds its files.
type Move struct {
	Update *deviceupdate.StoredUpdate
	Staged string
}

// Import brings the files of an import's new updates in and has commit
// record them, holding the pool's lock from the first file in to the
// commit, so that no files clear deletes what the commit will name. In
// folders: MoveIn, then commit, or Abandon when it fails. In a pool's
// file store: each file put (checked against its record), then commit;
// when it fails, the files put that no record names are deleted.
func (s *Store) Import(ctx context.Context, r Records, moves []Move, now time.Time, commit func() error) error {
	unlock, err := s.locker.Lock(ctx)
	if err != nil {
		return fmt.Errorf("import: wait for the update store: %w", err)
	}
	defer unlock()
	if !s.Shared() {
		if err := s.MoveIn(r, moves, now); err != nil {
			return err
		}
		if err := commit(); err != nil {
			s.Abandon(r, moves)
			return err
		}
		return nil
	}
	keys, err := s.putBlobs(ctx, moves)
	if err == nil {
		if err = commit(); err == nil {
			return nil
		}
	}
	// What a crash would leave here, a later files clear deletes.
	if _, _, derr := s.deleteUnreferenced(context.WithoutCancel(ctx), r, keys); derr != nil {
		s.logger.Warn("an import that failed left update files; files clear deletes them", zap.Error(derr))
	}
	return err
}

// Clear has clear delete the records of the updates no rule references,
// noting their removal as in progress (OpClear), then deletes their
// files, holding the pool's lock throughout. In a pool's file store it
// deletes every stored file no remaining record names, which includes
// those a crashed import or clear left.
func (s *Store) Clear(ctx context.Context, r Records, clear func() ([]deviceupdate.StoredUpdate, error)) error {
	unlock, err := s.locker.Lock(ctx)
	if err != nil {
		return fmt.Errorf("files clear: wait for the update store: %w", err)
	}
	defer unlock()
	cleared, err := clear()
	if err != nil {
		return err
	}
	s.RemoveCleared(r, cleared)
	if !s.Shared() {
		return nil
	}
	n, bytes, err := s.deleteUnreferenced(context.WithoutCancel(ctx), r, nil)
	if err != nil {
		s.logger.Warn("delete unreferenced update files; the next files clear tries again", zap.Error(err))
	}
	// No import puts files while the lock is held: whatever is being
	// put was left by a node that died writing it.
	stale, err := s.shared.RemoveStale(context.WithoutCancel(ctx), 0, time.Now())
	if err != nil {
		s.logger.Warn("delete the files a crashed import left being written; the next files clear tries again", zap.Error(err))
	}
	s.logger.Info("deleted unreferenced update files from the file store", zap.Int("files", n), zap.Int64("bytes", bytes), zap.Int("unfinished", stale))
	return nil
}

// MoveIn notes the moves in the records as in progress, then renames each
// staged folder into its place in the store, replacing what is there,
// with the folders synced so that the move survives a crash. When a move
// fails it undoes them all (Abandon) and returns the error. The caller
// then commits the updates' records, which ends the notes, or, when the
// commit fails, calls Abandon.
func (s *Store) MoveIn(r Records, moves []Move, now time.Time) error {
	if len(moves) == 0 {
		return nil
	}
	updates := make([]*deviceupdate.StoredUpdate, len(moves))
	for i, m := range moves {
		updates[i] = m.Update
	}
	// The records name the folders about to change before they do, so
	// that a crash before the commit leaves folders the next start knows
	// it may remove; it removes no other.
	if err := r.BeginImport(updates, now); err != nil {
		return err
	}
	for _, m := range moves {
		final := s.Folder(m.Update.RuleKey, m.Update.Version)
		if _, err := os.Stat(final); err == nil {
			if _, ferr := r.FindUpdate(m.Update.RuleKey, m.Update.Version); deviceupdate.ErrorCode(ferr) == deviceupdate.ENOTFOUND {
				s.logger.Warn("an update folder no record named is replaced by the imported files", zap.String("dir", final))
			}
		}
		if err := moveIn(m.Staged, final); err != nil {
			s.Abandon(r, moves)
			return err
		}
	}
	return nil
}

// moveIn renames a staged update folder to its place in the store. A
// folder already there belongs to no stored update (the records were
// checked first) or to one re-staged from the same package, so it goes.
func moveIn(staged, final string) error {
	if err := os.RemoveAll(final); err != nil {
		return fmt.Errorf("import: clear %s: %w", final, err)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := fsutil.SyncDir(staged); err != nil {
		return err
	}
	if err := os.Rename(staged, final); err != nil {
		return fmt.Errorf("import: move into the store: %w", err)
	}
	return fsutil.SyncDir(filepath.Dir(final))
}

// Abandon undoes what MoveIn moved for an import that did not commit: it
// removes the folders of the updates no record names, and ends the
// notes. When it cannot, it leaves the notes for Reconcile at the next
// start.
func (s *Store) Abandon(r Records, moves []Move) {
	if len(moves) == 0 {
		return
	}
	changes := make([]Change, len(moves))
	for i, m := range moves {
		changes[i] = Change{RuleKey: m.Update.RuleKey, Version: m.Update.Version, Op: OpImport}
	}
	if _, err := s.finish(r, changes); err != nil {
		s.logger.Warn("an import that failed left files; the next start removes them", zap.Error(err))
	}
}

// RemoveCleared removes the folders of updates whose records a files
// clear deleted, in the transaction that noted their removal (OpClear),
// and ends the notes. When it cannot, Reconcile removes what is left at
// the next start.
func (s *Store) RemoveCleared(r Records, cleared []deviceupdate.StoredUpdate) {
	changes := make([]Change, len(cleared))
	for i, u := range cleared {
		changes[i] = Change{RuleKey: u.RuleKey, Version: u.Version, Op: OpClear}
	}
	if _, err := s.finish(r, changes); err != nil {
		s.logger.Warn("remove cleared update files; the next start removes what is left", zap.Error(err))
	}
}

// finish deals with the folders of changes in progress: it removes each
// one that no update record names, checks the files of the others, and
// ends the notes. It returns the folders it removed.
func (s *Store) finish(r Records, changes []Change) (removed []string, err error) {
	for _, c := range changes {
		dir := s.Folder(c.RuleKey, c.Version)
		u, err := r.FindUpdate(c.RuleKey, c.Version)
		switch {
		case deviceupdate.ErrorCode(err) == deviceupdate.ENOTFOUND && s.Shared():
			// No folder: Clear deletes the files no record names.
		case deviceupdate.ErrorCode(err) == deviceupdate.ENOTFOUND:
			if err := os.RemoveAll(dir); err != nil {
				return removed, fmt.Errorf("remove %s: %w", dir, err)
			}
			if err := fsutil.SyncDir(filepath.Dir(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, err
			}
			removed = append(removed, dir)
		case err != nil:
			return removed, err
		default:
			// A re-staging was interrupted: the record stays, its files
			// are the old ones or the package's.
			if err := s.Check(context.Background(), u); err != nil {
				s.logger.Warn("the files of an update are damaged after an interrupted import; import its package again",
					zap.String("dir", dir), zap.Error(err))
			}
		}
	}
	return removed, r.EndInProgress(changes)
}

// Reconcile makes the store agree with the records after a crash: it
// empties the staging folder and removes the folders that the records
// note as being changed (an import before its commit, a files clear after
// its) and no update record names. It removes no other folder: one that
// no record names is named in a warning and left in place. It runs at
// start, before anything is served, and returns the folders it removed.
func (s *Store) Reconcile(r Records) (removed []string, err error) {
	if err := os.RemoveAll(s.staging); err != nil {
		return nil, fmt.Errorf("reconcile: clear staging: %w", err)
	}
	changes, err := r.InProgressChanges()
	if err != nil {
		return nil, err
	}
	removed, err = s.finish(r, changes)
	for _, p := range removed {
		s.logger.Warn("removed the files of an interrupted change", zap.String("dir", p))
	}
	if err != nil {
		return removed, fmt.Errorf("reconcile update store: %w", err)
	}
	if s.Shared() {
		return removed, s.reconcileShared(context.Background(), r)
	}
	updates, err := r.Updates()
	if err != nil {
		return removed, err
	}
	known := make(map[string]bool, len(updates))
	for _, u := range updates {
		known[s.Folder(u.RuleKey, u.Version)] = true
	}
	err = filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, p)
		if rel == "." || len(strings.Split(rel, string(filepath.Separator))) < depth {
			return nil
		}
		if !known[p] {
			s.logger.Warn("update folder unaccounted for: no record names it; left in place (import its package again, or move it away)", zap.String("dir", p))
		}
		return filepath.SkipDir
	})
	if err != nil {
		return removed, fmt.Errorf("reconcile update store: %w", err)
	}
	return removed, nil
}
