package deviceupdate_test

import (
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestCheckDeviceSettings(t *testing.T) {
	if _, err := deviceupdate.CheckDeviceSettings(map[string]string{"PollIntervalSeconds": "3600"}); deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
		t.Errorf("a setting no device may have: %v", err)
	}
	got, err := deviceupdate.CheckDeviceSettings(map[string]string{"peerfirmwaresharing": "1"})
	if err != nil || got["PeerFirmwareSharing"] != "true" {
		t.Errorf("CheckDeviceSettings = %v, %v", got, err)
	}
}

func TestPeerSharingFor(t *testing.T) {
	on, off := map[string]string{"PeerFirmwareSharing": "true"}, map[string]string{"PeerFirmwareSharing": "false"}
	tests := []struct {
		name                 string
		device, site, global map[string]string
		want                 bool
	}{
		{"default is off", nil, nil, nil, false},
		{"global", nil, nil, on, true},
		{"site over global", nil, off, on, false},
		{"device over site", on, off, off, true},
		{"device off over everything", off, on, on, false},
		{"empty device value inherits", map[string]string{"PeerFirmwareSharing": ""}, on, off, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deviceupdate.PeerSharingFor(tt.device, tt.site, tt.global); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
