package pgstore

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
)

// Staged rollouts: table rollouts holds each rule's latest, and
// rollout_devices what a rollout knows of each device it offered its
// version to, written by the inventory's flush (observeRollouts).

func errNoRollout(ruleID string) error {
	return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "rule %s has no staged rollout; start one with `deviceupdate rule approve %s --waves 5,25,100`", ruleID, ruleID)
}

// Rollout returns the rule's latest rollout; ENOTFOUND when it has none.
func (db *DB) Rollout(ruleID string) (*deviceupdate.Rollout, error) {
	var r deviceupdate.Rollout
	var found bool
	err := db.view(func(tx pgx.Tx) (err error) {
		found, err = getJSON(db.context(), tx, &r, "SELECT data FROM rollouts WHERE rule_id = $1", ruleID)
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
	return list[deviceupdate.Rollout](db, "rollouts", `SELECT data FROM rollouts ORDER BY rule_id COLLATE "C"`)
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
	err := db.write("rollouts", func(tx pgx.Tx) error {
		r = deviceupdate.Rollout{}
		rule, err := db.findRule(tx, ruleID, true)
		if err != nil {
			return err
		}
		if rule == nil {
			return errNoRule(ruleID)
		}
		if active, err := db.activeRollout(tx, ruleID); err != nil || active != nil {
			if err != nil {
				return err
			}
			return errRolloutActive(active, "start another")
		}
		if r, err = deviceupdate.NewRollout(*rule, o, id, now); err != nil {
			return err
		}
		return db.putRollout(tx, r)
	})
	if err != nil {
		return r, fmt.Errorf("start rollout of rule %s: %w", ruleID, err)
	}
	return r, nil
}

// ChangeRollout changes the rule's rollout in one transaction: change gets
// it as stored and returns it changed, or an error to refuse. A rollout
// that completes approves its rule as a plain approve does; one aborted
// drops the rule's pending version as a plain reset does. It returns the
// rollout before and after. Errors: ENOTFOUND, and change's.
//
// The rollout's row is locked; of two nodes changing it at once (one
// completes it as the other pauses it), the second runs again once the
// first commits, and change sees the first's result.
func (db *DB) ChangeRollout(ruleID string, change func(deviceupdate.Rollout) (deviceupdate.Rollout, error)) (before, after deviceupdate.Rollout, err error) {
	err = db.write("rollouts", func(tx pgx.Tx) error {
		before, after = deviceupdate.Rollout{}, deviceupdate.Rollout{}
		found, err := getJSON(db.context(), tx, &before, "SELECT data FROM rollouts WHERE rule_id = $1 FOR UPDATE", ruleID)
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
			if err := db.endRollout(tx, after); err != nil {
				return err
			}
		}
		return db.putRollout(tx, after)
	})
	if err != nil {
		return before, after, fmt.Errorf("rollout of rule %s: %w", ruleID, err)
	}
	return before, after, nil
}

// endRollout leaves the rule as a completed rollout (approved) or an
// aborted one (reset) does.
func (db *DB) endRollout(tx pgx.Tx, r deviceupdate.Rollout) error {
	rule, err := db.findRule(tx, r.RuleID, true)
	if err != nil {
		return err
	}
	if rule == nil {
		return errNoRule(r.RuleID)
	}
	next, err := r.EndRule(*rule)
	if err != nil {
		return err
	}
	return db.putRule(tx, next)
}

// RolloutDevices returns what the rollout knows of the devices it offered
// its version to, in device ID order.
func (db *DB) RolloutDevices(rolloutID string) ([]deviceupdate.RolloutDevice, error) {
	return list[deviceupdate.RolloutDevice](db, "rollout devices", "SELECT data FROM rollout_devices WHERE rollout_id = $1 ORDER BY device_id", rolloutID)
}

// rolloutDeviceKey names a row of rollout_devices.
type rolloutDeviceKey struct{ rollout, device string }

func compareRolloutDeviceKeys(a, b rolloutDeviceKey) int {
	return cmp.Or(cmp.Compare(a.rollout, b.rollout), cmp.Compare(a.device, b.device))
}

// observeRollouts notes a batch of polls in the active rollouts of the
// rules that govern the devices' modules, inside the inventory's write
// transaction: the polls' batching is the rollouts' too. It reads the
// active rollouts (FOR SHARE: a rollout being changed on another node is
// observed before or after the change, never during it) and the rows of
// the batch's devices in one query each, applies the batch in order as
// the embedded store does, and writes the rows it changed in one upsert.
// The batch's device rows, locked by PutDevices, order two nodes'
// observations of one device.
func (db *DB) observeRollouts(tx pgx.Tx, batch []deviceupdate.Device) error {
	ctx := db.context()
	active, err := listJSON[deviceupdate.Rollout](ctx, tx, "SELECT data FROM rollouts WHERE active ORDER BY rule_id FOR SHARE")
	if err != nil || len(active) == 0 {
		return err
	}
	rollouts := make(map[string]*deviceupdate.Rollout, len(active))
	for i := range active {
		rollouts[active[i].RuleID] = &active[i]
	}
	// The rows the batch may read: each crash dump's in every active
	// rollout, each poll's in its modules' rollouts.
	var keys rolloutDeviceRows
	wanted := map[rolloutDeviceKey]bool{}
	want := func(rollout, device string) {
		k := rolloutDeviceKey{rollout, device}
		if !wanted[k] {
			wanted[k] = true
			keys.rollouts, keys.devices = append(keys.rollouts, rollout), append(keys.devices, device)
		}
	}
	for _, d := range batch {
		if !d.LastCrashDump.IsZero() {
			for _, r := range active {
				want(r.ID, d.ID)
			}
		}
		if d.LastSeen.IsZero() {
			continue
		}
		for _, m := range d.Modules {
			if r := rollouts[deviceupdate.RuleID(d.RuleKey(m.UpdateType))]; r != nil {
				want(r.ID, d.ID)
			}
		}
	}
	if len(keys.rollouts) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT rd.rollout_id, rd.device_id, rd.data FROM rollout_devices rd
JOIN unnest($1::text[], $2::text[]) AS k(rollout_id, device_id) ON rd.rollout_id = k.rollout_id AND rd.device_id = k.device_id
ORDER BY rd.rollout_id, rd.device_id FOR UPDATE OF rd`, keys.rollouts, keys.devices)
	if err != nil {
		return err
	}
	known := map[rolloutDeviceKey]deviceupdate.RolloutDevice{}
	var k rolloutDeviceKey
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&k.rollout, &k.device, &raw}, func() error {
		var rd deviceupdate.RolloutDevice
		if err := jsonUnmarshal(raw, &rd); err != nil {
			return fmt.Errorf("rollout %s device %s: %w", k.rollout, k.device, err)
		}
		known[k] = rd
		return nil
	})
	if err != nil {
		return err
	}

	changed := map[rolloutDeviceKey]bool{}
	for _, d := range batch {
		if !d.LastCrashDump.IsZero() {
			noteCrash(known, changed, active, d)
		}
		if d.LastSeen.IsZero() {
			continue // an upload, not a poll
		}
		for _, m := range d.Modules {
			r := rollouts[deviceupdate.RuleID(d.RuleKey(m.UpdateType))]
			if r == nil {
				continue
			}
			k := rolloutDeviceKey{r.ID, d.ID}
			rd := known[k]
			rd.Device = d.ID
			if d.PollInterval > 0 {
				rd.Interval = d.PollInterval
			}
			next := r.Observe(rd, d.LastSeen, m.Version, d.Offered)
			if next.OfferedAt.IsZero() && next.HeldAt.IsZero() {
				continue
			}
			known[k], changed[k] = next, true
		}
	}
	if len(changed) == 0 {
		return nil
	}
	var out rolloutDeviceRows
	for _, k := range slices.SortedFunc(maps.Keys(changed), compareRolloutDeviceKeys) { // new rows inserted in one order on every node
		data, err := jsonb(known[k])
		if err != nil {
			return err
		}
		out.rollouts, out.devices, out.data = append(out.rollouts, k.rollout), append(out.devices, k.device), append(out.data, data)
	}
	_, err = tx.Exec(ctx, `INSERT INTO rollout_devices (rollout_id, device_id, data) SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])
ON CONFLICT (rollout_id, device_id) DO UPDATE SET data = excluded.data`, out.rollouts, out.devices, out.data)
	return err
}

// rolloutDeviceRows are rows of rollout_devices as the arrays of one
// statement.
type rolloutDeviceRows struct {
	rollouts, devices []string
	data              [][]byte
}

// noteCrash notes d's crash dump in the active rollouts that updated d
// before it: the first such dump is the one judged.
func noteCrash(known map[rolloutDeviceKey]deviceupdate.RolloutDevice, changed map[rolloutDeviceKey]bool, active []deviceupdate.Rollout, d deviceupdate.Device) {
	for _, r := range active {
		k := rolloutDeviceKey{r.ID, d.ID}
		rd, found := known[k]
		if !found || rd.UpdatedAt.IsZero() || !rd.CrashAt.IsZero() || d.LastCrashDump.Before(rd.UpdatedAt) {
			continue
		}
		rd.CrashAt = d.LastCrashDump
		known[k], changed[k] = rd, true
	}
}
