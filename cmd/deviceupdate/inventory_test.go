package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

// metricValue returns the value of the sample named line (name and
// labels) in a /metrics text, "" when there is none.
func metricValue(metrics, line string) string {
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, line+" "); ok {
			return v
		}
	}
	return ""
}

// TestInventoryCap: anonymous polls with invented MAC addresses no longer
// grow the inventory without end. With --max-devices 1200, 1500 distinct
// phones are all answered, 1200 are recorded and 300 refused (a metric, a
// warning in the log); recorded devices keep updating. The inventory is
// read a page at a time: 1200 devices in 12 pages of 100, each once, by
// ID; the CLI prints them all, or the first N.
func TestInventoryCap(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Args: []string{"--max-devices", "1200"}})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	res := e2e.Run(t, "", env, "phone", "load", "--server", srv.InternalURL(), "--phones", "1500", "--requests", "1500",
		"--concurrency", "16", "--json")
	var load struct{ OK, Busy, Failed, Dropped int64 }
	if err := json.Unmarshal([]byte(res.Stdout), &load); err != nil || res.Code != 0 || load.OK != 1500 {
		t.Fatalf("phone load: exit %d %v\n%s%s", res.Code, err, res.Stdout, res.Stderr)
	}

	listed := func(args ...string) []deviceupdate.Device {
		t.Helper()
		res := e2e.Run(t, "", env, append([]string{"device", "list", "--json"}, args...)...)
		var devices []deviceupdate.Device
		if err := json.Unmarshal([]byte(res.Stdout), &devices); err != nil || res.Code != 0 {
			t.Fatalf("device list: exit %d %v %.300s %s", res.Code, err, res.Stdout, res.Stderr)
		}
		return devices
	}
	devices := listed() // flushes what the polls left pending
	if len(devices) != 1200 {
		t.Fatalf("%d devices recorded, want --max-devices 1200", len(devices))
	}
	metrics := srv.Metrics()
	for line, want := range map[string]string{
		"deviceupdate_inventory_devices":       "1200",
		"deviceupdate_inventory_max_devices":   "1200",
		"deviceupdate_inventory_refused_total": "300",
	} {
		if got := metricValue(metrics, line); got != want {
			t.Errorf("%s = %q, want %s", line, got, want)
		}
	}
	deadline := time.Now().Add(20 * time.Second) // the log is buffered for up to a second
	for time.Now().Before(deadline) && srv.FindLog("inventory full") == nil {
		time.Sleep(50 * time.Millisecond)
	}
	if w := srv.FindLog("inventory full"); w == nil || w["level"] != "warn" || w["max_devices"] != float64(1200) {
		t.Errorf("no warning of the full inventory: %v", w)
	}
	warnings := 0
	for _, l := range srv.Logs() {
		if l["msg"] == "inventory full" {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("%d warnings of the full inventory within a minute, want 1", warnings)
	}

	// A recorded device still updates; a new one is answered, not recorded.
	c := &http.Client{Timeout: 30 * time.Second}
	known := devices[0]
	for _, p := range []struct{ mac, version string }{{known.MAC, "4.0.7577.4366"}, {"02-00-FF-FF-FF-FF", "4.0.7577.4366"}} {
		if code, body := post(t, c, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(p.mac, "CX600", p.version)); code != 200 || !strings.Contains(body, "<Response>") {
			t.Fatalf("poll of %s: %d %s", p.mac, code, body)
		}
	}
	devices = listed()
	i := slices.IndexFunc(devices, func(d deviceupdate.Device) bool { return d.ID == known.ID })
	if len(devices) != 1200 || i < 0 || devices[i].Modules[0].Version.String() != "4.0.7577.4366" || devices[i].Polls != known.Polls+1 {
		t.Errorf("after a known and a new device polled: %d devices, the known one %+v", len(devices), devices[max(i, 0)])
	}

	// Filters, and the device's versions over time.
	colons := strings.ToLower(strings.ReplaceAll(known.MAC, "-", ":"))
	if found := listed("--search", colons, "--since", "1h", "--key", "ucphone/polycom/cx600/a/enu/cpe"); len(found) != 1 || found[0].ID != known.ID {
		t.Errorf("device list --search %s: %d devices", colons, len(found))
	}
	if stale := listed("--before", "1h"); len(stale) != 0 {
		t.Errorf("device list --before 1h: %d devices, all polled just now", len(stale))
	}
	if res := e2e.Run(t, "", env, "device", "list", "--before", "soon"); res.Code != 2 || !strings.Contains(res.Stderr, "--before") {
		t.Errorf("--before soon: exit %d %s", res.Code, res.Stderr)
	}
	tc := srv.Client("127.0.0.1")
	auth := map[string]string{"Authorization": "Bearer " + srv.Token()}
	var one deviceupdate.Device
	if code, body, _ := send(t, tc, "GET", srv.URL()+"/admin/api/v1/devices/"+known.ID, "", auth); code != 200 || json.Unmarshal([]byte(body), &one) != nil ||
		len(one.History) != 1 || one.History[0].To.String() != "4.0.7577.4366" {
		t.Errorf("GET /devices/%s: %d %.300s", known.ID, code, body)
	}

	// The API, 100 at a time.
	var ids []string
	cursor, pages := "", 0
	for pages < 20 {
		code, body, _ := send(t, tc, "GET", srv.URL()+"/admin/api/v1/devices?limit=100&cursor="+cursor, "", auth)
		var page deviceupdate.DeviceList
		if err := json.Unmarshal([]byte(body), &page); code != 200 || err != nil {
			t.Fatalf("page %d: %d %v %.300s", pages+1, code, err, body)
		}
		pages++
		for _, d := range page.Devices {
			ids = append(ids, d.ID)
		}
		if page.Next == "" {
			break
		}
		if len(page.Devices) != 100 {
			t.Fatalf("page %d holds %d devices and a next cursor", pages, len(page.Devices))
		}
		cursor = page.Next
	}
	if pages != 12 || len(ids) != 1200 || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != 1200 {
		t.Errorf("%d pages, %d devices, sorted %v", pages, len(ids), slices.IsSorted(ids))
	}
	for _, tt := range []struct{ query, want string }{
		{"limit=5001", "5001\\\": want a whole number from 1 to 5000"},
		{"limit=0", "want a whole number from 1 to 5000"},
		{"cursor=%25%25", "is not one this server gave"},
	} {
		if code, body, _ := send(t, tc, "GET", srv.URL()+"/admin/api/v1/devices?"+tt.query, "", auth); code != 400 || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s", tt.query, code, body)
		}
	}

	// The CLI prints the first N, as JSON or as a table.
	if first := listed("--limit", "50"); len(first) != 50 || first[49].ID != ids[49] {
		t.Errorf("--limit 50 --json: %d devices", len(first))
	}
	res = e2e.Run(t, "", env, "device", "list", "--limit", "5001")
	if lines := strings.Split(strings.TrimSpace(res.Stdout), "\n"); res.Code != 0 || len(lines) != 1201 || !strings.HasPrefix(lines[0], "ID ") {
		t.Errorf("device list --limit 5001: exit %d, %d lines %s", res.Code, len(lines), res.Stderr)
	}
	if res := e2e.Run(t, "", env, "device", "list", "--limit", "-1"); res.Code != 2 || !strings.Contains(res.Stderr, "--limit -1") {
		t.Errorf("--limit -1: exit %d %s", res.Code, res.Stderr)
	}
}

// TestAuditAndLogListsPage: the audit and log lists of the CLI read every
// page: 12 audit entries and 7 logs listed 5 at a time by a --limit, all
// of them without it.
func TestAuditAndLogListsPage(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	for i := range 12 {
		if res := e2e.Run(t, "", env, "testdevice", "add", "--name", fmt.Sprintf("lab%02d", i), "--serial", fmt.Sprintf("SN%02d", i)); res.Code != 0 {
			t.Fatal(res.Stderr)
		}
	}
	c := &http.Client{Timeout: 30 * time.Second}
	for i := range 7 {
		url := fmt.Sprintf("%s/RequestHandler/Files?DeviceType=UCPhone&MacAddress=00-04-F2-00-00-%02d&LogType=CELog&FileName=log%d.clg", srv.InternalURL(), i, i)
		if code, body := post(t, c, url, "log"); code != 200 {
			t.Fatalf("upload: %d %s", code, body)
		}
	}
	tc := srv.Client("127.0.0.1")
	auth := map[string]string{"Authorization": "Bearer " + srv.Token()}
	code, body, _ := send(t, tc, "GET", srv.URL()+"/admin/api/v1/audit?limit=5", "", auth)
	var audit deviceupdate.AuditList
	if err := json.Unmarshal([]byte(body), &audit); code != 200 || err != nil || len(audit.Entries) != 5 || audit.Next == "" {
		t.Fatalf("audit page: %d %v %s", code, err, body)
	}
	code, body, _ = send(t, tc, "GET", srv.URL()+"/admin/api/v1/audit?limit=5&cursor="+audit.Next, "", auth)
	if err := json.Unmarshal([]byte(body), &audit); code != 200 || err != nil || len(audit.Entries) != 5 || audit.Entries[0].Seq != 6 {
		t.Fatalf("second audit page: %d %v %s", code, err, body)
	}
	code, body, _ = send(t, tc, "GET", srv.URL()+"/admin/api/v1/logs?limit=5", "", auth)
	var logs deviceupdate.LogList
	if err := json.Unmarshal([]byte(body), &logs); code != 200 || err != nil || len(logs.Logs) != 5 || logs.Next == "" {
		t.Fatalf("logs page: %d %v %s", code, err, body)
	}

	tests := []struct {
		args []string
		want int
	}{
		{[]string{"audit", "list", "--json"}, 12},
		{[]string{"audit", "list", "--json", "--limit", "5"}, 5},
		{[]string{"logs", "list", "--json"}, 7},
		{[]string{"logs", "list", "--json", "--limit", "5"}, 5},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			res := e2e.Run(t, "", env, tt.args...)
			var n int
			var err error
			if tt.args[0] == "audit" {
				var l deviceupdate.AuditList
				err = json.Unmarshal([]byte(res.Stdout), &l)
				n = len(l.Entries)
				for i, e := range l.Entries {
					if e.Seq != uint64(i+1) {
						t.Errorf("entry %d has seq %d", i, e.Seq)
					}
				}
			} else {
				var l []deviceupdate.DeviceLog
				err = json.Unmarshal([]byte(res.Stdout), &l)
				n = len(l)
			}
			if res.Code != 0 || err != nil || n != tt.want || strings.Count(res.Stdout, "\n") != 1 {
				t.Errorf("exit %d, %v, %d items, want %d: %s%s", res.Code, err, n, tt.want, res.Stdout, res.Stderr)
			}
		})
	}
}
