package deviceupdate

import (
	"context"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Device is a phone as the inventory last saw it.
type Device struct {
	ID         string    `json:"id"` // its MAC, else its serial number
	DeviceType string    `json:"deviceType"`
	MAC        string    `json:"macAddress,omitempty"`
	Serial     string    `json:"serialNumber,omitempty"`
	Brand      string    `json:"brand"`
	Model      string    `json:"model"`
	Revision   string    `json:"revision"`
	Locale     string    `json:"locale"`
	Modules    []Module  `json:"modules"`
	UserID     string    `json:"userId,omitempty"`
	Trigger    string    `json:"trigger,omitempty"`
	Remote     string    `json:"remote"`
	LastSeen   time.Time `json:"lastSeen"`
	Offered    Version   `json:"offered"` // what the last answer offered, zero for nothing
	Polls      int64     `json:"polls"`   // polls counted since it was first seen
	// PollInterval is the interval its last answer gave it, in seconds
	// (its site's setting, jittered): staged rollouts judge it by that.
	PollInterval int `json:"pollInterval,omitempty"`
	// LogUploads counts the logs it uploaded; LastLogUpload is the last's time.
	LogUploads    int64     `json:"logUploads"`
	LastLogUpload time.Time `json:"lastLogUpload,omitzero"`
	// LastCrashDump is when it last uploaded a crash dump (IsCrashDump),
	// which fails it in a staged rollout that updated it.
	LastCrashDump time.Time `json:"lastCrashDump,omitzero"`
	// History is its versions over time: the last MaxVersionHistory
	// changes the inventory saw, oldest first.
	History []VersionChange `json:"history,omitempty"`
}

// MaxVersionHistory bounds a device's History: enough for the device
// page to show the last updates and rollbacks, and little in the store.
const MaxVersionHistory = 16

// VersionChange is one change of a module's running version, as the
// inventory saw it.
type VersionChange struct {
	At         time.Time `json:"at"` // the poll that reported To
	UpdateType string    `json:"updateType"`
	From       Version   `json:"from"`
	To         Version   `json:"to"`
}

// RuleKey returns the key of the rule that covers d's module of
// updateType.
func (d Device) RuleKey(updateType string) RuleKey {
	return RuleKey{DeviceType: d.DeviceType, Brand: d.Brand, Model: d.Model, Revision: d.Revision, Locale: d.Locale, UpdateType: updateType}
}

// NoteVersions returns d, the record after a poll, with a History entry
// for each module whose version differs from what before (the record as
// it was) held, at d.LastSeen. The store calls it as it writes a batch,
// so a device that changed twice within one batch (a second's polls)
// shows the net change. The version a module was first seen with is no
// change: a device that never changed carries no History, so the records
// of most devices, written at every poll, stay as small as before.
func (d Device) NoteVersions(before Device) Device {
	var changes []VersionChange
	for _, m := range d.Modules {
		from, found := Version{}, false
		for _, o := range before.Modules {
			if strings.EqualFold(o.UpdateType, m.UpdateType) {
				from, found = o.Version, true
				break
			}
		}
		if found && from != m.Version {
			changes = append(changes, VersionChange{At: d.LastSeen, UpdateType: m.UpdateType, From: from, To: m.Version})
		}
	}
	if len(changes) == 0 {
		return d
	}
	h := append(append(make([]VersionChange, 0, len(d.History)+len(changes)), d.History...), changes...)
	d.History = h[max(0, len(h)-MaxVersionHistory):]
	return d
}

// LastActive returns when the device was last heard from: its last poll
// or its last log upload, whichever is later.
func (d Device) LastActive() time.Time {
	if d.LastLogUpload.After(d.LastSeen) {
		return d.LastLogUpload
	}
	return d.LastSeen
}

// Merge returns d updated by delta, a record of what happened since: a
// poll (delta.LastSeen set) replaces what the device reported, and the
// counts add up; an upload alone (LastSeen zero) only adds to the counts.
func (d Device) Merge(delta Device) Device {
	if d.ID == "" {
		return delta
	}
	out := d
	if !delta.LastSeen.IsZero() {
		out = delta
		out.History = d.History
		out.Polls += d.Polls
		out.LogUploads += d.LogUploads
	} else {
		out.LogUploads += delta.LogUploads
	}
	if d.LastLogUpload.After(delta.LastLogUpload) {
		out.LastLogUpload = d.LastLogUpload
	} else {
		out.LastLogUpload = delta.LastLogUpload
	}
	if d.LastCrashDump.After(delta.LastCrashDump) {
		out.LastCrashDump = d.LastCrashDump
	} else {
		out.LastCrashDump = delta.LastCrashDump
	}
	return out
}

// IsCrashDump reports whether an uploaded log is a crash dump: a Watson
// log in a .dmp or .kdmp file.
func IsCrashDump(u LogUpload) bool {
	ext := strings.ToLower(path.Ext(u.FileName))
	return strings.EqualFold(u.LogType, "Watson") && (ext == ".dmp" || ext == ".kdmp")
}

// DeviceFromPoll returns the inventory record of a poll.
func DeviceFromPoll(req PollRequest, remote string, at time.Time, offered Version) Device {
	return Device{ID: req.ID(), DeviceType: req.DeviceType, MAC: req.MAC, Serial: req.Serial, Brand: req.Brand, Model: req.Model,
		Revision: req.Revision, Locale: req.Locale, Modules: req.Modules, UserID: req.UserID, Trigger: req.Trigger,
		Remote: remote, LastSeen: at.UTC(), Offered: offered, Polls: 1}
}

// DeviceFromUpload returns the inventory delta of one log upload.
func DeviceFromUpload(l DeviceLog, u LogUpload, at time.Time) Device {
	d := Device{ID: l.Device, DeviceType: u.DeviceType, Serial: u.Serial, LogUploads: 1, LastLogUpload: at.UTC(), Remote: u.Remote}
	if IsCrashDump(u) {
		d.LastCrashDump = at.UTC()
	}
	if u.MAC != "" {
		d.MAC = l.Device
	}
	return d
}

// DeviceID normalises a device identifier: a MAC address written with
// '-' or ':' becomes the inventory's form (00-04-F2-AA-BB-CC); anything
// else is a serial number. Errors: EINVALID.
func DeviceID(id string) (string, error) {
	if strings.ContainsAny(id, "-:") {
		if mac, err := NormalizeMAC(id); err == nil {
			return mac, nil
		}
	}
	if ValidSerial(id) {
		return id, nil
	}
	return "", Errorf(EINVALID, "device %q: give its MAC address (00-04-F2-AA-BB-CC) or its serial number", truncateForMessage(id))
}

// ValidDeviceID reports whether id names a device as the inventory does:
// its normalised MAC address or its serial number.
func ValidDeviceID(id string) bool {
	n, err := DeviceID(id)
	return err == nil && n == id
}

// NormalizeMAC returns a MAC address as upper-case hex pairs joined by
// '-'. It accepts six to eight pairs, written together or separated
// throughout by '-' or ':'.
func NormalizeMAC(s string) (string, error) {
	if isNormalMAC(s) {
		return s, nil // the common case, as phones and the inventory write it: no allocation
	}
	bad := func(why string) (string, error) {
		return "", Errorf(EINVALID, "MAC address %q: %s; write six hex pairs such as 00-04-F2-AA-BB-CC or 00:04:f2:aa:bb:cc", truncateForMessage(s), why)
	}
	var pairs []string
	switch {
	case strings.Contains(s, "-") && strings.Contains(s, ":"):
		return bad("mixes '-' and ':'")
	case strings.Contains(s, "-"):
		pairs = strings.Split(s, "-")
	case strings.Contains(s, ":"):
		pairs = strings.Split(s, ":")
	default:
		if len(s)%2 != 0 {
			return bad("has an odd number of hex digits")
		}
		for i := 0; i < len(s); i += 2 {
			pairs = append(pairs, s[i:i+2])
		}
	}
	if len(pairs) < 6 || len(pairs) > 8 {
		return bad("needs six to eight pairs")
	}
	for i, p := range pairs {
		if len(p) != 2 || !isHex(p[0]) || !isHex(p[1]) {
			return bad("\"" + p + "\" is not two hex digits")
		}
		pairs[i] = strings.ToUpper(p)
	}
	return strings.Join(pairs, "-"), nil
}

// isNormalMAC reports whether s is already six upper-case hex pairs
// joined by '-'.
func isNormalMAC(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i%3 == 2 {
			if c != '-' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// ValidSerial reports whether s is a serial number: 1-64 letters, digits,
// '-' or '_'.
func ValidSerial(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// DeviceFilter selects devices; zero fields select everything.
type DeviceFilter struct {
	Model string // the model, such as CX600, in any case
	// Key selects the devices one rule governs, such as
	// UCPhone/Polycom/CX600/A/ENU/CPE (in any case): a bar of the
	// dashboard (FleetSummary's ModelSummary).
	Key RuleKey
	// Version selects the devices running it: in the module Key names,
	// else in any module.
	Version Version
	// NotVersion selects the devices running another version than it, in
	// the module Key names (else in any module): with Key and the rule's
	// approved version, the devices not on their approved version
	// (CUCM's "not on the default load").
	NotVersion Version
	Site       string    // polling from the site's subnets (SiteMap)
	Since      time.Time // last seen at or after it
	Before     time.Time // last seen before it (not seen since)
	// Search selects the devices whose MAC address, serial number or
	// user ID holds it, in any case ("aa:bb" finds 00-04-F2-AA-BB-CC).
	Search string
	Page   // the devices after the cursor, by ID
}

// MaxDeviceSearch bounds a device search's text.
const MaxDeviceSearch = 128

// Validate checks what a caller may send. Errors: EINVALID.
func (f DeviceFilter) Validate() error {
	if len(f.Search) > MaxDeviceSearch {
		return Errorf(EINVALID, "search: want at most %d characters", MaxDeviceSearch)
	}
	if f.Key != (RuleKey{}) {
		if err := f.Key.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Match reports whether d passes the filter, placing it in no site.
func (f DeviceFilter) Match(d Device) bool { return f.Matcher(nil)(d) }

// Matcher returns the filter's test, which places devices in sites with
// sites (nil: no device is in a site). Its work per device allocates
// nothing, so a scan of a large inventory stays cheap.
func (f DeviceFilter) Matcher(sites *SiteMap) func(Device) bool {
	search := strings.ToLower(f.Search)
	macSearch := strings.ReplaceAll(search, ":", "-")
	keyed := f.Key != (RuleKey{})
	inSite := sites.inSite(f.Site)
	return func(d Device) bool {
		switch {
		case f.Model != "" && !strings.EqualFold(f.Model, d.Model),
			!f.Since.IsZero() && d.LastSeen.Before(f.Since),
			!f.Before.IsZero() && !d.LastSeen.Before(f.Before),
			keyed && !(strings.EqualFold(f.Key.DeviceType, d.DeviceType) && strings.EqualFold(f.Key.Brand, d.Brand) &&
				strings.EqualFold(f.Key.Model, d.Model) && strings.EqualFold(f.Key.Revision, d.Revision) && strings.EqualFold(f.Key.Locale, d.Locale)),
			search != "" && !containsFold(d.MAC, macSearch) && !containsFold(d.Serial, search) && !containsFold(d.UserID, search),
			f.Site != "" && !inSite(d.Remote):
			return false
		}
		if !keyed && f.Version.IsZero() && f.NotVersion.IsZero() {
			return true
		}
		for _, m := range d.Modules {
			if (!keyed || strings.EqualFold(m.UpdateType, f.Key.UpdateType)) &&
				(f.Version.IsZero() || m.Version == f.Version) && (f.NotVersion.IsZero() || m.Version != f.NotVersion) {
				return true
			}
		}
		return false
	}
}

// containsFold reports whether s holds lower, which is in lower case,
// ignoring the case of ASCII letters in s; it allocates nothing.
func containsFold(s, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		j := 0
		for ; j < len(lower); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				break
			}
		}
		if j == len(lower) {
			return true
		}
	}
	return false
}

// DeviceList is one page of the inventory, ordered by device ID.
type DeviceList struct {
	Devices []Device `json:"devices"`
	Next    string   `json:"next,omitempty"` // the cursor of the next page; "" at the end
}

// maxAgeDays bounds an age in days, far below what a time.Duration holds.
const maxAgeDays = 100 * 366

// ParseAge reads a positive age: a Go duration such as 720h or 90m, or a
// whole number of days such as 30d. Errors: EINVALID.
func ParseAge(s string) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, Errorf(EINVALID, "age %q: want a duration such as 720h, 90m or 30d", truncateForMessage(s))
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > maxAgeDays {
			return bad()
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return bad()
		}
	}
	if d <= 0 {
		return 0, Errorf(EINVALID, "age %q: want more than nothing, such as 30d", truncateForMessage(s))
	}
	return d, nil
}

// RemovedDevice is what `device remove` forgot: the device's inventory
// record (nil when it had only settings) and its own settings.
type RemovedDevice struct {
	Device   *Device           `json:"device,omitempty"`
	Settings map[string]string `json:"settings,omitempty"`
}

// MaxPruneListed bounds the device IDs a prune lists; Count has them all.
const MaxPruneListed = 1000

// PruneResult reports the devices a prune forgot, or with DryRun would
// forget: those last active before NotSeenSince.
type PruneResult struct {
	NotSeenSince time.Time `json:"notSeenSince"`
	DryRun       bool      `json:"dryRun,omitempty"`
	Count        int       `json:"count"`
	// Devices names the first MaxPruneListed of them, by ID.
	Devices []string `json:"devices"`
	// Settings counts the devices whose own settings went with them.
	Settings int `json:"settings,omitempty"`
}

// DeviceService lists the inventory and forgets devices; every removal
// is audited.
type DeviceService interface {
	// Devices returns the devices that match f, ordered by ID, and the
	// cursor of the next page when more follow. Errors: EINVALID.
	Devices(ctx context.Context, f DeviceFilter) (*DeviceList, error)
	// Device returns one device (named as RemoveDevice names it), with
	// its History. Errors: EINVALID, ENOTFOUND.
	Device(ctx context.Context, id string) (Device, error)
	// Summary returns the fleet at a glance, for the dashboard, from
	// counts kept up to date as polls are recorded (about a second
	// behind them), not from a scan of the inventory.
	Summary(ctx context.Context) (FleetSummary, error)
	// RemoveDevice forgets one device (named by its MAC address, in any
	// form, or its serial number): its inventory record and its own
	// settings. A poll from it afterwards records it anew. Errors:
	// EINVALID, ENOTFOUND (neither a record nor settings).
	RemoveDevice(ctx context.Context, id, actor string) (RemovedDevice, error)
	// PruneDevices forgets every device not heard from (LastActive) for
	// notSeen, an age ParseAge reads, and their own settings; with dryRun
	// it only reports what it would forget. Errors: EINVALID.
	PruneDevices(ctx context.Context, notSeen string, dryRun bool, actor string) (*PruneResult, error)
}

// FleetSummary is the fleet at a glance, the console's dashboard: for
// each rule key, the devices by the version they run.
//
// A "model" here is a rule key without its version
// (DeviceType/Brand/Model/Revision/Locale/UpdateType), not a model name
// alone: the key is what has an approved and a pending version, so only
// per key can a bar mark the approved version and count the devices not
// on it (CUCM's "not on the default load"). Where a fleet runs one
// revision and locale of a model, as most do, that is one bar per model;
// a model in two locales gets two bars, each with its own approved
// version. A device counts once in the key of each module it reports.
type FleetSummary struct {
	Devices int `json:"devices"` // in the inventory
	// NotOnApproved sums the models' NotOnApproved.
	NotOnApproved int `json:"notOnApproved"`
	// Versions counts devices' modules by the version they run, over
	// every model, newest first.
	Versions []VersionCount `json:"versions"`
	// PollsLastMinute counts the polls answered in the last minute.
	PollsLastMinute int            `json:"pollsLastMinute"`
	Models          []ModelSummary `json:"models"` // by key, in any case
}

// ModelSummary is one rule key's devices: how many run each version, and
// what its rule approves and holds pending. A rule with no device yet is
// listed with none; a key no rule governs has no RuleID.
type ModelSummary struct {
	RuleKey
	RuleID          string         `json:"ruleId,omitempty"`
	ApprovedVersion Version        `json:"approvedVersion"`
	PendingVersion  Version        `json:"pendingVersion"`
	Devices         int            `json:"devices"`
	Versions        []VersionCount `json:"versions"` // newest first
	// NotOnApproved counts the devices running another version than the
	// approved one: those the next polls will update (or roll back). It
	// is 0 while nothing is approved.
	NotOnApproved int `json:"notOnApproved"`
}

// VersionCount is how many devices run a version.
type VersionCount struct {
	Version Version `json:"version"`
	Devices int     `json:"devices"`
}

// SummarizeFleet completes the counts per key (Devices and Versions set,
// one entry per key in any case) with the rules' versions, adds the rules
// no device reports yet, and sums the fleet; devices is the inventory's
// size.
func SummarizeFleet(devices int, models []ModelSummary, rules []Rule) FleetSummary {
	byKey := make(map[string]int, len(models)+len(rules))
	out := FleetSummary{Devices: devices, Versions: []VersionCount{}, Models: make([]ModelSummary, 0, len(models)+len(rules))}
	for _, m := range models {
		byKey[strings.ToLower(m.RuleKey.String())] = len(out.Models)
		out.Models = append(out.Models, m)
	}
	for _, r := range rules {
		i, ok := byKey[strings.ToLower(r.RuleKey.String())]
		if !ok {
			i = len(out.Models)
			out.Models = append(out.Models, ModelSummary{RuleKey: r.RuleKey, Versions: []VersionCount{}})
		}
		m := &out.Models[i]
		m.RuleID, m.ApprovedVersion, m.PendingVersion = r.ID, r.ApprovedVersion, r.PendingVersion
	}
	all := map[Version]int{}
	for i := range out.Models {
		m := &out.Models[i]
		sort.Slice(m.Versions, func(a, b int) bool { return m.Versions[a].Version.Compare(m.Versions[b].Version) > 0 })
		m.Devices, m.NotOnApproved = 0, 0
		for _, v := range m.Versions {
			m.Devices += v.Devices
			all[v.Version] += v.Devices
			if !m.ApprovedVersion.IsZero() && v.Version != m.ApprovedVersion {
				m.NotOnApproved += v.Devices
			}
		}
		out.NotOnApproved += m.NotOnApproved
	}
	for v, n := range all {
		out.Versions = append(out.Versions, VersionCount{v, n})
	}
	sort.Slice(out.Versions, func(a, b int) bool { return out.Versions[a].Version.Compare(out.Versions[b].Version) > 0 })
	sort.Slice(out.Models, func(a, b int) bool {
		return strings.ToLower(out.Models[a].RuleKey.String()) < strings.ToLower(out.Models[b].RuleKey.String())
	})
	return out
}
