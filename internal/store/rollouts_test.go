package store_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// rolloutFixture is a store with cx600's rule approved at 4.0.7577.4100
// and 4.0.7577.4366 pending, under a running 10,50,100 rollout.
func rolloutFixture(t *testing.T, dir string) (*store.DB, deviceupdate.Rollout) {
	t.Helper()
	db, err := store.Open(dir, store.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	id := deviceupdate.RuleID(cx600)
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{storedUpdate(cx600, "4.0.7577.4100", "aa")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{storedUpdate(cx600, "4.0.7577.4366", "bb")}); err != nil {
		t.Fatal(err)
	}
	o := deviceupdate.RolloutOptions{Waves: []int{10, 50, 100}, Soak: time.Hour, MaxFailures: 0.1}
	r, err := db.StartRollout(id, o, "fixture", time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return db, r
}

func pollOf(id string, running, offered deviceupdate.Version, at time.Time) deviceupdate.Device {
	req := deviceupdate.PollRequest{DeviceType: cx600.DeviceType, MAC: id, Brand: cx600.Brand, Model: cx600.Model, Revision: cx600.Revision, Locale: cx600.Locale,
		Modules: []deviceupdate.Module{{UpdateType: "CPE", Version: running}}}
	return deviceupdate.DeviceFromPoll(req, "10.0.0.1", at, offered)
}

// TestRolloutRefusals: while a rollout runs, approve, restore, remove and
// an import of another version are refused and change nothing; starting
// one needs a pending version and no other rollout.
func TestRolloutRefusals(t *testing.T) {
	db, r := rolloutFixture(t, t.TempDir())
	defer db.Close()
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
			_, err := db.CommitImport([]*deviceupdate.StoredUpdate{storedUpdate(cx600, "4.0.7577.4400", "cc")})
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

// TestRolloutEnds: completion leaves the rule exactly as a plain approve
// does; reset aborts the rollout and drops the pending version as a
// plain reset does.
func TestRolloutEnds(t *testing.T) {
	t.Run("complete", func(t *testing.T) {
		db, r := rolloutFixture(t, t.TempDir())
		defer db.Close()
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
		db, r := rolloutFixture(t, t.TempDir())
		defer db.Close()
		_, after, err := db.ChangeRule(r.RuleID, deviceupdate.RuleReset, nil)
		if err != nil || !after.PendingVersion.IsZero() || after.ApprovedVersion != r.Previous {
			t.Fatalf("reset = %+v, %v; want the previous version approved, nothing pending", after, err)
		}
		if got, _ := db.Rollout(r.RuleID); got.State != deviceupdate.RolloutAborted {
			t.Errorf("rollout after reset: %s; want aborted", got.State)
		}
	})
}

// TestRolloutSurvivesRestart: the rollout and what it knows of each device
// are the same after the store is closed and opened again.
func TestRolloutSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	db, r := rolloutFixture(t, dir)
	at := r.StartedAt.Add(time.Minute)
	var batch []deviceupdate.Device
	for i := range 40 {
		id := fmt.Sprintf("00-04-F2-00-00-%02X", i)
		offered := r.Previous
		if r.Member(id) {
			offered = r.Version
		}
		batch = append(batch, pollOf(id, r.Previous, offered, at))
	}
	if err := db.PutDevices(batch); err != nil {
		t.Fatal(err)
	}
	devices, err := db.RolloutDevices(r.ID)
	if err != nil || len(devices) == 0 {
		t.Fatalf("rollout devices = %d, %v; want the members offered", len(devices), err)
	}
	for _, d := range devices {
		if !r.Member(d.Device) || !d.OfferedAt.Equal(at) || d.Offers != 1 {
			t.Errorf("tracked %+v; want only members, offered once at %s", d, at)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpen(t, dir)
	got, err := db.Rollout(r.RuleID)
	if err != nil || !reflect.DeepEqual(*got, r) {
		t.Fatalf("rollout after restart %+v, %v; want %+v", got, err, r)
	}
	again, err := db.RolloutDevices(r.ID)
	if err != nil || !reflect.DeepEqual(again, devices) {
		t.Errorf("rollout devices after restart differ: %+v; want %+v", again, devices)
	}
}

// TestRolloutCrashDump: a crash dump uploaded after a device updated is
// noted in its rollout record (and fails it); one uploaded before is not,
// nor a log that is not a crash dump.
func TestRolloutCrashDump(t *testing.T) {
	db, r := rolloutFixture(t, t.TempDir())
	defer db.Close()
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
		{pollOf(updated, r.Previous, r.Version, t0), pollOf(pending, r.Previous, r.Version, t0)},
		{pollOf(updated, r.Version, deviceupdate.Version{}, t0.Add(time.Minute))},
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
