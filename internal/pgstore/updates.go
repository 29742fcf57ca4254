package pgstore

import (
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// updateKey is an update's key: its rule key in lower case, "@", its
// version, as the embedded store keys it.
func updateKey(k deviceupdate.RuleKey, v deviceupdate.Version) string {
	return strings.ToLower(k.String()) + "@" + v.String()
}

// FindUpdate returns a stored update; ENOTFOUND when there is none.
func (db *DB) FindUpdate(k deviceupdate.RuleKey, v deviceupdate.Version) (*deviceupdate.StoredUpdate, error) {
	var u *deviceupdate.StoredUpdate
	err := db.view(func(tx pgx.Tx) (err error) {
		u, err = db.findUpdate(tx, k, v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find update: %w", err)
	}
	if u == nil {
		return nil, deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no update %s version %s", k, v)
	}
	return u, nil
}

// findUpdate returns a stored update, or nil.
func (db *DB) findUpdate(tx pgx.Tx, k deviceupdate.RuleKey, v deviceupdate.Version) (*deviceupdate.StoredUpdate, error) {
	var u deviceupdate.StoredUpdate
	found, err := getJSON(db.context(), tx, &u, "SELECT data FROM updates WHERE key = $1", updateKey(k, v))
	if err != nil || !found {
		return nil, err
	}
	return &u, nil
}

// list decodes the records a query returns, in one read transaction.
func list[T any](db *DB, what, sql string, args ...any) ([]T, error) {
	var out []T
	err := db.view(func(tx pgx.Tx) (err error) {
		out, err = listJSON[T](db.context(), tx, sql, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

// Updates returns every stored update, ordered by rule key and version.
func (db *DB) Updates() ([]deviceupdate.StoredUpdate, error) {
	out, err := list[deviceupdate.StoredUpdate](db, "updates", "SELECT data FROM updates")
	sort.Slice(out, func(i, j int) bool {
		if a, b := strings.ToLower(out[i].RuleKey.String()), strings.ToLower(out[j].RuleKey.String()); a != b {
			return a < b
		}
		return out[i].Version.Compare(out[j].Version) < 0
	})
	return out, err
}

// Rules returns every rule, ordered by key.
func (db *DB) Rules() ([]deviceupdate.Rule, error) {
	out, err := list[deviceupdate.Rule](db, "rules", "SELECT data FROM rules")
	sort.Slice(out, func(i, j int) bool {
		return strings.ToLower(out[i].RuleKey.String()) < strings.ToLower(out[j].RuleKey.String())
	})
	return out, err
}

// CheckImport reports, without writing, the status each update would have
// if imported now: ImportAdded, ImportRestaged or ImportUnchanged. A
// stored update of the same rule and version with other content is an
// ECONFLICT error.
func (db *DB) CheckImport(updates []*deviceupdate.StoredUpdate) ([]string, error) {
	var statuses []string
	err := db.view(func(tx pgx.Tx) (err error) {
		statuses, err = db.importStatuses(tx, updates)
		return err
	})
	return statuses, err
}

// importStatuses decides, from the stored updates and rules, what
// importing each update does: a new version is added; one stored with the
// same content is re-staged unless it is already its rule's pending or
// approved version (deviceupdate.ImportStatus); one stored with other
// content is refused.
func (db *DB) importStatuses(tx pgx.Tx, updates []*deviceupdate.StoredUpdate) ([]string, error) {
	out := make([]string, len(updates))
	for i, u := range updates {
		old, err := db.findUpdate(tx, u.RuleKey, u.Version)
		switch {
		case err != nil:
			return nil, err
		case old == nil:
			out[i] = deviceupdate.ImportAdded
		case old.SameContent(u):
			r, err := db.findRule(tx, deviceupdate.RuleID(u.RuleKey), false)
			if err != nil {
				return nil, err
			}
			out[i] = deviceupdate.ImportStatus(r, u.Version)
		default:
			return nil, deviceupdate.Errorf(deviceupdate.ECONFLICT,
				"%s version %s was imported before from another package (%s) with other content; a version's files never change: publish a new version",
				u.RuleKey, u.Version, shortHash(old.PackageSHA256))
		}
	}
	return out, nil
}

// CommitImport records new updates and makes each new or re-staged one
// the pending version of its rule (creating the rule when needed), in one
// transaction, and reports each rule before and after; the same
// transaction ends the import BeginImport recorded. An update stored
// before with the same content keeps its record (its files are the same);
// one stored with other content fails the whole commit with ECONFLICT and
// nothing changes. Two nodes importing the same version at once store it
// once: the second's transaction is run again and finds it.
func (db *DB) CommitImport(updates []*deviceupdate.StoredUpdate) ([]deviceupdate.ImportedUpdate, error) {
	var out []deviceupdate.ImportedUpdate
	err := db.write("updates", func(tx pgx.Tx) error {
		out = nil
		statuses, err := db.importStatuses(tx, updates)
		if err != nil {
			return err
		}
		if err := db.deleteInProgress(tx, inProgressOf(updates)); err != nil {
			return err
		}
		for i, u := range updates {
			id := deviceupdate.RuleID(u.RuleKey)
			before, err := db.findRule(tx, id, true)
			if err != nil {
				return err
			}
			res := deviceupdate.ImportedUpdate{RuleID: id, Key: u.RuleKey, Version: u.Version, Status: statuses[i], RuleAfter: before}
			if statuses[i] == deviceupdate.ImportAdded {
				if err := db.putUpdate(tx, u); err != nil {
					return err
				}
			}
			if statuses[i] != deviceupdate.ImportUnchanged {
				// A new pending version would change what a staged
				// rollout offers under it.
				if active, err := db.activeRollout(tx, id); err != nil || active != nil && active.Version != u.Version {
					if err != nil {
						return err
					}
					return errRolloutActive(active, "import "+u.Version.String()+" for it")
				}
				after := deviceupdate.Rule{ID: id, RuleKey: u.RuleKey}
				if before != nil {
					after = *before
				}
				after.PendingVersion = u.Version
				if err := db.putRule(tx, after); err != nil {
					return err
				}
				res.RuleBefore, res.RuleAfter = before, &after
			}
			out = append(out, res)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("commit import: %w", err)
	}
	return out, nil
}

func (db *DB) putUpdate(tx pgx.Tx, u *deviceupdate.StoredUpdate) error {
	data, err := jsonb(u)
	if err != nil {
		return err
	}
	_, err = tx.Exec(db.context(), "INSERT INTO updates (key, rule_id, version, data) VALUES ($1, $2, $3, $4)",
		updateKey(u.RuleKey, u.Version), deviceupdate.RuleID(u.RuleKey), u.Version.String(), data)
	return err
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// DeleteUnreferenced deletes, in one transaction, every stored update that
// no rule names as its approved, pending or restore version, and returns
// what it deleted. The same transaction records the removal of their
// folders as in progress (updatestore.OpClear), for the caller to end with
// EndInProgress once the folders are gone.
func (db *DB) DeleteUnreferenced() ([]deviceupdate.StoredUpdate, error) {
	var removed []deviceupdate.StoredUpdate
	err := db.write("updates", func(tx pgx.Tx) error {
		removed = nil
		rules, err := listJSON[deviceupdate.Rule](db.context(), tx, "SELECT data FROM rules")
		if err != nil {
			return err
		}
		referenced := map[string]bool{}
		for _, r := range rules {
			for _, ver := range []deviceupdate.Version{r.ApprovedVersion, r.PendingVersion, r.RestoreVersion} {
				if !ver.IsZero() {
					referenced[updateKey(r.RuleKey, ver)] = true
				}
			}
		}
		all, err := listJSON[deviceupdate.StoredUpdate](db.context(), tx, "SELECT data FROM updates ORDER BY key")
		if err != nil {
			return err
		}
		var keys []string
		for _, u := range all {
			if k := updateKey(u.RuleKey, u.Version); !referenced[k] {
				removed = append(removed, u)
				keys = append(keys, k)
			}
		}
		if _, err := tx.Exec(db.context(), "DELETE FROM updates WHERE key = ANY($1)", keys); err != nil {
			return err
		}
		clearing := make([]*deviceupdate.StoredUpdate, len(removed))
		for i := range removed {
			clearing[i] = &removed[i]
		}
		return db.putInProgress(tx, clearing, updatestore.OpClear, db.now())
	})
	if err != nil {
		return nil, fmt.Errorf("delete unreferenced updates: %w", err)
	}
	return removed, nil
}
