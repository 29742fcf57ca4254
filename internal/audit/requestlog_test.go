package audit_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
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

// TestRequestLogAfterFullDisk, on a real full disk: the lines a failed
// write held are dropped and counted, the file keeps only whole lines, and
// the lines written once space returns are there.
func TestRequestLogAfterFullDisk(t *testing.T) {
	disk := e2e.TinyDisk(t, 256<<10)
	l, err := audit.OpenRequestLog(disk, "srv")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	req := func(i int) deviceupdate.PollRequest {
		return deviceupdate.PollRequest{DeviceType: "UCPhone", MAC: fmt.Sprintf("00-04-F2-00-%02X-%02X", i/256, i%256), Brand: "Polycom", Model: "CX600"}
	}
	for i := range 10 {
		if err := l.Write(at, "10.0.0.9", req(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	free := e2e.FillDisk(t, disk)
	var failed error
	for i := 10; i < 3000 && failed == nil; i++ { // past the 64 KiB buffer
		failed = l.Write(at, "10.0.0.9", req(i), nil)
	}
	if failed == nil || !strings.Contains(failed.Error(), "lines dropped") || l.Dropped() == 0 {
		t.Fatalf("a write to a full disk: %v, %d dropped", failed, l.Dropped())
	}
	free()
	for i := 5000; i < 5010; i++ {
		if err := l.Write(at, "10.0.0.9", req(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatalf("flush once space returned: %v", err)
	}
	data, err := os.ReadFile(l.Path(at))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, "2026-11-21T08:00:00Z;10.0.0.9;UCPhone;00-04-F2-00-") || !strings.HasSuffix(line, ";Polycom;CX600;;;;;") {
			t.Errorf("line %d is not whole: %q", i+1, line)
		}
	}
	if n := len(lines); n < 20 || !strings.Contains(string(data), "00-04-F2-00-13-91;") {
		t.Errorf("%d lines; the ones after the disk was freed are missing:\n%s", n, data)
	}
}

// TestRequestLogStartsAfterAPartialLine: a file that a crash left ending
// in the middle of a line gets the next line on a line of its own.
func TestRequestLogStartsAfterAPartialLine(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.OpenRequestLog(dir, "srv")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	if err := os.WriteFile(l.Path(at), []byte("2026-11-21T07:59:59Z;10.0.0.1;UCPh"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(at, "10.0.0.9", deviceupdate.PollRequest{DeviceType: "UCPhone", MAC: "00-04-F2-AA-BB-CC"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(l.Path(at))
	want := "2026-11-21T07:59:59Z;10.0.0.1;UCPh\n2026-11-21T08:00:00Z;10.0.0.9;UCPhone;00-04-F2-AA-BB-CC;;;;;;;;\n"
	if string(data) != want {
		t.Errorf("file:\n%q\nwant\n%q", data, want)
	}
}
