package main_test

import (
	"encoding/json"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/loadgen"
)

// TestPhoneLoad: the load tool's polls are all answered, and every
// distinct phone lands in the inventory with its poll count.
func TestPhoneLoad(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	res := e2e.Run(t, "", nil, "phone", "load", "--server", srv.URL(), "--certs", srv.Certs,
		"--phones", "50", "--requests", "200", "--concurrency", "4", "--json")
	var r loadgen.Result
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil || res.Code != 0 {
		t.Fatalf("phone load: exit %d %v\n%s%s", res.Code, err, res.Stdout, res.Stderr)
	}
	if r.Requests != 200 || r.OK != 200 || r.Failed != 0 {
		t.Fatalf("result = %+v", r)
	}
	res = e2e.Run(t, "", []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}, "device", "list", "--json")
	var devices []deviceupdate.Device
	if err := json.Unmarshal([]byte(res.Stdout), &devices); err != nil {
		t.Fatal(err)
	}
	if len(devices) != 50 {
		t.Fatalf("%d devices in the inventory, want 50", len(devices))
	}
	for _, d := range devices {
		if d.Polls != 4 || d.Trigger != "periodic" {
			t.Fatalf("device %s: %d polls, trigger %q; want 4 periodic", d.ID, d.Polls, d.Trigger)
		}
	}
	res = e2e.Run(t, "", nil, "phone", "load", "--server", "ftp://x")
	if res.Code != 2 {
		t.Errorf("bad --server: exit %d %s", res.Code, res.Stderr)
	}
}
