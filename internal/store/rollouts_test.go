package store_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
)

// TestRolloutSurvivesRestart: the rollout and what it knows of each device
// are the same after the store is closed and opened again.
func TestRolloutSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	first, err := store.Open(dir, store.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	db, r := storetest.RolloutFixture(t, first)
	if err := db.PutDevices(storetest.RolloutPolls(r, 40, r.StartedAt.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	devices, err := db.RolloutDevices(r.ID)
	if err != nil || len(devices) == 0 {
		t.Fatalf("rollout devices = %d, %v; want the members offered", len(devices), err)
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
