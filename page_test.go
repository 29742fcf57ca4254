package deviceupdate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

func TestParsePageLimit(t *testing.T) {
	tests := []struct {
		name, in string
		want     int
		wantErr  bool
	}{
		{"default", "", deviceupdate.DefaultPageLimit, false},
		{"one", "1", 1, false},
		{"the maximum", "5000", 5000, false},
		{"past the maximum", "5001", 0, true},
		{"zero", "0", 0, true},
		{"negative", "-5", 0, true},
		{"not a number", "all", 0, true},
		{"huge", strings.Repeat("9", 40), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := deviceupdate.ParsePageLimit(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr || err != nil && deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
				t.Errorf("ParsePageLimit(%q) = %d, %v", tt.in, got, err)
			}
		})
	}
}

// TestCursorRoundTrip: a cursor the server gives reads back as the
// position it was made from.
func TestCursorRoundTrip(t *testing.T) {
	if id, err := deviceupdate.DecodeCursor(deviceupdate.EncodeCursor("SN-123")); err != nil || id != "SN-123" {
		t.Errorf("device cursor: %q, %v", id, err)
	}
}

// FuzzParseCursor: whatever a client sends as a cursor is either refused
// with EINVALID or read as a position, never a panic.
func FuzzParseCursor(f *testing.F) {
	f.Add(deviceupdate.LogCursor(deviceupdate.DeviceLog{Type: "CELog", Device: "SN1", Name: "x.clg", Modified: time.Unix(1_800_000_000, 0)}))
	f.Add(deviceupdate.AuditCursor(42))
	f.Add(deviceupdate.EncodeCursor("00-04-F2-AA-BB-CC"))
	f.Add("")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, c string) {
		for _, parse := range []func(string) error{
			func(c string) error { _, err := deviceupdate.DecodeCursor(c); return err },
			func(c string) error { _, err := deviceupdate.ParseAuditCursor(c); return err },
			func(c string) error {
				l, err := deviceupdate.ParseLogCursor(c)
				if err == nil && l != nil && strings.Count(l.Path(), "/") != 2 {
					t.Errorf("log cursor %q names %q", c, l.Path())
				}
				return err
			},
		} {
			if err := parse(c); err != nil && deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
				t.Errorf("cursor %q: %v, want EINVALID", c, err)
			}
		}
	})
}
