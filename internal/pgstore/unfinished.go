package pgstore

import (
	"errors"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

// The inventory and the rollouts of store.Store are being written on
// branch i18-pg-inv, at the same time as this branch. Until it merges,
// these stand in for them so that *DB is a store.Store (Audited hands its
// change a store.Store): every one refuses with errUnfinished, and the
// behaviour table skips their cases (behaviour_test.go, unfinished).
//
// When i18-pg-inv merges, the compiler reports each of these methods
// declared twice: delete this file, and empty the unfinished list in
// behaviour_test.go so that the whole table runs against PostgreSQL.

// errUnfinished is the answer of every method below.
var errUnfinished = errors.New("pgstore: the inventory and rollouts are not kept in PostgreSQL yet")

// LimitDevices does nothing yet.
func (db *DB) LimitDevices(max int, full func(refused int)) {}

// DeviceCount returns 0 yet.
func (db *DB) DeviceCount() int { return 0 }

// RefusedDevices returns 0 yet.
func (db *DB) RefusedDevices() uint64 { return 0 }

// PutDevices refuses, yet.
func (db *DB) PutDevices(batch []deviceupdate.Device) error { return errUnfinished }

// DevicesPage refuses, yet.
func (db *DB) DevicesPage(after string, limit int, match func(deviceupdate.Device) bool) ([]deviceupdate.Device, string, error) {
	return nil, "", errUnfinished
}

// Device refuses, yet.
func (db *DB) Device(id string) (deviceupdate.Device, error) {
	return deviceupdate.Device{}, errUnfinished
}

// Devices refuses, yet.
func (db *DB) Devices() ([]deviceupdate.Device, error) { return nil, errUnfinished }

// FleetCounts refuses, yet.
func (db *DB) FleetCounts() (int, []deviceupdate.ModelSummary, error) {
	return 0, nil, errUnfinished
}

// RemoveDevice refuses, yet.
func (db *DB) RemoveDevice(id string) (deviceupdate.RemovedDevice, error) {
	return deviceupdate.RemovedDevice{}, errUnfinished
}

// PruneDevices refuses, yet.
func (db *DB) PruneDevices(cutoff time.Time, dryRun bool) (*deviceupdate.PruneResult, error) {
	return nil, errUnfinished
}

// Rollout refuses, yet.
func (db *DB) Rollout(ruleID string) (*deviceupdate.Rollout, error) { return nil, errUnfinished }

// Rollouts refuses, yet.
func (db *DB) Rollouts() ([]deviceupdate.Rollout, error) { return nil, errUnfinished }

// StartRollout refuses, yet.
func (db *DB) StartRollout(ruleID string, o deviceupdate.RolloutOptions, id string, now time.Time) (deviceupdate.Rollout, error) {
	return deviceupdate.Rollout{}, errUnfinished
}

// ChangeRollout refuses, yet.
func (db *DB) ChangeRollout(ruleID string, change func(deviceupdate.Rollout) (deviceupdate.Rollout, error)) (before, after deviceupdate.Rollout, err error) {
	return before, after, errUnfinished
}

// RolloutDevices refuses, yet.
func (db *DB) RolloutDevices(rolloutID string) ([]deviceupdate.RolloutDevice, error) {
	return nil, errUnfinished
}
