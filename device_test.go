package deviceupdate_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

func TestDeviceMerge(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	poll := deviceupdate.Device{ID: "A", Model: "CX600", LastSeen: t0, Polls: 1}
	upload := deviceupdate.Device{ID: "A", LogUploads: 1, LastLogUpload: t0.Add(time.Hour)}
	tests := []struct {
		name         string
		old, delta   deviceupdate.Device
		wantPolls    int64
		wantUploads  int64
		wantModel    string
		wantLastSeen time.Time
	}{
		{"first poll", deviceupdate.Device{}, poll, 1, 0, "CX600", t0},
		{"first upload", deviceupdate.Device{}, upload, 0, 1, "", time.Time{}},
		{"poll after upload keeps the count", upload, poll, 1, 1, "CX600", t0},
		{"upload after poll keeps the identity", poll, upload, 1, 1, "CX600", t0},
		{"second poll adds", poll, poll, 2, 0, "CX600", t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.old.Merge(tt.delta)
			if got.Polls != tt.wantPolls || got.LogUploads != tt.wantUploads || got.Model != tt.wantModel || !got.LastSeen.Equal(tt.wantLastSeen) {
				t.Errorf("got polls %d, uploads %d, model %q, last seen %v", got.Polls, got.LogUploads, got.Model, got.LastSeen)
			}
			if tt.wantUploads > 0 && !got.LastLogUpload.Equal(t0.Add(time.Hour)) {
				t.Errorf("last upload %v", got.LastLogUpload)
			}
		})
	}
}

func TestLastActive(t *testing.T) {
	poll, upload := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		d    deviceupdate.Device
		want time.Time
	}{
		{"polls only", deviceupdate.Device{LastSeen: poll}, poll},
		{"uploads only", deviceupdate.Device{LastLogUpload: upload}, upload},
		{"an upload after the last poll", deviceupdate.Device{LastSeen: poll, LastLogUpload: upload}, upload},
		{"a poll after the last upload", deviceupdate.Device{LastSeen: upload, LastLogUpload: poll}, upload},
	}
	for _, tt := range tests {
		if got := tt.d.LastActive(); !got.Equal(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDeviceID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"00:04:f2:aa:bb:cc", "00-04-F2-AA-BB-CC"},
		{"00-04-F2-AA-BB-CC", "00-04-F2-AA-BB-CC"},
		{"0004F2AABBCC", "0004F2AABBCC"}, // undelimited: a serial, as the inventory names a phone without a MAC
		{"SN-123", "SN-123"},
		{"bad id!", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := deviceupdate.DeviceID(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("DeviceID(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("DeviceID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

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

func TestParseAge(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration // 0: refused
	}{
		{"720h", 720 * time.Hour},
		{"90m", 90 * time.Minute},
		{"30d", 30 * 24 * time.Hour},
		{"1d", 24 * time.Hour},
		{"36600d", 36600 * 24 * time.Hour},
		{"36601d", 0},
		{"99999999999999999999d", 0},
		{"-9223372036854775807d", 0},
		{"0d", 0},
		{"0s", 0},
		{"-1h", 0},
		{"1.5d", 0},
		{"d", 0},
		{"30 d", 0},
		{"30D", 0},
		{"", 0},
		{"yesterday", 0},
	}
	for _, tt := range tests {
		got, err := deviceupdate.ParseAge(tt.in)
		if tt.want == 0 {
			if deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
				t.Errorf("ParseAge(%q) = %v, %v; want EINVALID", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestDeviceFilterMatch(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	d := deviceupdate.Device{ID: "00-04-F2-AA-BB-CC", DeviceType: "UCPhone", MAC: "00-04-F2-AA-BB-CC", Serial: "SN-77xk", Brand: "Polycom",
		Model: "CX600", Revision: "A", Locale: "ENU", UserID: "Alice.Smith@contoso.com", Remote: "10.1.2.3", LastSeen: t0,
		Modules: []deviceupdate.Module{{UpdateType: "CPE", Version: deviceupdate.MustParseVersion("4.0.7577.4100")},
			{UpdateType: "Boot", Version: deviceupdate.MustParseVersion("1.2.3.4")}}}
	key := func(s string) deviceupdate.RuleKey {
		k, err := deviceupdate.ParseRuleKey(s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	v := deviceupdate.MustParseVersion
	sites, err := deviceupdate.NewSiteMap([]deviceupdate.Site{{Name: "branch1", Subnets: mustPrefixes(t, "10.1.0.0/16")}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    deviceupdate.DeviceFilter
		want bool
	}{
		{"no filter", deviceupdate.DeviceFilter{}, true},
		{"model in another case", deviceupdate.DeviceFilter{Model: "cx600"}, true},
		{"another model", deviceupdate.DeviceFilter{Model: "CX500"}, false},
		{"version of any module", deviceupdate.DeviceFilter{Version: v("1.2.3.4")}, true},
		{"key in another case", deviceupdate.DeviceFilter{Key: key("ucphone/polycom/cx600/a/enu/cpe")}, true},
		{"key of another locale", deviceupdate.DeviceFilter{Key: key("UCPhone/Polycom/CX600/A/DEU/CPE")}, false},
		{"key of a module it lacks", deviceupdate.DeviceFilter{Key: key("UCPhone/Polycom/CX600/A/ENU/UCA")}, false},
		{"key and its module's version", deviceupdate.DeviceFilter{Key: key("UCPhone/Polycom/CX600/A/ENU/CPE"), Version: v("4.0.7577.4100")}, true},
		{"key and another module's version", deviceupdate.DeviceFilter{Key: key("UCPhone/Polycom/CX600/A/ENU/CPE"), Version: v("1.2.3.4")}, false},
		{"not on the approved version", deviceupdate.DeviceFilter{Key: key("UCPhone/Polycom/CX600/A/ENU/CPE"), NotVersion: v("4.0.7577.4366")}, true},
		{"on the approved version", deviceupdate.DeviceFilter{Key: key("UCPhone/Polycom/CX600/A/ENU/CPE"), NotVersion: v("4.0.7577.4100")}, false},
		{"not on a version only another module runs", deviceupdate.DeviceFilter{Key: key("UCPhone/Polycom/CX600/A/ENU/CPE"), NotVersion: v("1.2.3.4")}, true},
		{"another version in some module", deviceupdate.DeviceFilter{NotVersion: v("4.0.7577.4100")}, true},
		{"not on a version, key of a module it lacks", deviceupdate.DeviceFilter{Key: key("UCPhone/Polycom/CX600/A/ENU/UCA"), NotVersion: v("1.0.0.0")}, false},
		{"seen since", deviceupdate.DeviceFilter{Since: t0}, true},
		{"not seen since", deviceupdate.DeviceFilter{Since: t0.Add(time.Second)}, false},
		{"seen before", deviceupdate.DeviceFilter{Before: t0.Add(time.Second)}, true},
		{"not seen before", deviceupdate.DeviceFilter{Before: t0}, false},
		{"search MAC with colons, lower case", deviceupdate.DeviceFilter{Search: "aa:bb:cc"}, true},
		{"search MAC as stored", deviceupdate.DeviceFilter{Search: "F2-AA"}, true},
		{"search serial", deviceupdate.DeviceFilter{Search: "sn-77XK"}, true},
		{"search user", deviceupdate.DeviceFilter{Search: "smith@"}, true},
		{"search nothing it has", deviceupdate.DeviceFilter{Search: "bob"}, false},
		{"site it polls from", deviceupdate.DeviceFilter{Site: "BRANCH1"}, true},
		{"another site", deviceupdate.DeviceFilter{Site: "branch2"}, false},
		{"all at once", deviceupdate.DeviceFilter{Model: "CX600", Version: v("4.0.7577.4100"), Site: "branch1", Since: t0, Search: "alice"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Matcher(sites)(d); got != tt.want {
				t.Errorf("match = %v, want %v", got, tt.want)
			}
		})
	}
	if (deviceupdate.DeviceFilter{Site: "branch1"}).Match(d) {
		t.Error("a site filter matched without sites to place the device")
	}
}

func TestDeviceFilterValidate(t *testing.T) {
	tests := []struct {
		name string
		f    deviceupdate.DeviceFilter
		ok   bool
	}{
		{"empty", deviceupdate.DeviceFilter{}, true},
		{"a search at the bound", deviceupdate.DeviceFilter{Search: strings.Repeat("a", deviceupdate.MaxDeviceSearch)}, true},
		{"a search past the bound", deviceupdate.DeviceFilter{Search: strings.Repeat("a", deviceupdate.MaxDeviceSearch+1)}, false},
		{"a key with a bad part", deviceupdate.DeviceFilter{Key: deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "../x"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f.Validate(); (err == nil) != tt.ok || err != nil && deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
				t.Errorf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestSummarizeFleet(t *testing.T) {
	v := deviceupdate.MustParseVersion
	cx600 := deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}
	cx500 := cx600
	cx500.Model = "CX500"
	lower := cx600
	lower.Model = "cx600"
	sum := deviceupdate.SummarizeFleet(9, []deviceupdate.ModelSummary{
		{RuleKey: lower, Versions: []deviceupdate.VersionCount{{v("4.0.7577.4100"), 5}, {v("4.0.7577.4366"), 2}}},
		{RuleKey: deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX700", Revision: "A", Locale: "ENU", UpdateType: "CPE"},
			Versions: []deviceupdate.VersionCount{{v("4.0.7577.4100"), 2}}},
	}, []deviceupdate.Rule{
		{ID: "r600", RuleKey: cx600, ApprovedVersion: v("4.0.7577.4366"), PendingVersion: v("4.0.7577.4400")},
		{ID: "r500", RuleKey: cx500, PendingVersion: v("4.0.7577.4400")},
	})
	var got []string
	for _, m := range sum.Models {
		got = append(got, fmt.Sprintf("%s rule=%s devices=%d versions=%v notOnApproved=%d", m.Model, m.RuleID, m.Devices, m.Versions, m.NotOnApproved))
	}
	want := []string{
		"CX500 rule=r500 devices=0 versions=[] notOnApproved=0",
		"cx600 rule=r600 devices=7 versions=[{4.0.7577.4366 2} {4.0.7577.4100 5}] notOnApproved=5",
		"CX700 rule= devices=2 versions=[{4.0.7577.4100 2}] notOnApproved=0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("models:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if sum.Devices != 9 || sum.NotOnApproved != 5 || fmt.Sprint(sum.Versions) != "[{4.0.7577.4366 2} {4.0.7577.4100 7}]" {
		t.Errorf("fleet: %d devices, %d not on approved, versions %v", sum.Devices, sum.NotOnApproved, sum.Versions)
	}
}
