package deviceupdate_test

import (
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestDecide(t *testing.T) {
	v := deviceupdate.MustParseVersion
	rule := &deviceupdate.Rule{ID: "r", ApprovedVersion: v("4.0.7577.4366"), PendingVersion: v("4.0.7577.4400"), RestoreVersion: v("4.0.7577.4100")}
	approvedOnly := &deviceupdate.Rule{ID: "r", ApprovedVersion: v("4.0.7577.4366")}
	pendingOnly := &deviceupdate.Rule{ID: "r", PendingVersion: v("4.0.7577.4400")}
	tests := []struct {
		name       string
		rule       *deviceupdate.Rule
		running    deviceupdate.Version
		testDevice bool
		want       deviceupdate.Version
		wantOffer  bool
	}{
		{"old phone gets the approved build", rule, v("4.0.7577.4100"), false, v("4.0.7577.4366"), true},
		{"test device gets the pending build", rule, v("4.0.7577.4100"), true, v("4.0.7577.4400"), true},
		{"current phone gets nothing", rule, v("4.0.7577.4366"), false, v("4.0.7577.4366"), false},
		{"current test device gets nothing", rule, v("4.0.7577.4400"), true, v("4.0.7577.4400"), false},
		{"newer phone is rolled back", rule, v("4.0.7577.9999"), false, v("4.0.7577.4366"), true},
		{"numbers, not strings", approvedOnly, v("4.0.7577.10000"), false, v("4.0.7577.4366"), true},
		{"test device without pending gets approved", approvedOnly, v("4.0.7577.4100"), true, v("4.0.7577.4366"), true},
		{"no approved version: nothing for others", pendingOnly, v("4.0.7577.4100"), false, deviceupdate.Version{}, false},
		{"no approved version: pending for test devices", pendingOnly, v("4.0.7577.4100"), true, v("4.0.7577.4400"), true},
		{"unknown model", nil, v("4.0.7577.4100"), true, deviceupdate.Version{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, offer := deviceupdate.Decide(tt.rule, tt.running, tt.testDevice)
			if got != tt.want || offer != tt.wantOffer {
				t.Errorf("Decide = %s, %v; want %s, %v", got, offer, tt.want, tt.wantOffer)
			}
		})
	}
}

func TestTestDeviceMatches(t *testing.T) {
	global := deviceupdate.TestDevice{Name: "a", MAC: "00-04-F2-AA-BB-CC", Scope: "global"}
	site := deviceupdate.TestDevice{Name: "b", Serial: "SN1", Scope: "site:Redmond"}
	tests := []struct {
		name               string
		d                  deviceupdate.TestDevice
		mac, serial, where string
		want               bool
	}{
		{"global by MAC", global, "00-04-F2-AA-BB-CC", "", "", true},
		{"other MAC", global, "00-04-F2-AA-BB-CD", "", "", false},
		{"site device at its site", site, "", "sn1", "redmond", true},
		{"site device elsewhere", site, "", "SN1", "Paris", false},
		{"site device, site unknown", site, "", "SN1", "", false},
	}
	for _, tt := range tests {
		if got := tt.d.Matches(tt.mac, tt.serial, tt.where); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}
