package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
)

// keyAuditHead holds, in the meta bucket, the audit trail's head as of
// the last committed change: an audit.Head in JSON.
var keyAuditHead = []byte("auditHead")

var _ audit.HeadReader = (*DB)(nil)

// AuditHead returns the audit trail's head the store keeps; ok is false
// before the first audited change.
func (db *DB) AuditHead() (h audit.Head, ok bool, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyAuditHead)
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &h)
	})
	if err != nil {
		return h, false, fmt.Errorf("read audit trail head: %w", err)
	}
	return h, ok, nil
}

// SetTrail gives the store the audit trail Audited appends to and the
// Audit methods read. Call it once, before the first of them; the trail
// stays the caller's to close. It is set apart from Open because the
// trail is opened after the store, whose file lock keeps a second serve
// on the same folder from touching the trail.
func (db *DB) SetTrail(t *audit.Trail) { db.trail = t }

// errNoTrail is the error of an audit method called before SetTrail.
var errNoTrail = errors.New("store: no audit trail set (SetTrail)")

// Audited makes one admin change, audited; every admin change goes through
// it (Store.Audited has the contract). apply runs in a write transaction,
// on a DB bound to it. When apply succeeds, the entry is appended to the
// trail file and synced, and the trail's new head put in the store, inside
// that same transaction, before it commits. When the commit fails after
// the append, the trail holds an entry whose change was not made, and
// Audited marks it at once with an audit.abandoned entry (or the next
// start does, when that fails too).
func (db *DB) Audited(e audit.Entry, apply func(tx Store, e *audit.Entry) error) error {
	if db.tx != nil {
		return errors.New("store: an audited change inside another")
	}
	t := db.trail
	if t == nil {
		return notMade("the audit trail is not open", errNoTrail)
	}
	if e.Result == "" {
		e.Result = audit.ResultOK
	}
	var refused error
	var written *audit.Entry
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		if apply != nil {
			if refused = apply(&DB{bolt: db.bolt, path: db.path, tx: btx, root: db}, &e); refused != nil {
				return refused
			}
		}
		w, err := t.Append(e)
		if err != nil {
			return err
		}
		written = &w
		head, err := json.Marshal(audit.Head{Seq: w.Seq, Hash: w.Hash})
		if err != nil {
			return err
		}
		return btx.Bucket(bucketMeta).Put(keyAuditHead, head)
	})
	switch {
	case err == nil:
		db.gen.Add(1)
		return nil
	case refused != nil:
		e.Result, e.Before, e.After = deviceupdate.ErrorMessage(refused), nil, nil
		if aerr := db.Audited(e, nil); aerr != nil {
			return fmt.Errorf("%w (the refusal could not be audited: %v)", refused, aerr)
		}
		return refused
	case written == nil:
		return notMade("its audit entry could not be written", err)
	}
	abandon := audit.Abandoned([]uint64{written.Seq}, "the store did not commit the change: "+err.Error())
	if aerr := db.Audited(abandon, nil); aerr != nil {
		err = fmt.Errorf("%w; marking its audit entry as not applied failed too (the next start does it): %v", err, aerr)
	}
	return notMade("the store could not be written", err)
}

// AuditEntries reads the trail file (audit.Trail.Read), checked, once
// AnchorAudit ran, against the head the store keeps.
func (db *DB) AuditEntries(fn func(e audit.Entry, verified bool)) (*audit.BrokenError, error) {
	if db.trail == nil {
		return nil, errNoTrail
	}
	return db.trail.Read(fn)
}

// AuditBroken returns where the trail file broke when last read.
func (db *DB) AuditBroken() *audit.BrokenError {
	if db.trail == nil {
		return nil
	}
	return db.trail.Broken()
}

// AuditLocation returns the trail file's path.
func (db *DB) AuditLocation() string {
	if db.trail == nil {
		return ""
	}
	return db.trail.Path()
}

// AnchorAudit anchors the trail file to the head the store keeps
// (audit.Trail.Anchor): the file and the store are written apart, so a
// crash between the two can leave entries whose change did not commit.
func (db *DB) AnchorAudit() (*audit.Anchoring, error) {
	if db.trail == nil {
		return nil, errNoTrail
	}
	return db.trail.Anchor(db)
}

// ErrNotMade is wrapped by the error of an admin change that Audited did
// not make for a fault of the server (not a refusal): its entry could not
// be written, or the store could not commit it.
var ErrNotMade = errors.New("the change was not made")

// notMade is the error of a change that did not take effect.
func notMade(why string, err error) error {
	err = fmt.Errorf("%w: %s: %w", ErrNotMade, why, err)
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &deviceupdate.Error{Code: deviceupdate.EUNAVAILABLE, Err: err,
			Message: "the change was not made: " + why + ": the server's disk is full; free some space and try again"}
	}
	return &deviceupdate.Error{Code: deviceupdate.EINTERNAL, Message: "the change was not made: " + why, Err: err}
}

// InitAuditHead records an empty head in a store that keeps none, for a
// trail that has no entry yet: from the first change on, an entry the
// store did not commit shows. A store that keeps none beside a trail with
// entries was made before stores kept heads: admin.Service.CheckTrail
// records that trail's last entry instead.
func (db *DB) InitAuditHead() error {
	err := db.write(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyAuditHead) != nil {
			return nil
		}
		head, err := json.Marshal(audit.Head{})
		if err != nil {
			return err
		}
		return meta.Put(keyAuditHead, head)
	})
	if err != nil {
		return fmt.Errorf("record audit trail head: %w", err)
	}
	return nil
}
