package audit_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
)

// TestRequestLogLines: one line per poll in Lync's field order; a phone's
// ';', '#' or line break cannot forge a field or a line; the file turns
// over at midnight UTC.
func TestRequestLogLines(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.OpenRequestLog(dir, "srv;1")
	if err != nil {
		t.Fatal(err)
	}
	v := deviceupdate.MustParseVersion
	req := deviceupdate.PollRequest{DeviceType: "UCPhone", MAC: "00-04-F2-AA-BB-CC", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU",
		UserID: "sip:eve@x;evil#\nforged", Modules: []deviceupdate.Module{{UpdateType: "CPE", Filename: "CPE.nbt", Version: v("4.0.7577.4100"), Timestamp: "t;1"}, {UpdateType: "CPE", Filename: "B.nbt", Version: v("1.2.3.4")}}}
	offer := &deviceupdate.StoredUpdate{Version: v("4.0.7577.4366"),
		Images: []deviceupdate.UpdateFile{{Name: "CPE.nbt"}}, Catalog: deviceupdate.UpdateFile{Name: "CPE.cat"}}
	day1 := time.Date(2026, 11, 21, 23, 59, 59, 0, time.UTC)
	tests := []struct {
		name  string
		at    time.Time
		offer *deviceupdate.StoredUpdate
		want  string
	}{
		{"offer", day1, offer, "2026-11-21T23:59:59Z;10.0.0.9;UCPhone;00-04-F2-AA-BB-CC;;Polycom;CX600;A;ENU;CPE.nbt;4.0.7577.4100;t_1#B.nbt;1.2.3.4;;CPE.nbt;4.0.7577.4366#CPE.cat;4.0.7577.4366;sip:eve@x_evil__forged"},
		{"nothing offered, next day", day1.Add(2 * time.Second), nil, "2026-11-22T00:00:01Z;10.0.0.9;UCPhone;00-04-F2-AA-BB-CC;;Polycom;CX600;A;ENU;CPE.nbt;4.0.7577.4100;t_1#B.nbt;1.2.3.4;;;sip:eve@x_evil__forged"},
	}
	for _, tt := range tests {
		if err := l.Write(tt.at, "10.0.0.9", req, tt.offer); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(dir, filepath.FromSlash(audit.RequestLogDir), "RequestHandlerAuditLog_srv_1_"+tt.at.Format("20060102")+".log")
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSuffix(string(data), "\n"); got != tt.want {
				t.Errorf("line:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
