package store

import (
	"context"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// Store is the service's state as every consumer (the admin services, the
// poll answer, the inventory, the importer, serve) uses it, whatever keeps
// it: the embedded bbolt file (*DB) or a pool's PostgreSQL database. Its
// methods speak in domain types and the types of this package, audit and
// updatestore only, so that a backend is a matter of wiring.
//
// Every backend keeps the same contract, which storetest.Run checks:
//   - Errors are deviceupdate.Error values with the codes and messages
//     each method names (ENOTFOUND, ECONFLICT, EINVALID, EUNAUTHORIZED);
//     a failure of the backend itself is any other error.
//   - A method that changes state does so in one transaction: all of it,
//     or nothing. Checks that guard a write (a name taken, a subnet held,
//     a rule "changed since it was read") run in that same transaction, so
//     of two writers acting at once one wins and the other is refused.
//   - Reads see every committed write; lists come back in the order each
//     method names, never in the backend's own.
//   - An admin change goes through Audited, which commits it with its
//     audit entry or not at all.
//
// Safe for concurrent use. What only the bbolt file has (Path, Check,
// Snapshot for backups, BuildDeviceIndex, SetTrail, AuditHead) stays off
// the interface: only bbolt-specific code (serve's wiring, backup,
// restore, doctor) calls it, on a *DB.
type Store interface {
	// Close releases the store. The audit trail given to it is the
	// caller's to close.
	Close() error
	// Ping checks that the store answers a read; health checks use it.
	Ping() error
	// SchemaVersion returns the version of the schema the store holds.
	SchemaVersion() (int, error)
	// Generation changes whenever something that can alter a poll's
	// answer changes (rules, updates, test devices, configuration, sites,
	// device settings, rollouts; not inventory writes), on any front end
	// of the store, so that a reader may cache what it derives from them
	// and read again when it moves. It never goes back.
	Generation() uint64

	// Audited makes one admin change, audited: the only way one is made.
	// apply runs on a Store bound to one transaction (the same methods,
	// reading and writing in it) and may fill in the entry (its Before,
	// After, a canonical Target). When apply succeeds, the entry (Result
	// defaulting to ok) is appended to the trail, its sequence number and
	// hash following the trail's last entry in one order across every
	// writer, in the same commit as the change: the change takes effect
	// only with its entry durably written, and an entry whose change did
	// not commit is marked audit.abandoned. When apply fails, nothing of it
	// changes and the refusal is audited with its reason (Result the
	// error's safe message, no Before or After); Audited returns apply's
	// error. A nil apply records e alone: the intent written before a
	// change the store does not hold (files deleted after it). A change
	// not made for a fault of the server wraps ErrNotMade and is a
	// deviceupdate.Error (EUNAVAILABLE when the disk is full, else
	// EINTERNAL). An Audited inside apply is refused.
	Audited(e audit.Entry, apply func(tx Store, e *audit.Entry) error) error
	// AuditEntries reads the whole trail in its order and calls fn with
	// each entry it can read and whether the hash chain verifies up to it.
	// It returns where the chain breaks (nil when intact), entries past
	// the break still given, unverified. Only a trail that cannot be read
	// at all is an error.
	AuditEntries(fn func(e audit.Entry, verified bool)) (*audit.BrokenError, error)
	// AuditBroken returns where the chain broke when it was last read
	// (AnchorAudit or AuditEntries), nil when it was intact.
	AuditBroken() *audit.BrokenError
	// AuditLocation names the trail in messages: its file, or its table.
	AuditLocation() string
	// AnchorAudit checks the trail against the head the store keeps, once
	// at start, and from then on AuditEntries checks against it too. It
	// reports the head it found (Recorded false when the store keeps none
	// yet) and the entries written whose change the store did not commit
	// (Unapplied), for the caller to mark. A backend that appends entries
	// in the transaction of their change has none of those.
	AnchorAudit() (*audit.Anchoring, error)
	// InitAuditHead records an empty head in a store that keeps none, for
	// a trail that has no entry yet; nothing when it keeps one.
	InitAuditHead() error

	// Rules returns every rule, ordered by key.
	Rules() ([]deviceupdate.Rule, error)
	// FindRule returns the rule with the given ID; ENOTFOUND when there is
	// none.
	FindRule(id string) (*deviceupdate.Rule, error)
	// ChangeRule performs a lifecycle action on a rule and returns it
	// before and after (after nil for a removal). When expect is not nil,
	// the rule must still have the versions the caller read, else
	// ECONFLICT: of two admins acting on what they both saw, one wins.
	// Errors: ENOTFOUND, ECONFLICT, and the action's own
	// (deviceupdate.Rule.Apply).
	ChangeRule(id string, action deviceupdate.RuleAction, expect *deviceupdate.Rule) (before deviceupdate.Rule, after *deviceupdate.Rule, err error)

	// The update records and the notes of update folders being changed
	// (FindUpdate, Updates, BeginImport, InProgressChanges,
	// EndInProgress), documented there.
	updatestore.Records
	// CheckImport reports, writing nothing, the status each update would
	// have if imported now: ImportAdded, ImportRestaged or
	// ImportUnchanged. A stored update of the same rule and version with
	// other content is ECONFLICT.
	CheckImport(updates []*deviceupdate.StoredUpdate) ([]string, error)
	// CommitImport records new updates and makes each new or re-staged one
	// its rule's pending version (creating the rule), ending the notes
	// BeginImport wrote, all in one transaction: a failure leaves nothing
	// of the import visible. Same content again keeps its record; other
	// content of a stored rule and version fails it all with ECONFLICT.
	CommitImport(updates []*deviceupdate.StoredUpdate) ([]deviceupdate.ImportedUpdate, error)
	// DeleteUnreferenced deletes every stored update no rule names
	// (approved, pending or restore version) and returns them, noting
	// their folders' removal in progress (updatestore.OpClear) in the same
	// transaction, for the caller to end with EndInProgress.
	DeleteUnreferenced() ([]deviceupdate.StoredUpdate, error)

	// TestDevices returns every test device, ordered by name (any case).
	TestDevices() ([]deviceupdate.TestDevice, error)
	// AddTestDevice stores a normalised test device and returns it as
	// stored, its site spelled as created. A name or identifier in use is
	// ECONFLICT, a site that does not exist ENOTFOUND.
	AddTestDevice(d deviceupdate.TestDevice) (deviceupdate.TestDevice, error)
	// RemoveTestDevice deletes a test device by name (any case) and
	// returns it; ENOTFOUND when there is none.
	RemoveTestDevice(name string) (deviceupdate.TestDevice, error)

	// ConfigOverrides returns the settings stored at the global scope and
	// at scope (the same map twice for the global scope).
	ConfigOverrides(scope string) (global, site map[string]string, err error)
	// ScopeConfig returns the overrides in force at scope; a site that
	// does not exist is ENOTFOUND.
	ScopeConfig(scope string) (ScopeConfig, error)
	// SetConfig applies checked settings at scope (an empty value removes
	// an override) and returns the scope's overrides before and those in
	// force after. A site that does not exist is ENOTFOUND.
	SetConfig(scope string, settings map[string]string) (before map[string]string, after ScopeConfig, err error)

	// Sites returns every site, ordered by name (any case).
	Sites() ([]deviceupdate.Site, error)
	// PutSite stores a normalised site, replacing the one of the same name
	// (any case), and returns the one replaced (nil for a new site). A
	// subnet another site holds is ECONFLICT.
	PutSite(s deviceupdate.Site) (*deviceupdate.Site, error)
	// RemoveSite deletes a site and its overrides and returns both;
	// ENOTFOUND when there is none, ECONFLICT (naming them) while test
	// devices are limited to it.
	RemoveSite(name string) (deviceupdate.Site, map[string]string, error)

	// DeviceConfigs returns every device's setting overrides by device ID.
	DeviceConfigs() (map[string]map[string]string, error)
	// DeviceConfig returns one device's overrides (empty when none).
	DeviceConfig(id string) (map[string]string, error)
	// SetDeviceConfig applies checked overrides to one device (an empty
	// value removes one) and returns them before and after.
	SetDeviceConfig(id string, settings map[string]string) (before, after map[string]string, err error)

	// Users returns every user, ordered by name, without password hashes.
	Users() ([]deviceupdate.User, error)
	// CheckUserFree returns ECONFLICT when a user of that name (any case)
	// exists: a check before the costly hash; AddUser checks again.
	CheckUserFree(name string) error
	// AddUser stores a validated user with its password hashed by
	// HashPassword; a name taken (any case) is ECONFLICT.
	AddUser(u deviceupdate.User, hash PasswordHash) error
	// RemoveUser deletes a user by name (any case) and returns it;
	// ENOTFOUND when there is none. Its credentials stop working before
	// it returns, on every front end within a second.
	RemoveUser(name string) (deviceupdate.User, error)
	// Authenticate checks a user's name (any case) and password. Every
	// failure is the same EUNAUTHORIZED after the same bcrypt cost.
	Authenticate(ctx context.Context, name, password string) (deviceupdate.User, error)
	// Remembered returns the user whose credentials Authenticate verified
	// recently, with no user added or removed since, without bcrypt.
	Remembered(name, password string) (deviceupdate.User, bool)

	// Admins returns every admin, ordered by name, without hashes.
	Admins() ([]deviceupdate.Admin, error)
	// FindAdmin returns an admin by name (any case); ENOTFOUND when none.
	FindAdmin(name string) (deviceupdate.Admin, error)
	// CheckAdminFree returns ECONFLICT when the name (any case) is an
	// admin's or the bootstrap admin's; AddAdmin checks again.
	CheckAdminFree(name string) error
	// AddAdmin stores a validated admin with its password hashed by
	// HashPassword ("" for none); a name taken is ECONFLICT.
	AddAdmin(a deviceupdate.Admin, hash PasswordHash) error
	// RemoveAdmin deletes an admin (any case) with their tokens and
	// sessions, whose credentials stop working when it commits;
	// ENOTFOUND when there is none.
	RemoveAdmin(name string) (RemovedAdmin, error)
	// CheckAdminPassword checks an admin's name and password; every
	// failure is the same EUNAUTHORIZED after the same bcrypt check.
	CheckAdminPassword(ctx context.Context, name, password string) (deviceupdate.Admin, error)
	// AddAdminToken stores a token of an existing admin under its
	// secret's hash, deleting their expired ones first; past limit live
	// ones it is ECONFLICT, an unknown admin ENOTFOUND.
	AddAdminToken(t deviceupdate.AdminToken, hash SecretHash, now time.Time, limit int) (expired int, err error)
	// AdminTokens returns an admin's tokens, expired ones too, oldest
	// first; ENOTFOUND when the admin does not exist.
	AdminTokens(name string) ([]deviceupdate.AdminToken, error)
	// RevokeAdminToken deletes an admin's token by ID and returns it;
	// ENOTFOUND when there is none.
	RevokeAdminToken(name, id string) (deviceupdate.AdminToken, error)
	// TokenAdmin returns the admin, with their current role, whose live
	// token has hash; every refusal is the same EUNAUTHORIZED.
	TokenAdmin(hash SecretHash, now time.Time) (deviceupdate.Admin, deviceupdate.AdminToken, error)
	// AddSession stores a session of an existing admin, ending expired
	// sessions and, past limit, the admin's oldest; it returns how many
	// ended. ENOTFOUND when the admin no longer exists.
	AddSession(s NewSession, now time.Time, limit int) (ended int, err error)
	// Session returns the live session of hash, marking it seen when it
	// was last marked touchEvery ago or more; one expired, or whose admin
	// was removed or changed role, is deleted and EUNAUTHORIZED.
	Session(hash SecretHash, now time.Time, touchEvery time.Duration) (deviceupdate.Session, error)
	// EndSession deletes the session of hash and returns its admin's
	// name ("" when there was none).
	EndSession(hash SecretHash) (admin string, err error)

	// LimitDevices caps the inventory at max devices (0: no cap): past it
	// PutDevices records no new device and calls full (when not nil) with
	// how many a batch left out. Recorded devices keep updating.
	LimitDevices(max int, full func(refused int))
	// DeviceCount returns how many devices the inventory holds.
	DeviceCount() int
	// RefusedDevices returns how many new devices the cap left out since
	// the store was opened.
	RefusedDevices() uint64
	// PutDevices upserts a batch of inventory records in one transaction,
	// merging each into the stored one (deviceupdate.Device.Merge), and
	// records what staged rollouts learn from them.
	PutDevices(batch []deviceupdate.Device) error
	// DevicesPage returns, in ID order, up to limit (0: no limit) devices
	// whose ID sorts after after ("" first) and that match (nil: all), and
	// the ID to continue after ("" when no matching device follows).
	DevicesPage(after string, limit int, match func(deviceupdate.Device) bool) ([]deviceupdate.Device, string, error)
	// Device returns one device's record; ENOTFOUND when there is none.
	Device(id string) (deviceupdate.Device, error)
	// Devices returns the whole inventory, ordered by ID.
	Devices() ([]deviceupdate.Device, error)
	// FleetCounts returns how many devices the inventory holds and, per
	// rule key (any case), how many run each version.
	FleetCounts() (int, []deviceupdate.ModelSummary, error)
	// RemoveDevice deletes a device's record and its own settings and
	// returns them; ENOTFOUND when there is neither.
	RemoveDevice(id string) (deviceupdate.RemovedDevice, error)
	// PruneDevices deletes every device last active before cutoff, with
	// its own settings (nothing with dryRun); the result lists the first
	// deviceupdate.MaxPruneListed IDs.
	PruneDevices(cutoff time.Time, dryRun bool) (*deviceupdate.PruneResult, error)

	// Rollout returns the rule's latest rollout; ENOTFOUND when none.
	Rollout(ruleID string) (*deviceupdate.Rollout, error)
	// Rollouts returns every rule's latest rollout, ordered by rule ID.
	Rollouts() ([]deviceupdate.Rollout, error)
	// StartRollout starts a staged approval of the rule's pending version
	// with id. Errors: ENOTFOUND, EINVALID (options), ECONFLICT (nothing
	// pending, or a rollout of the rule running or paused).
	StartRollout(ruleID string, o deviceupdate.RolloutOptions, id string, now time.Time) (deviceupdate.Rollout, error)
	// ChangeRollout changes the rule's rollout: change gets it as stored
	// and returns it changed, or an error to refuse. Completing approves
	// the rule, aborting drops its pending version, in the same
	// transaction. Errors: ENOTFOUND, and change's.
	ChangeRollout(ruleID string, change func(deviceupdate.Rollout) (deviceupdate.Rollout, error)) (before, after deviceupdate.Rollout, err error)
	// RolloutDevices returns what the rollout knows of the devices it
	// offered its version to, in device ID order.
	RolloutDevices(rolloutID string) ([]deviceupdate.RolloutDevice, error)
}

var _ Store = (*DB)(nil)

// SharedOffers is what the front ends of a pool share of staged rollouts'
// new offers, so that the offer decision is the pool's: a device offered a
// rollout's version by one node keeps it when it polls another (whose own
// memory of offers lacks it), and --max-per-hour caps the pool's new
// offers, not each node's. Only a pool's store has it: a single server
// remembers every offer it made (internal/poll's tracker), which is
// cheaper and as exact.
type SharedOffers interface {
	// OfferRollout records a new offer of the rollout's version to device
	// at at, in the cap's period (numbered by the caller, the same on
	// every node) against max (0: no cap). It reports false, recording
	// nothing, when the pool's new offers of period reached max; true
	// when it recorded the offer or the device had one already, which
	// does not count again.
	OfferRollout(rolloutID, device string, at time.Time, period int64, max int) (bool, error)
	// RolloutOffered reports whether any node offered the rollout's
	// version to device (OfferRollout returned true for it).
	RolloutOffered(rolloutID, device string) (bool, error)
}
