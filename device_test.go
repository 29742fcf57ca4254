package deviceupdate_test

import (
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

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
