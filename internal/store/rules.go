package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// FindRule returns the rule with the given ID; ENOTFOUND when there is none.
func (db *DB) FindRule(id string) (*deviceupdate.Rule, error) {
	var r deviceupdate.Rule
	var found bool
	err := db.view(func(tx *bolt.Tx) (err error) {
		found, err = getJSON(tx.Bucket(bucketRules), []byte(id), &r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find rule: %w", err)
	}
	if !found {
		return nil, errNoRule(id)
	}
	return &r, nil
}

func errNoRule(id string) error {
	return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no rule %q; `deviceupdate rule list` shows the rules", id)
}

// ChangeRule performs a lifecycle action on the rule with the given ID in
// one transaction and returns the rule before and after it (after is nil
// for a removal). When expect is not nil the rule must still have the
// versions the caller read, else ECONFLICT: of two admins acting on what
// they both saw, one wins and the other is told the rule changed.
func (db *DB) ChangeRule(id string, action deviceupdate.RuleAction, expect *deviceupdate.Rule) (before deviceupdate.Rule, after *deviceupdate.Rule, err error) {
	err = db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRules)
		found, err := getJSON(b, []byte(id), &before)
		if err != nil {
			return err
		}
		if !found {
			return errNoRule(id)
		}
		if expect != nil && (expect.ApprovedVersion != before.ApprovedVersion || expect.PendingVersion != before.PendingVersion ||
			expect.RestoreVersion != before.RestoreVersion) {
			return deviceupdate.Errorf(deviceupdate.ECONFLICT, "rule %s changed since it was read (now approved %s, pending %s, restore %s); look again and retry",
				id, orNone(before.ApprovedVersion), orNone(before.PendingVersion), orNone(before.RestoreVersion))
		}
		active, err := activeRollout(tx, id)
		if err != nil {
			return err
		}
		if active != nil && action != deviceupdate.RuleReset {
			return errRolloutActive(active, string(action)+" it")
		}
		next, err := before.Apply(action)
		if err != nil {
			return err
		}
		if active != nil {
			// Reset aborts the rollout: every device is offered the
			// approved version, the one before the rollout, again.
			active.State, active.Reason, active.EndedAt = deviceupdate.RolloutAborted, "reset", time.Now().UTC()
			if err := putJSON(tx.Bucket(bucketRollouts), []byte(id), active); err != nil {
				return err
			}
		}
		if action == deviceupdate.RuleRemove {
			return b.Delete([]byte(id))
		}
		after = &next
		return putJSON(b, []byte(id), next)
	})
	if err != nil {
		return before, nil, fmt.Errorf("%s rule %s: %w", action, id, err)
	}
	return before, after, nil
}

func orNone(v deviceupdate.Version) string {
	if v.IsZero() {
		return "none"
	}
	return v.String()
}
