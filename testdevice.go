package deviceupdate

import (
	"context"
	"strings"
)

// TestDevice is a device that gets pending versions before everyone else
// (Lync's test devices), named by its MAC address or its serial number.
type TestDevice struct {
	Name   string `json:"name"`
	MAC    string `json:"macAddress,omitempty"`   // normalised: 00-04-F2-AA-BB-CC
	Serial string `json:"serialNumber,omitempty"` // letters, digits, '-', '_'
	Scope  string `json:"scope"`                  // "global" or "site:<name>"
}

// ScopeGlobal is the scope of a test device that applies everywhere.
const ScopeGlobal = "global"

// Normalize validates d and returns it with its MAC normalised and its
// scope defaulted to global. Exactly one of MAC and Serial must be set.
func (d TestDevice) Normalize() (TestDevice, error) {
	if !validDeviceName(d.Name) {
		return d, Errorf(EINVALID, "name %q: want 1-64 letters, digits, spaces, '-', '_' or '.'", truncateForMessage(d.Name))
	}
	switch {
	case d.MAC != "" && d.Serial != "":
		return d, Errorf(EINVALID, "test device %s: give a MAC address or a serial number, not both", d.Name)
	case d.MAC != "":
		mac, err := NormalizeMAC(d.MAC)
		if err != nil {
			return d, err
		}
		d.MAC = mac
	case d.Serial != "":
		if !ValidSerial(d.Serial) {
			return d, Errorf(EINVALID, "serial number %q: want 1-64 letters, digits, '-' or '_'", truncateForMessage(d.Serial))
		}
	default:
		return d, Errorf(EINVALID, "test device %s: give its MAC address or its serial number", d.Name)
	}
	switch site, isSite := strings.CutPrefix(d.Scope, "site:"); {
	case d.Scope == "" || strings.EqualFold(d.Scope, ScopeGlobal):
		d.Scope = ScopeGlobal
	case isSite && ValidIdentifier(site):
	default:
		return d, Errorf(EINVALID, "scope %q: want global or site:<name>", truncateForMessage(d.Scope))
	}
	return d, nil
}

// Identifier returns the device's MAC or serial, whichever it has.
func (d TestDevice) Identifier() string {
	if d.MAC != "" {
		return d.MAC
	}
	return d.Serial
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

func validDeviceName(s string) bool {
	if s == "" || len(s) > 64 || strings.TrimSpace(s) != s {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ' ') {
			return false
		}
	}
	return true
}

// TestDeviceService manages test devices; every change is audited.
type TestDeviceService interface {
	TestDevices(ctx context.Context) ([]TestDevice, error)
	// AddTestDevice validates and stores d. Errors: EINVALID, ECONFLICT
	// (the name or the identifier is taken), ENOTFOUND (its site does not
	// exist).
	AddTestDevice(ctx context.Context, d TestDevice, actor string) (TestDevice, error)
	// RemoveTestDevice deletes the named device. Errors: ENOTFOUND.
	RemoveTestDevice(ctx context.Context, name, actor string) error
}
