package handler

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// TestDeviceListFiltersAndDevicePage: GET /devices reads every filter
// from the query and refuses bad ones with a 400 naming the parameter;
// GET /devices/{id} answers the device with its versions over time.
func TestDeviceListFiltersAndDevicePage(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	trail, err := audit.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.SetTrail(trail)
	defer trail.Close()
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	dev := func(mac, model, user, remote, version string, at time.Time) deviceupdate.Device {
		return deviceupdate.Device{ID: mac, MAC: mac, DeviceType: "UCPhone", Brand: "Polycom", Model: model, Revision: "A", Locale: "ENU",
			UserID: user, Remote: remote, LastSeen: at, Polls: 1, Modules: []deviceupdate.Module{{UpdateType: "CPE", Version: deviceupdate.MustParseVersion(version)}}}
	}
	for _, batch := range [][]deviceupdate.Device{{
		dev("00-04-F2-00-00-01", "CX600", "alice@contoso.com", "10.1.0.5", "4.0.7577.4100", t0),
		dev("00-04-F2-00-00-02", "CX600", "bob@contoso.com", "10.2.0.5", "4.0.7577.4100", t0.Add(-48*time.Hour)),
		dev("00-04-F2-00-00-03", "CX500", "carol@contoso.com", "10.1.0.6", "4.0.7577.4100", t0),
	}, {dev("00-04-F2-00-00-01", "CX600", "alice@contoso.com", "10.1.0.5", "4.0.7577.4366", t0.Add(time.Hour))}} {
		if err := db.PutDevices(batch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.PutSite(deviceupdate.Site{Name: "branch1", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Store: db, AdminToken: testToken,
		Devices: &admin.Service{DB: db}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query string
		wantStatus  int
		want        string // the IDs' last two digits, or a substring of the error
	}{
		{"no filter", "", 200, "01 02 03"},
		{"model", "model=cx600", 200, "01 02"},
		{"key and version", "key=UCPhone/Polycom/CX600/A/ENU/CPE&version=4.0.7577.4100", 200, "02"},
		{"not on the approved version", "key=UCPhone/Polycom/CX600/A/ENU/CPE&notVersion=4.0.7577.4100", 200, "01"},
		{"site", "site=branch1", 200, "01 03"},
		{"seen since", "since=2026-11-21T00:00:00Z", 200, "01 03"},
		{"not seen since", "before=2026-11-21T00:00:00Z", 200, "02"},
		{"search a user", "search=CAROL", 200, "03"},
		{"search a MAC", "search=00:00:02", 200, "02"},
		{"a page", "limit=2", 200, "01 02"},
		{"a bad key", "key=UCPhone/Polycom", 400, "rule key"},
		{"a bad version", "version=4.0", 400, "version"},
		{"a bad other version", "notVersion=x", 400, "notVersion"},
		{"a bad time", "before=yesterday", 400, "before="},
		{"a search too long", "search=" + strings.Repeat("a", 200), 400, "search"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(s.Secure(), "GET", AdminPrefix+"/devices?"+tt.query, map[string]string{"Authorization": "Bearer " + testToken})
			if rec.Code != tt.wantStatus {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tt.wantStatus)
			}
			if rec.Code != 200 {
				if !strings.Contains(rec.Body.String(), tt.want) {
					t.Errorf("%s lacks %q", rec.Body, tt.want)
				}
				return
			}
			var list deviceupdate.DeviceList
			if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, d := range list.Devices {
				ids = append(ids, d.ID[len(d.ID)-2:])
			}
			if got := strings.Join(ids, " "); got != tt.want {
				t.Errorf("devices %q, want %q", got, tt.want)
			}
		})
	}

	rec := do(s.Secure(), "GET", AdminPrefix+"/devices/00:04:f2:00:00:01", map[string]string{"Authorization": "Bearer " + testToken})
	var d deviceupdate.Device
	if err := json.Unmarshal(rec.Body.Bytes(), &d); rec.Code != 200 || err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	if len(d.History) != 1 || d.History[0].From.String() != "4.0.7577.4100" || d.History[0].To.String() != "4.0.7577.4366" || !d.History[0].At.Equal(t0.Add(time.Hour)) {
		t.Errorf("history %+v", d.History)
	}
	if rec := do(s.Secure(), "GET", AdminPrefix+"/devices/00-04-F2-00-00-09", map[string]string{"Authorization": "Bearer " + testToken}); rec.Code != 404 {
		t.Errorf("an unknown device: %d %s", rec.Code, rec.Body)
	}
}
