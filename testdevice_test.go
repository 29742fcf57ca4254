package deviceupdate_test

import (
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestNormalizeMAC(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{"00-04-F2-AA-BB-CC", "00-04-F2-AA-BB-CC", ""},
		{"00:04:f2:aa:bb:cc", "00-04-F2-AA-BB-CC", ""},
		{"0004f2aabbcc", "00-04-F2-AA-BB-CC", ""},
		{"00-04-F2-AA-BB-CC-DD-EE", "00-04-F2-AA-BB-CC-DD-EE", ""},
		{"00-04-F2-AA-BB", "", "six to eight pairs"},
		{"00-04:F2-AA-BB-CC", "", "mixes"},
		{"00-04-F2-AA-BB-CG", "", `"CG" is not two hex digits`},
		{"0004f2aabbc", "", "odd number"},
		{"00-04-F2-AA-BB-C", "", `"C" is not two hex digits`},
		{"", "", "six to eight pairs"},
		{"00-04-f2-AA-BB-CC", "00-04-F2-AA-BB-CC", ""},          // normal length, lower case
		{"00-04-F2-AA-BB-GG", "", `"GG" is not two hex digits`}, // normal length, not hex
		{"00_04-F2-AA-BB-CC", "", "six to eight pairs"},         // normal length, wrong separator
		{"00-04-F2-AA-BB-CC\n", "", "is not two hex digits"},    // a trailing newline
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := deviceupdate.NormalizeMAC(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NormalizeMAC(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeMAC(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

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
