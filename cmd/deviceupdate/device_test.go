package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// TestForgetDevicesThroughCLI: device remove forgets a phone whose poll
// may still wait in the inventory batch; device prune forgets the phones
// not seen for an age, saying how many before it does; both are audited.
// device list keeps its columns apart whatever the length of an ID.
func TestForgetDevicesThroughCLI(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	devices := func() []string {
		t.Helper()
		res := e2e.Run(t, "", env, "device", "list", "--json")
		var list []deviceupdate.Device
		if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil || res.Code != 0 {
			t.Fatalf("device list: %v %s", err, res.Stderr)
		}
		var ids []string
		for _, d := range list {
			ids = append(ids, d.ID)
		}
		return ids
	}
	pollAs := func(body string) {
		t.Helper()
		if code, out := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", body); code != 200 {
			t.Fatalf("poll: %d %s", code, out)
		}
	}
	const retired, kept = "00-04-F2-00-00-01", "00-04-F2-00-00-02"
	pollAs(pollBody(retired, "CX600", "4.0.7577.4100"))
	pollAs(pollBody(kept, "CX600", "4.0.7577.4100"))
	longSerial := strings.Repeat("LOADTEST-PHONE-", 4) + "1"
	pollAs(strings.Replace(pollBody("", "CX600-with-a-long-model-name", "4.0.7577.4100"), "<MacAddress></MacAddress>", "<SerialNumber>"+longSerial+"</SerialNumber>", 1))

	// The polls may still be in the batch: the removal holds all the same.
	res := e2e.Run(t, "", env, "device", "remove", "00:04:f2:00:00:01")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "removed device "+retired+" from the inventory (last seen ") {
		t.Fatalf("device remove: exit %d %q %q", res.Code, res.Stdout, res.Stderr)
	}
	if got := strings.Join(devices(), " "); got != kept+" "+longSerial {
		t.Errorf("devices after remove: %s", got)
	}
	res = e2e.Run(t, "", env, "device", "remove", retired)
	if res.Code != 1 || res.Stderr != "deviceupdate: no device \""+retired+"\" in the inventory; `deviceupdate device list` shows them\n" {
		t.Errorf("removing an unknown device: exit %d %q", res.Code, res.Stderr)
	}

	// Long cells push the next column along instead of running into it.
	list := e2e.Run(t, "", env, "device", "list").Stdout
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 3 {
		t.Fatalf("device list:\n%s", list)
	}
	col := strings.Index(lines[0], "MODEL")
	for _, l := range lines[1:] {
		if col > len(l) || l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("device list: MODEL is not a column of its own:\n%s", list)
		}
	}

	for _, bad := range [][]string{{"device", "prune"}, {"device", "prune", "--not-seen", "soon"}, {"device", "prune", "--not-seen", "0d"}} {
		if res := e2e.Run(t, "", env, bad...); res.Code != 2 || strings.Count(res.Stderr, "\n") != 1 {
			t.Errorf("%v: exit %d %q, want a usage error", bad, res.Code, res.Stderr)
		}
	}
	if res := e2e.Run(t, "", env, "device", "prune", "--not-seen", "30d"); res.Code != 0 || !strings.Contains(res.Stdout, "nothing to forget") {
		t.Errorf("prune with nothing to forget: exit %d %q %q", res.Code, res.Stdout, res.Stderr)
	}

	// Phones a load test left a month ago, written while the server is down.
	if code := srv.Stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	db, err := store.Open(srv.Data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var old []deviceupdate.Device
	for i := range 3 {
		old = append(old, deviceupdate.Device{ID: fmt.Sprintf("SN-LOAD-%d", i), Serial: fmt.Sprintf("SN-LOAD-%d", i), LastSeen: time.Now().Add(-40 * 24 * time.Hour), Polls: 1})
	}
	if err := db.PutDevices(old); err != nil {
		t.Fatal(err)
	}
	db.Close()
	srv = e2e.Start(t, e2e.Options{Data: srv.Data, Certs: srv.Certs})
	env = []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}

	res = e2e.Run(t, "", env, "device", "prune", "--not-seen", "720h")
	if res.Code != 2 || !strings.Contains(res.Stderr, "forget 3 devices not seen since ") || !strings.Contains(res.Stderr, "confirm with --yes") {
		t.Errorf("prune without --yes and no terminal: exit %d %q", res.Code, res.Stderr)
	}
	if got := len(devices()); got != 5 {
		t.Errorf("%d devices after an unconfirmed prune, want 5", got)
	}
	res = e2e.Run(t, "", env, "device", "prune", "--not-seen", "30d", "--yes")
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, "forgot 3 devices not seen since ") {
		t.Errorf("prune --yes: exit %d %q %q", res.Code, res.Stdout, res.Stderr)
	}
	if got := strings.Join(devices(), " "); got != kept+" "+longSerial {
		t.Errorf("devices after prune: %s", got)
	}

	audit := e2e.Run(t, "", env, "audit", "list", "--action", "device.").Stdout
	if !strings.Contains(audit, "device.remove") || !strings.Contains(audit, "device.prune") {
		t.Errorf("audit list lacks the removal or the prune:\n%s", audit)
	}
}
