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
