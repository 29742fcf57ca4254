package deviceupdate_test

import (
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
