package deviceupdate

import (
	"context"
	"strconv"
	"strings"
)

// DeviceSettings lists the settings a single device may override, with
// Cisco's priority: the device's own value, then its site's, then the
// enterprise (global) one.
var DeviceSettings = []string{"PeerFirmwareSharing"}

// CheckDeviceSettings validates name=value pairs for one device: every
// name must be one of DeviceSettings; an empty value removes the
// override. Errors: EINVALID.
func CheckDeviceSettings(in map[string]string) (map[string]string, error) {
	out, err := CheckSettings(in)
	if err != nil {
		return nil, err
	}
	for k := range out {
		allowed := false
		for _, d := range DeviceSettings {
			allowed = allowed || d == k
		}
		if !allowed {
			return nil, Errorf(EINVALID, "%s cannot be set per device; the device settings are %s", k, strings.Join(DeviceSettings, ", "))
		}
	}
	return out, nil
}

// PeerSharingFor resolves PeerFirmwareSharing for one device: its own
// override, else its site's, else the global one, else the default.
func PeerSharingFor(device, site, global map[string]string) bool {
	for _, m := range []map[string]string{device, site, global} {
		if v, ok := m["PeerFirmwareSharing"]; ok && v != "" {
			b, err := strconv.ParseBool(v)
			return err == nil && b
		}
	}
	s, _ := LookupSetting("PeerFirmwareSharing")
	b, _ := strconv.ParseBool(s.Default)
	return b
}

// DeviceConfig is a device's own setting overrides.
type DeviceConfig struct {
	ID       string            `json:"id"`
	Settings map[string]string `json:"settings"`
}

// DeviceConfigService reads and changes per-device settings; changes are
// audited.
type DeviceConfigService interface {
	// DeviceConfig returns a device's overrides (none is not an error).
	DeviceConfig(ctx context.Context, id string) (DeviceConfig, error)
	// SetDeviceConfig applies overrides to one device. Errors: EINVALID.
	SetDeviceConfig(ctx context.Context, id string, settings map[string]string, actor string) (DeviceConfig, error)
}
