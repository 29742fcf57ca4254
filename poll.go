package deviceupdate

import (
	"context"
	"strings"
	"time"
)

// Module is one updatable component a phone reports in a poll: its update
// type (CPE when the phone names none), file, running version and time.
type Module struct {
	UpdateType string  `json:"updateType"`
	Filename   string  `json:"filename"`
	Version    Version `json:"version"`
	Timestamp  string  `json:"timestamp,omitempty"`
}

// DefaultUpdateType is the update type of a module that names none.
const DefaultUpdateType = "CPE"

// PollRequest is what a phone sends when it asks for updates (SPEC §5).
type PollRequest struct {
	DeviceType string   `json:"deviceType"`
	MAC        string   `json:"macAddress,omitempty"` // normalised, as test devices store it
	Serial     string   `json:"serialNumber,omitempty"`
	Brand      string   `json:"brand"`
	Model      string   `json:"model"`
	Revision   string   `json:"revision"`
	Locale     string   `json:"locale"`
	UserID     string   `json:"userId,omitempty"`
	Trigger    string   `json:"trigger,omitempty"` // boot, signin or periodic
	Modules    []Module `json:"modules"`
}

// RuleKey returns the key of the rule that governs one of the phone's
// modules.
func (p PollRequest) RuleKey(m Module) RuleKey {
	return RuleKey{DeviceType: p.DeviceType, Brand: p.Brand, Model: p.Model, Revision: p.Revision, Locale: p.Locale, UpdateType: m.UpdateType}
}

// Matches reports whether a test device is this phone: the same MAC or
// the same serial number, and a scope that covers the phone's site
// ("" when the phone's site is unknown, which only global covers).
func (d TestDevice) Matches(mac, serial, site string) bool {
	same := d.MAC != "" && d.MAC == mac || d.Serial != "" && strings.EqualFold(d.Serial, serial)
	if !same {
		return false
	}
	return d.Scope == ScopeGlobal || site != "" && strings.EqualFold(d.Scope, "site:"+site)
}

// Decide is the offer decision for one module (SPEC §5): a test device
// gets the rule's pending version when there is one, every other device
// the approved version; the answer offers that version when it differs
// from the running one, older too (a restore). No rule, no version to
// offer, or the same version: nothing is offered.
func Decide(rule *Rule, running Version, testDevice bool) (target Version, offer bool) {
	if rule == nil {
		return Version{}, false
	}
	target = rule.ApprovedVersion
	if testDevice && !rule.PendingVersion.IsZero() {
		target = rule.PendingVersion
	}
	if target.IsZero() || target == running {
		return target, false
	}
	return target, true
}

// PollAnswer is the service's answer to a poll: what to offer, if
// anything, and how the phone should behave until its next poll.
type PollAnswer struct {
	Offer        bool
	Update       *StoredUpdate // the offered update, when Offer
	PollInterval int           // seconds
	PeerSharing  bool
	// InternalHost and ExternalHost are the host[:port] of the download
	// URLs (settings InternalHostName and ExternalHostName for the phone's
	// site); empty means the host the phone asked.
	InternalHost, ExternalHost string
	Site                       string // the phone's site, "" when no subnet holds it
}

// PollService answers phones.
type PollService interface {
	// Poll answers a phone and records the poll in the inventory and the
	// request log; remote is the phone's address.
	Poll(ctx context.Context, req PollRequest, remote string) (*PollAnswer, error)
	// UpdateFile returns the stored update that holds the file at path
	// DeviceType/Brand/Model/Revision/Locale/Version/UpdateType/Name, and
	// the file; ENOTFOUND for any other path.
	UpdateFile(ctx context.Context, path string) (*StoredUpdate, *UpdateFile, error)
	// Chunks returns the chunk list of a stored update's file, computed
	// once per file content.
	Chunks(ctx context.Context, u *StoredUpdate, f *UpdateFile) (*ChunkList, error)
}

// JitteredInterval spreads a phone's periodic polls: base seconds, moved
// by up to a tenth either way by a value derived from the phone's
// identifier, so a phone's interval is stable and a fleet's is spread.
func JitteredInterval(base int, identifier string) int {
	if base < 10 {
		return base
	}
	var h uint32 = 2166136261 // FNV-1a
	for i := 0; i < len(identifier); i++ {
		h ^= uint32(identifier[i])
		h *= 16777619
	}
	span := base / 5
	return base - base/10 + int(h%uint32(span+1))
}

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
	// LogUploads counts the logs it uploaded; LastLogUpload is the last's time.
	LogUploads    int64     `json:"logUploads"`
	LastLogUpload time.Time `json:"lastLogUpload,omitzero"`
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
	return out
}

// DeviceFromUpload returns the inventory delta of one log upload.
func DeviceFromUpload(l DeviceLog, u LogUpload, at time.Time) Device {
	d := Device{ID: l.Device, DeviceType: u.DeviceType, Serial: u.Serial, LogUploads: 1, LastLogUpload: at.UTC(), Remote: u.Remote}
	if u.MAC != "" {
		d.MAC = l.Device
	}
	return d
}

// DeviceFromPoll returns the inventory record of a poll.
func DeviceFromPoll(req PollRequest, remote string, at time.Time, offered Version) Device {
	id := req.MAC
	if id == "" {
		id = req.Serial
	}
	return Device{ID: id, DeviceType: req.DeviceType, MAC: req.MAC, Serial: req.Serial, Brand: req.Brand, Model: req.Model,
		Revision: req.Revision, Locale: req.Locale, Modules: req.Modules, UserID: req.UserID, Trigger: req.Trigger,
		Remote: remote, LastSeen: at.UTC(), Offered: offered, Polls: 1}
}

// DeviceFilter selects devices; zero fields select everything.
type DeviceFilter struct {
	Model   string
	Version Version // running this version in any module
	Since   time.Time
	Page    // the devices after the cursor, by ID
}

// Match reports whether d passes the filter.
func (f DeviceFilter) Match(d Device) bool {
	if f.Model != "" && !strings.EqualFold(f.Model, d.Model) || !f.Since.IsZero() && d.LastSeen.Before(f.Since) {
		return false
	}
	if !f.Version.IsZero() {
		for _, m := range d.Modules {
			if m.Version == f.Version {
				return true
			}
		}
		return false
	}
	return true
}

// DeviceService lists the inventory and forgets devices; every removal
// is audited.
type DeviceService interface {
	// Devices returns the devices that match f, ordered by ID, and the
	// cursor of the next page when more follow.
	Devices(ctx context.Context, f DeviceFilter) (*DeviceList, error)
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
