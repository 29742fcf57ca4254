package deviceupdate

import (
	"context"
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
	// LogUploads counts the logs it uploaded; LastLogUpload is the last's time.
	LogUploads    int64     `json:"logUploads"`
	LastLogUpload time.Time `json:"lastLogUpload,omitzero"`
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

// DeviceFromPoll returns the inventory record of a poll.
func DeviceFromPoll(req PollRequest, remote string, at time.Time, offered Version) Device {
	return Device{ID: req.ID(), DeviceType: req.DeviceType, MAC: req.MAC, Serial: req.Serial, Brand: req.Brand, Model: req.Model,
		Revision: req.Revision, Locale: req.Locale, Modules: req.Modules, UserID: req.UserID, Trigger: req.Trigger,
		Remote: remote, LastSeen: at.UTC(), Offered: offered, Polls: 1}
}

// DeviceFromUpload returns the inventory delta of one log upload.
func DeviceFromUpload(l DeviceLog, u LogUpload, at time.Time) Device {
	d := Device{ID: l.Device, DeviceType: u.DeviceType, Serial: u.Serial, LogUploads: 1, LastLogUpload: at.UTC(), Remote: u.Remote}
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
