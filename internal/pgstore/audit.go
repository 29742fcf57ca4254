package pgstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

var _ audit.HeadReader = (*DB)(nil)

// AuditHead returns the trail's head: its last entry's sequence number
// and hash ({0, ""} before the first entry; the schema starts with it, so
// ok is always true).
func (db *DB) AuditHead() (h audit.Head, ok bool, err error) {
	err = db.view(func(tx pgx.Tx) error {
		return tx.QueryRow(db.context(), "SELECT seq, hash FROM audit_head").Scan(&h.Seq, &h.Hash)
	})
	if err != nil {
		return h, false, fmt.Errorf("read audit trail head: %w", err)
	}
	return h, true, nil
}

// InitAuditHead does nothing: the schema records the empty head.
func (db *DB) InitAuditHead() error { return nil }

// Audited makes one admin change, audited; every admin change goes through
// it. apply runs in a SERIALIZABLE transaction, on a DB bound to it, and
// may fill in the entry (its Before and After, a canonical Target). When
// apply succeeds, the entry is appended to the trail (audit_entries) in
// that same transaction, after the trail's head, whose row it locks:
// appends from all the nodes of a pool form one chain, and a change takes
// effect with its entry or not at all. A conflict with another node's
// change runs the whole again, apply included: of two admins changing the
// same rule, the second sees the first's change.
//
// When apply fails, nothing changes, and the refusal is audited with its
// reason. A nil apply records e alone. e's Result defaults to ok. The
// errors of a change not made for a fault of the database wrap
// store.ErrNotMade: EUNAVAILABLE when its disk is full, else EINTERNAL.
func (db *DB) Audited(e audit.Entry, apply func(tx store.Store, e *audit.Entry) error) error {
	if db.tx != nil {
		return errors.New("pgstore: an audited change inside another")
	}
	if e.Result == "" {
		e.Result = audit.ResultOK
	}
	var refused error
	var pending []string
	var commits []func()
	err := db.serializable(func(tx pgx.Tx) error {
		entry := e // a retry starts from the entry as given
		pending, commits, refused = pending[:0], commits[:0], nil
		if apply != nil {
			bound := &DB{pool: db.pool, node: db.node, now: db.now, ctx: db.ctx, tx: tx, root: db, pending: &pending, commits: &commits}
			if refused = apply(bound, &entry); refused != nil {
				return refused
			}
		}
		if err := db.appendEntry(tx, entry); err != nil {
			return err
		}
		for _, what := range append(pending, "audit") {
			if err := db.notify(tx, what); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil:
		db.gen.Add(1)
		for _, fn := range commits {
			fn()
		}
		return nil
	case refused != nil:
		e.Result, e.Before, e.After = deviceupdate.ErrorMessage(refused), nil, nil
		if aerr := db.Audited(e, nil); aerr != nil {
			return fmt.Errorf("%w (the refusal could not be audited: %v)", refused, aerr)
		}
		return refused
	}
	return notMade(err)
}

// appendEntry seals e after the trail's head and stores it, moving the
// head, in tx.
func (db *DB) appendEntry(tx pgx.Tx, e audit.Entry) error {
	ctx := db.context()
	var head audit.Head
	if err := tx.QueryRow(ctx, "SELECT seq, hash FROM audit_head FOR UPDATE").Scan(&head.Seq, &head.Hash); err != nil {
		return fmt.Errorf("lock the audit trail's head: %w", err)
	}
	w, err := audit.Seal(e, head, db.now())
	if err != nil {
		return err
	}
	line, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	// The line is passed as text, so that the json column keeps its
	// bytes, which the hash is over.
	if _, err := tx.Exec(ctx, "INSERT INTO audit_entries (seq, at, entry, hash) VALUES ($1, $2, $3::text::json, $4)", int64(w.Seq), w.Time, string(line), w.Hash); err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	if _, err := tx.Exec(ctx, "UPDATE audit_head SET seq = $1, hash = $2", int64(w.Seq), w.Hash); err != nil {
		return fmt.Errorf("move the audit trail's head: %w", err)
	}
	return nil
}

// notMade is the error of a change that did not take effect for a fault
// of the database.
func notMade(err error) error {
	err = fmt.Errorf("%w: the store could not be written: %w", store.ErrNotMade, err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "53100" { // disk_full
		return &deviceupdate.Error{Code: deviceupdate.EUNAVAILABLE, Err: err,
			Message: "the change was not made: the store could not be written: the database's disk is full; free some space and try again"}
	}
	return &deviceupdate.Error{Code: deviceupdate.EINTERNAL, Message: "the change was not made: the store could not be written", Err: err}
}

// WriteAuditTrail writes the trail to w as the file trail holds it: one
// entry's JSON per line, in order, so that audit.Read and audit.Verify
// check it. The lines are read in one transaction, up to the head.
func (db *DB) WriteAuditTrail(w io.Writer) error {
	err := db.view(func(tx pgx.Tx) error {
		rows, err := tx.Query(db.context(), "SELECT entry::text FROM audit_entries ORDER BY seq")
		if err != nil {
			return err
		}
		var line string
		_, err = pgx.ForEachRow(rows, []any{&line}, func() error {
			_, err := io.WriteString(w, line+"\n")
			return err
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("read audit trail: %w", err)
	}
	return nil
}

// AuditEntries hands every entry of the trail to fn as audit.Read does,
// with whether the chain vouches for it, and returns the first break: in
// the chain, or an end before the head (entries cut off). AuditBroken
// reports it from then on.
func (db *DB) AuditEntries(fn func(e audit.Entry, verified bool)) (*audit.BrokenError, error) {
	head, _, err := db.AuditHead()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(db.WriteAuditTrail(pw)) }()
	var last uint64
	brk, err := audit.Read(pr, func(e audit.Entry, verified bool) {
		if verified {
			last = e.Seq
		}
		fn(e, verified)
	})
	_ = pr.Close()
	if err != nil {
		return nil, err
	}
	if brk == nil && last < head.Seq {
		brk = &audit.BrokenError{Line: int(last) + 1, Seq: last + 1,
			Reason: fmt.Sprintf("the trail ends at entry %d, before its head %d (entries were removed)", last, head.Seq)}
	}
	db.auditBroken().Store(brk)
	return brk, nil
}

// auditBroken is where the root DB keeps the last break found.
func (db *DB) auditBroken() *atomic.Pointer[audit.BrokenError] {
	if db.root != nil {
		return &db.root.broken
	}
	return &db.broken
}

// AuditBroken returns where the chain broke when AuditEntries or
// AnchorAudit last read it, nil when it was intact.
func (db *DB) AuditBroken() *audit.BrokenError { return db.auditBroken().Load() }

// AuditLocation names the trail in messages.
func (db *DB) AuditLocation() string { return "table audit_entries of the PostgreSQL store" }

// AnchorAudit checks the trail against its head, once at start. Entries
// are appended in the transaction of their change, so none is ever
// written without it: Unapplied is always empty, and the head is always
// recorded.
func (db *DB) AnchorAudit() (*audit.Anchoring, error) {
	head, _, err := db.AuditHead()
	if err != nil {
		return nil, err
	}
	if _, err := db.AuditEntries(func(audit.Entry, bool) {}); err != nil {
		return nil, fmt.Errorf("anchor audit trail: %w", err)
	}
	return &audit.Anchoring{Recorded: true, Last: head}, nil
}
