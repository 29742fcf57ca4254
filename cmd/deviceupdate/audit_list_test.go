package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

// TestPrintAuditList: long actors and targets push the next column along,
// and the columns line up on both sides of the break marker.
func TestPrintAuditList(t *testing.T) {
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	rec := func(seq uint64, actor, target string, unverified bool) deviceupdate.AuditRecord {
		return deviceupdate.AuditRecord{AuditEntry: deviceupdate.AuditEntry{Seq: seq, Time: at, Actor: actor, Action: "rule.approve", Target: target, Result: "ok"},
			Unverified: unverified}
	}
	tests := []struct {
		name       string
		list       deviceupdate.AuditList
		wantMarker int // line of the marker, 0 for none
	}{
		{"intact", deviceupdate.AuditList{Entries: []deviceupdate.AuditRecord{
			rec(1, "bootstrap@[2001:db8::1]:51234", "b10d5692a95a", false),
			rec(2, "admin@127.0.0.1", "UCUpdates-with-a-very-long-name-for-a-package.cab", false),
		}}, 0},
		{"broken in the middle", deviceupdate.AuditList{Entries: []deviceupdate.AuditRecord{
			rec(1, "admin@127.0.0.1", "b10d5692a95a", false),
			rec(3, "bootstrap@[2001:db8::1]:51234", "UCUpdates-with-a-very-long-name-for-a-package.cab", true),
		}, Broken: &deviceupdate.AuditBreak{Line: 2, Seq: 3, Reason: "sequence number 3 follows 1"}}, 2},
		{"broken at the end", deviceupdate.AuditList{Entries: []deviceupdate.AuditRecord{
			rec(1, "bootstrap@[2001:db8::1]:51234", "b10d5692a95a", false),
		}, Broken: &deviceupdate.AuditBreak{Line: 2, Seq: 2, Reason: "not an audit entry"}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var tbl auditTable // one page, as `audit list` prints a page it fetched
			if err := tbl.page(&buf, tt.list.Entries, tt.list.Broken); err != nil {
				t.Fatal(err)
			}
			if err := tbl.end(&buf, tt.list.Broken); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != 1+len(tt.list.Entries)+min(tt.wantMarker, 1) {
				t.Fatalf("%d lines:\n%s", len(lines), buf.String())
			}
			for _, col := range []string{"ACTION", "TARGET", "RESULT"} {
				at := strings.Index(lines[0], col)
				for i, l := range lines[1:] {
					if i+1 == tt.wantMarker {
						continue
					}
					if at > len(l) || l[at-2:at] != "  " || l[at] == ' ' {
						t.Errorf("column %s does not start at %d in line %d:\n%s", col, at, i+2, buf.String())
					}
				}
			}
			if tt.wantMarker > 0 {
				want := "---- chain broken at line 2: " + tt.list.Broken.Reason + "; entries below are not verified ----"
				if lines[tt.wantMarker] != want {
					t.Errorf("line %d = %q, want the marker %q", tt.wantMarker+1, lines[tt.wantMarker], want)
				}
			}
			for i, e := range tt.list.Entries {
				l := lines[1+i]
				if tt.wantMarker > 0 && i+1 >= tt.wantMarker {
					l = lines[2+i]
				}
				if strings.HasSuffix(l, "(unverified)") != e.Unverified {
					t.Errorf("entry %d: %q, unverified %v", e.Seq, l, e.Unverified)
				}
			}
		})
	}
}

func TestEntryCount(t *testing.T) {
	for n, want := range map[int]string{0: "0 entries", 1: "1 entry", 2: "2 entries"} {
		if got := entryCount(n); got != want {
			t.Errorf("entryCount(%d) = %q, want %q", n, got, want)
		}
	}
}
