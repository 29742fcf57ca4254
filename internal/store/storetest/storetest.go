// Package storetest is the behaviour every store.Store backend keeps: the
// embedded bbolt store and a pool's PostgreSQL one run the same table, so
// that a consumer cannot tell them apart. Each case opens a fresh, empty
// store and uses it through the interface alone; what only one backend
// has (reopening a file, its page checks) is tested beside it.
package storetest

import (
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/store"
)

// Opener returns a new, empty store whose audit trail is set and empty,
// closed (with its trail) when the test ends.
type Opener func(t *testing.T) store.Store

// cases is the table Run runs, each on stores of its own.
var cases = []struct {
	name string
	run  func(t *testing.T, open Opener)
}{
	{"ChangeRule", testChangeRule},
	{"ChangeRuleRace", testChangeRuleRace},
	{"CommitImport", testCommitImport},
	{"CommitImportConflictChangesNothing", testCommitImportConflictChangesNothing},
	{"CommitImportRestages", testCommitImportRestages},
	{"ImportInProgress", testImportInProgress},
	{"DeleteUnreferenced", testDeleteUnreferenced},
	{"TestDevices", testTestDevices},
	{"Config", testConfig},
	{"Sites", testSites},
	{"DeviceConfig", testDeviceConfig},
	{"UnknownSitesRefused", testUnknownSitesRefused},
	{"Users", testUsers},
	{"Authenticate", testAuthenticate},
	{"AuthenticateConcurrent", testAuthenticateConcurrent},
	{"AuthenticateCancelled", testAuthenticateCancelled},
	{"Remembered", testRemembered},
	{"Admins", testAdmins},
	{"AdminTokens", testAdminTokens},
	{"Sessions", testSessions},
	{"RemoveAdminEndsCredentials", testRemoveAdminEndsCredentials},
	{"PutDevices", testPutDevices},
	{"RemoveAndPruneDevices", testRemoveAndPruneDevices},
	{"DeviceCap", testDeviceCap},
	{"DevicesPage", testDevicesPage},
	{"RolloutRefusals", testRolloutRefusals},
	{"RolloutEnds", testRolloutEnds},
	{"RolloutDevices", testRolloutDevices},
	{"RolloutCrashDump", testRolloutCrashDump},
	{"AuditedChangeAndEntry", testAuditedChangeAndEntry},
	{"AuditedRefusal", testAuditedRefusal},
	{"AuditedConcurrent", testAuditedConcurrent},
	{"AuditAnchor", testAuditAnchor},
}

// Run runs the behaviour table against the backend open opens.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}
