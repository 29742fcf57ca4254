package pgstore

import (
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
)

// FindRule returns the rule with the given ID; ENOTFOUND when there is none.
func (db *DB) FindRule(id string) (*deviceupdate.Rule, error) {
	var r *deviceupdate.Rule
	err := db.view(func(tx pgx.Tx) (err error) {
		r, err = db.findRule(tx, id, false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find rule: %w", err)
	}
	if r == nil {
		return nil, errNoRule(id)
	}
	return r, nil
}

func errNoRule(id string) error {
	return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no rule %q; `deviceupdate rule list` shows the rules", id)
}

// findRule returns the rule with the given ID, or nil when there is none;
// forUpdate locks its row for the rest of tx.
func (db *DB) findRule(tx pgx.Tx, id string, forUpdate bool) (*deviceupdate.Rule, error) {
	sql := "SELECT data FROM rules WHERE id = $1"
	if forUpdate {
		sql += " FOR UPDATE"
	}
	var r deviceupdate.Rule
	found, err := getJSON(db.context(), tx, &r, sql, id)
	if err != nil || !found {
		return nil, err
	}
	return &r, nil
}

// putRule stores r, replacing the rule of its ID.
func (db *DB) putRule(tx pgx.Tx, r deviceupdate.Rule) error {
	data, err := jsonb(r)
	if err != nil {
		return err
	}
	_, err = tx.Exec(db.context(), "INSERT INTO rules (id, data) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET data = excluded.data", r.ID, data)
	return err
}

// ChangeRule performs a lifecycle action on the rule with the given ID in
// one transaction and returns the rule before and after it (after is nil
// for a removal). When expect is not nil the rule must still have the
// versions the caller read, else ECONFLICT: of two admins acting on what
// they both saw, on one node or two, one wins and the other is told the
// rule changed.
func (db *DB) ChangeRule(id string, action deviceupdate.RuleAction, expect *deviceupdate.Rule) (before deviceupdate.Rule, after *deviceupdate.Rule, err error) {
	err = db.write("rules", func(tx pgx.Tx) error {
		before, after = deviceupdate.Rule{}, nil
		cur, err := db.findRule(tx, id, true)
		if err != nil {
			return err
		}
		if cur == nil {
			return errNoRule(id)
		}
		before = *cur
		if expect != nil && (expect.ApprovedVersion != before.ApprovedVersion || expect.PendingVersion != before.PendingVersion ||
			expect.RestoreVersion != before.RestoreVersion) {
			return deviceupdate.Errorf(deviceupdate.ECONFLICT, "rule %s changed since it was read (now approved %s, pending %s, restore %s); look again and retry",
				id, orNone(before.ApprovedVersion), orNone(before.PendingVersion), orNone(before.RestoreVersion))
		}
		active, err := db.activeRollout(tx, id)
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
			active.State, active.Reason = deviceupdate.RolloutAborted, "reset"
			if err := db.putRollout(tx, *active); err != nil {
				return err
			}
		}
		if action == deviceupdate.RuleRemove {
			_, err := tx.Exec(db.context(), "DELETE FROM rules WHERE id = $1", id)
			return err
		}
		after = &next
		return db.putRule(tx, next)
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

// activeRollout returns the rule's rollout when one is running or paused.
func (db *DB) activeRollout(tx pgx.Tx, ruleID string) (*deviceupdate.Rollout, error) {
	var r deviceupdate.Rollout
	found, err := getJSON(db.context(), tx, &r, "SELECT data FROM rollouts WHERE rule_id = $1 AND active", ruleID)
	if err != nil || !found {
		return nil, err
	}
	return &r, nil
}

// putRollout stores r as its rule's latest rollout.
func (db *DB) putRollout(tx pgx.Tx, r deviceupdate.Rollout) error {
	data, err := jsonb(r)
	if err != nil {
		return err
	}
	_, err = tx.Exec(db.context(), `INSERT INTO rollouts (rule_id, id, active, data) VALUES ($1, $2, $3, $4)
ON CONFLICT (rule_id) DO UPDATE SET id = excluded.id, active = excluded.active, data = excluded.data`, r.RuleID, r.ID, r.Active(), data)
	return err
}

func errRolloutActive(r *deviceupdate.Rollout, what string) error {
	return deviceupdate.Errorf(deviceupdate.ECONFLICT, "rule %s has a staged rollout %s (wave %d of %d); cannot %s: let it complete, or `deviceupdate rule reset %s` to abort it",
		r.RuleID, r.State, r.Wave+1, len(r.Waves), what, r.RuleID)
}
