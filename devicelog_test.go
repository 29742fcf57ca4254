package deviceupdate_test

import (
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

// TestLogCursorRoundTrip: a log cursor reads back as the log's time and
// path.
func TestLogCursorRoundTrip(t *testing.T) {
	l := deviceupdate.DeviceLog{Type: "CELog", Device: "00-04-F2-AA-BB-CC", Name: "a log with spaces.clg",
		Modified: time.Date(2026, 11, 21, 8, 0, 0, 123456789, time.FixedZone("CET", 3600))}
	got, err := deviceupdate.ParseLogCursor(deviceupdate.LogCursor(l))
	if err != nil || got.Path() != l.Path() || !got.Modified.Equal(l.Modified) {
		t.Errorf("log cursor: %+v, %v", got, err)
	}
}
