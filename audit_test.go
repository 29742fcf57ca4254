package deviceupdate_test

import (
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

// TestAuditCursorRoundTrip: an audit cursor reads back as the entry's
// sequence number.
func TestAuditCursorRoundTrip(t *testing.T) {
	if seq, err := deviceupdate.ParseAuditCursor(deviceupdate.AuditCursor(1 << 40)); err != nil || seq != 1<<40 {
		t.Errorf("audit cursor: %d, %v", seq, err)
	}
}
