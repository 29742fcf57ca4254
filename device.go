package deviceupdate

import (
	"strconv"
	"strings"
	"time"
)

// LastActive returns when the device was last heard from: its last poll
// or its last log upload, whichever is later.
func (d Device) LastActive() time.Time {
	if d.LastLogUpload.After(d.LastSeen) {
		return d.LastLogUpload
	}
	return d.LastSeen
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
