package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/pgstore"
	"github.com/deviceupdate/deviceupdate/internal/pool"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// The names of the pool-wide locks serve takes (pgstore's advisory locks).
const (
	// lockFiles serializes what adds update files to the pool's file
	// store and what deletes them (updatestore.Locker), and the clean-up
	// of interrupted changes at start.
	lockFiles = "files"
	// lockRollouts is held by the node judging staged rollouts in a round.
	lockRollouts = "rollouts"
)

// openStore opens the state: the pool's PostgreSQL database with --store,
// else the embedded bbolt file in --data. It returns the schema version.
func (m *Main) openStore(ctx context.Context) (int, error) {
	c := m.Config
	if c.Store == "" {
		bdb, err := store.Open(c.Data, store.Options{})
		if err != nil {
			return 0, err
		}
		m.bolt, m.db = bdb, bdb
		return m.db.SchemaVersion()
	}
	where, err := pool.CheckURL(c.Store)
	if err != nil {
		return 0, fmt.Errorf("--store: %w", err)
	}
	if fi, err := os.Stat(filepath.Join(c.Data, store.FileName)); err == nil && fi.Size() > 0 {
		m.Logger.Warn("--data holds a single server's store, which a front end of a pool does not read",
			zap.String("file", filepath.Join(c.Data, store.FileName)),
			zap.String("fix", "move its state into the pool with `deviceupdate migrate --to "+where+"`, or give this front end a --data of its own"))
	}
	pdb, err := pgstore.Open(ctx, c.Store, pgstore.Options{})
	if err != nil {
		if errors.Is(err, pgstore.ErrNewerSchema) {
			return 0, fmt.Errorf("--store %s: %w", where, err)
		}
		return 0, fmt.Errorf("--store %s: %w; check that PostgreSQL answers there and lets that user connect", where, err)
	}
	m.pg, m.db = pdb, pdb
	m.Logger.Info("state in a pool's PostgreSQL database", zap.String("store", where))
	return m.db.SchemaVersion()
}

// storeName names the store in the log: its file, or the pool's URL
// with the password masked.
func (m *Main) storeName() string {
	if m.pg == nil {
		return filepath.Join(m.Config.Data, store.FileName)
	}
	where, _ := pool.CheckURL(m.Config.Store)
	return where
}

// poolLocks returns the pool's locks for work one node does at a time;
// nil for a single server, which does all of it.
func (m *Main) poolLocks() pool.Locks {
	if m.pg == nil {
		return nil
	}
	return m.pg
}

// reconcileFiles makes the update store agree with the records after a
// crash, holding the pool's files lock so that no node's import or files
// clear is between its steps meanwhile.
func (m *Main) reconcileFiles(ctx context.Context) error {
	if m.pg != nil {
		unlock, err := m.pg.Locker(lockFiles).Lock(ctx)
		if err != nil {
			return err
		}
		defer unlock()
	}
	_, err := m.files.Reconcile(m.db)
	return err
}

// poolBackup answers `backup` on a front end of a pool: a backup copies a
// single server's files, and a pool's state is the database's and the
// file store's to back up, with their own tools. The refusal is audited,
// as a backup.Service's.
type poolBackup struct {
	db    store.Store
	files string
}

func (b poolBackup) Backup(_ context.Context, _ deviceupdate.BackupOptions, actor string) (deviceupdate.Backup, error) {
	err := deviceupdate.Errorf(deviceupdate.EINVALID, "backup copies a single server; this pool's state is in PostgreSQL (serve --store): back it up with pg_dump, and the file store %s with its own tools", b.files)
	entry := audit.Entry{Actor: actor, Action: "backup", Target: "state", Result: deviceupdate.ErrorMessage(err)}
	if aerr := b.db.Audited(entry, nil); aerr != nil {
		return nil, errors.Join(err, aerr)
	}
	return nil, err
}
