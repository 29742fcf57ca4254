package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// RolloutFixture fills db with CX600's rule approved at 4.0.7577.4100
// and 4.0.7577.4366 pending, under a running 10,50,100 rollout.
func RolloutFixture(t *testing.T, db store.Store) (store.Store, deviceupdate.Rollout) {
	t.Helper()
	id := deviceupdate.RuleID(CX600)
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(CX600, "4.0.7577.4100", "aa")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(CX600, "4.0.7577.4366", "bb")}); err != nil {
		t.Fatal(err)
	}
	o := deviceupdate.RolloutOptions{Waves: []int{10, 50, 100}, Soak: time.Hour, MaxFailures: 0.1}
	r, err := db.StartRollout(id, o, "fixture", time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return db, r
}

// PollOf is a poll of a CX600 phone id running a version, offered
// another (or none) at at.
func PollOf(id string, running, offered deviceupdate.Version, at time.Time) deviceupdate.Device {
	req := deviceupdate.PollRequest{DeviceType: CX600.DeviceType, MAC: id, Brand: CX600.Brand, Model: CX600.Model, Revision: CX600.Revision, Locale: CX600.Locale,
		Modules: []deviceupdate.Module{{UpdateType: "CPE", Version: running}}}
	return deviceupdate.DeviceFromPoll(req, "10.0.0.1", at, offered)
}

// testRolloutRefusals: while a rollout runs, approve, restore, remove and
// an import of another version are refused and change nothing; starting
// one needs a pending version and no other rollout.
func testRolloutRefusals(t *testing.T, open Opener) {
	db, r := RolloutFixture(t, open(t))
	id := r.RuleID
	before, _ := db.FindRule(id)
	tests := []struct {
		name string
		do   func() error
		code string
	}{
		{"approve", func() error { _, _, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil); return err }, deviceupdate.ECONFLICT},
		{"restore", func() error { _, _, err := db.ChangeRule(id, deviceupdate.RuleRestore, nil); return err }, deviceupdate.ECONFLICT},
		{"remove", func() error { _, _, err := db.ChangeRule(id, deviceupdate.RuleRemove, nil); return err }, deviceupdate.ECONFLICT},
		{"import another version", func() error {
			_, err := db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(CX600, "4.0.7577.4400", "cc")})
			return err
		}, deviceupdate.ECONFLICT},
		{"a second rollout", func() error {
			_, err := db.StartRollout(id, r.RolloutOptions, "second", time.Now())
			return err
		}, deviceupdate.ECONFLICT},
		{"bad options", func() error {
			_, err := db.StartRollout(id, deviceupdate.RolloutOptions{Waves: []int{5, 50}, Soak: time.Hour}, "bad", time.Now())
			return err
		}, deviceupdate.EINVALID},
		{"no such rule", func() error {
			_, err := db.StartRollout("nope", r.RolloutOptions, "x", time.Now())
			return err
		}, deviceupdate.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); deviceupdate.ErrorCode(err) != tt.code {
				t.Fatalf("err = %v; want %s", err, tt.code)
			}
			if after, _ := db.FindRule(id); *after != *before {
				t.Errorf("rule changed: %+v; was %+v", after, before)
			}
			if got, _ := db.Rollout(id); !reflect.DeepEqual(*got, r) {
				t.Errorf("rollout changed: %+v; was %+v", got, r)
			}
		})
	}
}

// testRolloutEnds: completion leaves the rule exactly as a plain approve
// does; reset aborts the rollout and drops the pending version as a
// plain reset does.
func testRolloutEnds(t *testing.T, open Opener) {
	t.Run("complete", func(t *testing.T) {
		db, r := RolloutFixture(t, open(t))
		rule, _ := db.FindRule(r.RuleID)
		want, _ := rule.Approve()
		_, after, err := db.ChangeRollout(r.RuleID, func(r deviceupdate.Rollout) (deviceupdate.Rollout, error) {
			r.State = deviceupdate.RolloutCompleted
			return r, nil
		})
		if err != nil || after.State != deviceupdate.RolloutCompleted {
			t.Fatalf("complete = %+v, %v", after, err)
		}
		if got, _ := db.FindRule(r.RuleID); *got != want {
			t.Errorf("rule after completion %+v; want %+v", got, want)
		}
		if _, _, err := db.ChangeRule(r.RuleID, deviceupdate.RuleRestore, nil); err != nil {
			t.Errorf("restore after completion: %v", err)
		}
	})
	t.Run("reset aborts", func(t *testing.T) {
		db, r := RolloutFixture(t, open(t))
		_, after, err := db.ChangeRule(r.RuleID, deviceupdate.RuleReset, nil)
		if err != nil || !after.PendingVersion.IsZero() || after.ApprovedVersion != r.Previous {
			t.Fatalf("reset = %+v, %v; want the previous version approved, nothing pending", after, err)
		}
		if got, _ := db.Rollout(r.RuleID); got.State != deviceupdate.RolloutAborted {
			t.Errorf("rollout after reset: %s; want aborted", got.State)
		}
	})
}

// testRolloutCrashDump: a crash dump uploaded after a device updated is
// noted in its rollout record (and fails it); one uploaded before is not,
// nor a log that is not a crash dump.
func testRolloutCrashDump(t *testing.T, open Opener) {
	db, r := RolloutFixture(t, open(t))
	var updated, pending string
	for i := 0; updated == "" || pending == ""; i++ {
		id := fmt.Sprintf("00-04-F2-00-02-%02X", i)
		if !r.Member(id) {
			continue
		}
		if updated == "" {
			updated = id
		} else {
			pending = id
		}
	}
	t0 := r.StartedAt
	upload := func(id, logType, name string, at time.Time) deviceupdate.Device {
		return deviceupdate.DeviceFromUpload(deviceupdate.DeviceLog{Device: id}, deviceupdate.LogUpload{DeviceType: "UCPhone", MAC: id, LogType: logType, FileName: name}, at)
	}
	steps := [][]deviceupdate.Device{
		{PollOf(updated, r.Previous, r.Version, t0), PollOf(pending, r.Previous, r.Version, t0)},
		{PollOf(updated, r.Version, deviceupdate.Version{}, t0.Add(time.Minute))},
		{upload(updated, "Config", "config.txt", t0.Add(2*time.Minute)), upload(pending, "Watson", "crash.dmp", t0.Add(2*time.Minute))},
		{upload(updated, "watson", "CRASH.KDMP", t0.Add(3*time.Minute))},
	}
	for _, batch := range steps {
		if err := db.PutDevices(batch); err != nil {
			t.Fatal(err)
		}
	}
	devices, err := db.RolloutDevices(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	crash := map[string]time.Time{}
	for _, d := range devices {
		crash[d.Device] = d.CrashAt
	}
	if !crash[updated].Equal(t0.Add(3*time.Minute)) || !crash[pending].IsZero() {
		t.Errorf("crash times %v; want %s for the updated device only", crash, t0.Add(3*time.Minute))
	}
}

// testRolloutDevices: polls of a rule under a rollout are noted for the
// members offered its version, and for them only.
func testRolloutDevices(t *testing.T, open Opener) {
	db, r := RolloutFixture(t, open(t))
	at := r.StartedAt.Add(time.Minute)
	if err := db.PutDevices(RolloutPolls(r, 40, at)); err != nil {
		t.Fatal(err)
	}
	devices, err := db.RolloutDevices(r.ID)
	if err != nil || len(devices) == 0 {
		t.Fatalf("rollout devices = %d, %v; want the members offered", len(devices), err)
	}
	for i, d := range devices {
		if !r.Member(d.Device) || !d.OfferedAt.Equal(at) || d.Offers != 1 || d.Reported != r.Previous {
			t.Errorf("tracked %+v; want only members, offered once at %s", d, at)
		}
		if i > 0 && devices[i-1].Device >= d.Device {
			t.Errorf("devices out of ID order: %s then %s", devices[i-1].Device, d.Device)
		}
	}
	if rollouts, err := db.Rollouts(); err != nil || len(rollouts) != 1 || rollouts[0].ID != r.ID {
		t.Errorf("rollouts = %+v, %v", rollouts, err)
	}
	if none, err := db.RolloutDevices("no-such-rollout"); err != nil || len(none) != 0 {
		t.Errorf("devices of no rollout = %+v, %v", none, err)
	}
}

// RolloutPolls returns the polls of n phones at at, running r's previous
// version, each offered what r offers it: its version to a member, the
// previous one to the others.
func RolloutPolls(r deviceupdate.Rollout, n int, at time.Time) []deviceupdate.Device {
	var batch []deviceupdate.Device
	for i := range n {
		id := fmt.Sprintf("00-04-F2-00-00-%02X", i)
		offered := r.Previous
		if r.Member(id) {
			offered = r.Version
		}
		batch = append(batch, PollOf(id, r.Previous, offered, at))
	}
	return batch
}
