package deviceupdate_test

import (
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestTestDeviceNormalize(t *testing.T) {
	tests := []struct {
		name    string
		in      deviceupdate.TestDevice
		want    deviceupdate.TestDevice
		wantErr string
	}{
		{"MAC, global by default", deviceupdate.TestDevice{Name: "Lab phone 1", MAC: "00:04:f2:aa:bb:cc"},
			deviceupdate.TestDevice{Name: "Lab phone 1", MAC: "00-04-F2-AA-BB-CC", Scope: "global"}, ""},
		{"serial at a site", deviceupdate.TestDevice{Name: "p2", Serial: "SN-123_a", Scope: "site:Redmond"},
			deviceupdate.TestDevice{Name: "p2", Serial: "SN-123_a", Scope: "site:Redmond"}, ""},
		{"both identifiers", deviceupdate.TestDevice{Name: "p", MAC: "0004f2aabbcc", Serial: "x"}, deviceupdate.TestDevice{}, "not both"},
		{"no identifier", deviceupdate.TestDevice{Name: "p"}, deviceupdate.TestDevice{}, "give its MAC address or its serial number"},
		{"bad serial", deviceupdate.TestDevice{Name: "p", Serial: "SN 1"}, deviceupdate.TestDevice{}, `serial number "SN 1"`},
		{"bad name", deviceupdate.TestDevice{Name: " lab", Serial: "x"}, deviceupdate.TestDevice{}, "name"},
		{"bad scope", deviceupdate.TestDevice{Name: "p", Serial: "x", Scope: "pool:fe01"}, deviceupdate.TestDevice{}, `scope "pool:fe01"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Normalize()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
					t.Fatalf("Normalize = %v, want EINVALID containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Normalize = %+v, %v; want %+v", got, err, tt.want)
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
