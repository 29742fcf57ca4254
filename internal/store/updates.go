package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

func updateKey(k deviceupdate.RuleKey, v deviceupdate.Version) []byte {
	return []byte(strings.ToLower(k.String()) + "@" + v.String())
}

// getJSON decodes the value under key into dst; it reports false when the
// key is absent. The value is decoded inside the transaction, so nothing
// refers to bbolt's memory afterwards.
func getJSON(b *bolt.Bucket, key []byte, dst any) (bool, error) {
	v := b.Get(key)
	if v == nil {
		return false, nil
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return false, fmt.Errorf("decode record %s: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// FindUpdate returns a stored update; ENOTFOUND when there is none.
func (db *DB) FindUpdate(k deviceupdate.RuleKey, v deviceupdate.Version) (*deviceupdate.StoredUpdate, error) {
	var u deviceupdate.StoredUpdate
	var found bool
	err := db.view(func(tx *bolt.Tx) (err error) {
		found, err = getJSON(tx.Bucket(bucketUpdates), updateKey(k, v), &u)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find update: %w", err)
	}
	if !found {
		return nil, deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no update %s version %s", k, v)
	}
	return &u, nil
}

// listJSON decodes every value of a bucket.
func listJSON[T any](db *DB, bucket []byte) ([]T, error) {
	var out []T
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var item T
			if err := json.Unmarshal(v, &item); err != nil {
				return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
			}
			out = append(out, item)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", bucket, err)
	}
	return out, nil
}

// Updates returns every stored update, ordered by rule key and version.
func (db *DB) Updates() ([]deviceupdate.StoredUpdate, error) {
	out, err := listJSON[deviceupdate.StoredUpdate](db, bucketUpdates)
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
	out, err := listJSON[deviceupdate.Rule](db, bucketRules)
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
	err := db.view(func(tx *bolt.Tx) (err error) {
		statuses, err = importStatuses(tx, updates)
		return err
	})
	return statuses, err
}

// importStatuses decides, from the stored updates and rules, what
// importing each update does: a new version is added; one stored with the
// same content is re-staged unless it is already its rule's pending or
// approved version (deviceupdate.ImportStatus); one stored with other
// content is refused.
func importStatuses(tx *bolt.Tx, updates []*deviceupdate.StoredUpdate) ([]string, error) {
	ub, rb := tx.Bucket(bucketUpdates), tx.Bucket(bucketRules)
	out := make([]string, len(updates))
	for i, u := range updates {
		var old deviceupdate.StoredUpdate
		found, err := getJSON(ub, updateKey(u.RuleKey, u.Version), &old)
		switch {
		case err != nil:
			return nil, err
		case !found:
			out[i] = deviceupdate.ImportAdded
		case old.SameContent(u):
			r, err := findRule(rb, deviceupdate.RuleID(u.RuleKey))
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

// findRule returns the rule with the given ID, or nil when there is none.
func findRule(b *bolt.Bucket, id string) (*deviceupdate.Rule, error) {
	var r deviceupdate.Rule
	found, err := getJSON(b, []byte(id), &r)
	if err != nil || !found {
		return nil, err
	}
	return &r, nil
}

// CommitImport records new updates and makes each new or re-staged one
// the pending version of its rule (creating the rule when needed), in one
// transaction, and reports each rule before and after; the same
// transaction ends the import BeginImport recorded. An update stored
// before with the same content keeps its record (its files are the same);
// one stored with other content fails the whole commit with ECONFLICT and
// nothing changes.
func (db *DB) CommitImport(updates []*deviceupdate.StoredUpdate) ([]deviceupdate.ImportedUpdate, error) {
	var out []deviceupdate.ImportedUpdate
	err := db.update(func(tx *bolt.Tx) error {
		out = nil
		statuses, err := importStatuses(tx, updates)
		if err != nil {
			return err
		}
		if err := deleteInProgress(tx, inProgressOf(updates)); err != nil {
			return err
		}
		ub, rb := tx.Bucket(bucketUpdates), tx.Bucket(bucketRules)
		for i, u := range updates {
			id := deviceupdate.RuleID(u.RuleKey)
			before, err := findRule(rb, id)
			if err != nil {
				return err
			}
			res := deviceupdate.ImportedUpdate{RuleID: id, Key: u.RuleKey, Version: u.Version, Status: statuses[i], RuleAfter: before}
			if statuses[i] == deviceupdate.ImportAdded {
				if err := putJSON(ub, updateKey(u.RuleKey, u.Version), u); err != nil {
					return err
				}
			}
			if statuses[i] != deviceupdate.ImportUnchanged {
				// A new pending version would change what a staged
				// rollout offers under it.
				if active, err := activeRollout(tx, id); err != nil || active != nil && active.Version != u.Version {
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
				if err := putJSON(rb, []byte(id), after); err != nil {
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
	err := db.update(func(tx *bolt.Tx) error {
		removed = nil
		referenced := map[string]bool{}
		err := tx.Bucket(bucketRules).ForEach(func(_, v []byte) error {
			var r deviceupdate.Rule
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			for _, ver := range []deviceupdate.Version{r.ApprovedVersion, r.PendingVersion, r.RestoreVersion} {
				if !ver.IsZero() {
					referenced[string(updateKey(r.RuleKey, ver))] = true
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketUpdates)
		var keys [][]byte
		err = b.ForEach(func(k, v []byte) error {
			if referenced[string(k)] {
				return nil
			}
			var u deviceupdate.StoredUpdate
			if err := json.Unmarshal(v, &u); err != nil {
				return err
			}
			removed = append(removed, u)
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		clearing := make([]*deviceupdate.StoredUpdate, len(removed))
		for i := range removed {
			clearing[i] = &removed[i]
		}
		return putInProgress(tx, clearing, updatestore.OpClear, time.Now())
	})
	if err != nil {
		return nil, fmt.Errorf("delete unreferenced updates: %w", err)
	}
	return removed, nil
}
