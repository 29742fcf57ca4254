package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

var (
	bucketRollouts       = []byte("rollouts")       // rule ID → Rollout, the rule's latest
	bucketRolloutDevices = []byte("rolloutdevices") // rollout ID → bucket of device ID → RolloutDevice
)

func errNoRollout(ruleID string) error {
	return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "rule %s has no staged rollout; start one with `deviceupdate rule approve %s --waves 5,25,100`", ruleID, ruleID)
}

// Rollout returns the rule's latest rollout; ENOTFOUND when it has none.
func (db *DB) Rollout(ruleID string) (*deviceupdate.Rollout, error) {
	var r deviceupdate.Rollout
	var found bool
	err := db.view(func(tx *bolt.Tx) (err error) {
		found, err = getJSON(tx.Bucket(bucketRollouts), []byte(ruleID), &r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find rollout: %w", err)
	}
	if !found {
		return nil, errNoRollout(ruleID)
	}
	return &r, nil
}

// Rollouts returns every rule's latest rollout, ordered by rule ID.
func (db *DB) Rollouts() ([]deviceupdate.Rollout, error) {
	var out []deviceupdate.Rollout
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRollouts).ForEach(func(k, v []byte) error {
			var r deviceupdate.Rollout
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode rollout %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	return out, nil
}

// activeRollout returns the rule's rollout when one is running or paused.
func activeRollout(tx *bolt.Tx, ruleID string) (*deviceupdate.Rollout, error) {
	var r deviceupdate.Rollout
	found, err := getJSON(tx.Bucket(bucketRollouts), []byte(ruleID), &r)
	if err != nil || !found || !r.Active() {
		return nil, err
	}
	return &r, nil
}

// StartRollout starts a staged approval of the rule's pending version,
// with the random id that places devices in waves. Errors: ENOTFOUND,
// EINVALID (options), ECONFLICT (nothing pending, or a rollout of the
// rule is running or paused).
func (db *DB) StartRollout(ruleID string, o deviceupdate.RolloutOptions, id string, now time.Time) (deviceupdate.Rollout, error) {
	var r deviceupdate.Rollout
	if err := o.Validate(); err != nil {
		return r, err
	}
	err := db.update(func(tx *bolt.Tx) error {
		var rule deviceupdate.Rule
		found, err := getJSON(tx.Bucket(bucketRules), []byte(ruleID), &rule)
		if err != nil {
			return err
		}
		if !found {
			return errNoRule(ruleID)
		}
		if active, err := activeRollout(tx, ruleID); err != nil || active != nil {
			if err != nil {
				return err
			}
			return errRolloutActive(active, "start another")
		}
		if rule.PendingVersion.IsZero() {
			return deviceupdate.Errorf(deviceupdate.ECONFLICT, "rule %s (%s) has no pending version to roll out; import a package first", rule.ID, rule.RuleKey)
		}
		r = deviceupdate.Rollout{RuleID: rule.ID, RuleKey: rule.RuleKey, Version: rule.PendingVersion, Previous: rule.ApprovedVersion,
			ID: id, RolloutOptions: o, State: deviceupdate.RolloutRunning, StartedAt: now.UTC(), WaveStartedAt: now.UTC()}
		if _, err := tx.Bucket(bucketRolloutDevices).CreateBucketIfNotExists([]byte(id)); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketRollouts), []byte(ruleID), r)
	})
	if err != nil {
		return r, fmt.Errorf("start rollout of rule %s: %w", ruleID, err)
	}
	return r, nil
}

func errRolloutActive(r *deviceupdate.Rollout, what string) error {
	return deviceupdate.Errorf(deviceupdate.ECONFLICT, "rule %s has a staged rollout %s (wave %d of %d); cannot %s: let it complete, or `deviceupdate rule reset %s` to abort it",
		r.RuleID, r.State, r.Wave+1, len(r.Waves), what, r.RuleID)
}

// ChangeRollout changes the rule's rollout in one transaction: change gets
// it as stored and returns it changed, or an error to refuse. A rollout
// that completes approves its rule as a plain approve does; one aborted
// drops the rule's pending version as a plain reset does. It returns the
// rollout before and after. Errors: ENOTFOUND, and change's.
func (db *DB) ChangeRollout(ruleID string, change func(deviceupdate.Rollout) (deviceupdate.Rollout, error)) (before, after deviceupdate.Rollout, err error) {
	err = db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRollouts)
		found, err := getJSON(b, []byte(ruleID), &before)
		if err != nil {
			return err
		}
		if !found {
			return errNoRollout(ruleID)
		}
		if after, err = change(before); err != nil {
			return err
		}
		if before.Active() && !after.Active() {
			if err := endRollout(tx, after); err != nil {
				return err
			}
		}
		return putJSON(b, []byte(ruleID), after)
	})
	if err != nil {
		return before, after, fmt.Errorf("rollout of rule %s: %w", ruleID, err)
	}
	return before, after, nil
}

// endRollout leaves the rule as a completed rollout (approved) or an
// aborted one (reset) does.
func endRollout(tx *bolt.Tx, r deviceupdate.Rollout) error {
	rules := tx.Bucket(bucketRules)
	var rule deviceupdate.Rule
	found, err := getJSON(rules, []byte(r.RuleID), &rule)
	if err != nil {
		return err
	}
	if !found {
		return errNoRule(r.RuleID)
	}
	if rule.PendingVersion != r.Version {
		// Nothing should change a rule's pending version while its rollout
		// is active (ChangeRule and imports refuse); say so if it did.
		return deviceupdate.Errorf(deviceupdate.ECONFLICT, "rule %s's pending version is %s, not the rollout's %s", r.RuleID, orNone(rule.PendingVersion), r.Version)
	}
	action := deviceupdate.RuleReset
	if r.State == deviceupdate.RolloutCompleted {
		action = deviceupdate.RuleApprove
	}
	next, err := rule.Apply(action)
	if err != nil {
		return err
	}
	return putJSON(rules, []byte(r.RuleID), next)
}

// RolloutDevices returns what the rollout knows of the devices it offered
// its version to, in device ID order.
func (db *DB) RolloutDevices(rolloutID string) ([]deviceupdate.RolloutDevice, error) {
	var out []deviceupdate.RolloutDevice
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRolloutDevices).Bucket([]byte(rolloutID))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var d deviceupdate.RolloutDevice
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode rollout device %s: %w", k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("rollout devices: %w", err)
	}
	return out, nil
}

// observeRollouts notes a batch of polls in the active rollouts of the
// rules that govern the devices' modules, inside the inventory's write
// transaction: the polls' batching is the rollouts' too.
func observeRollouts(tx *bolt.Tx, batch []deviceupdate.Device) error {
	rollouts := map[string]*deviceupdate.Rollout{}
	err := tx.Bucket(bucketRollouts).ForEach(func(k, v []byte) error {
		var r deviceupdate.Rollout
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode rollout %s: %w", k, err)
		}
		if r.Active() {
			rollouts[string(k)] = &r
		}
		return nil
	})
	if err != nil || len(rollouts) == 0 {
		return err
	}
	devs := tx.Bucket(bucketRolloutDevices)
	for _, d := range batch {
		if !d.LastCrashDump.IsZero() {
			if err := noteCrash(devs, rollouts, d); err != nil {
				return err
			}
		}
		if d.LastSeen.IsZero() {
			continue // an upload, not a poll
		}
		for _, m := range d.Modules {
			key := d.RuleKey(m.UpdateType)
			r := rollouts[deviceupdate.RuleID(key)]
			if r == nil {
				continue
			}
			b, err := devs.CreateBucketIfNotExists([]byte(r.ID))
			if err != nil {
				return err
			}
			var rd deviceupdate.RolloutDevice
			if _, err := getJSON(b, []byte(d.ID), &rd); err != nil {
				return err
			}
			rd.Device = d.ID
			if d.PollInterval > 0 {
				rd.Interval = d.PollInterval
			}
			next := r.Observe(rd, d.LastSeen, m.Version, d.Offered)
			if next.OfferedAt.IsZero() && next.HeldAt.IsZero() {
				continue
			}
			if err := putJSON(b, []byte(d.ID), next); err != nil {
				return err
			}
		}
	}
	return nil
}

// noteCrash notes d's crash dump in the active rollouts that updated d
// before it: the first such dump is the one judged.
func noteCrash(devs *bolt.Bucket, rollouts map[string]*deviceupdate.Rollout, d deviceupdate.Device) error {
	for _, r := range rollouts {
		b := devs.Bucket([]byte(r.ID))
		if b == nil {
			continue
		}
		var rd deviceupdate.RolloutDevice
		found, err := getJSON(b, []byte(d.ID), &rd)
		if err != nil {
			return err
		}
		if !found || rd.UpdatedAt.IsZero() || !rd.CrashAt.IsZero() || d.LastCrashDump.Before(rd.UpdatedAt) {
			continue
		}
		rd.CrashAt = d.LastCrashDump
		if err := putJSON(b, []byte(d.ID), rd); err != nil {
			return err
		}
	}
	return nil
}
