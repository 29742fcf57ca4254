package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/loadgen"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
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

// TestPhoneLoadServers: with --server repeated, the polls go to each
// server in turn, so every server records its share of the phones (as
// a load balancer spreads phones over a pool's front ends).
func TestPhoneLoadServers(t *testing.T) {
	a, b := e2e.Start(t, e2e.Options{}), e2e.Start(t, e2e.Options{})
	res := e2e.Run(t, "", nil, "phone", "load", "--server", a.InternalURL(), "--server", b.InternalURL(),
		"--phones", "10", "--requests", "20", "--concurrency", "2", "--json")
	var r loadgen.Result
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil || res.Code != 0 {
		t.Fatalf("phone load: exit %d %v\n%s%s", res.Code, err, res.Stdout, res.Stderr)
	}
	if r.OK != 20 {
		t.Fatalf("result = %+v", r)
	}
	for name, srv := range map[string]*e2e.Server{"first": a, "second": b} {
		res = e2e.Run(t, "", []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}, "device", "list", "--json")
		var devices []deviceupdate.Device
		if err := json.Unmarshal([]byte(res.Stdout), &devices); err != nil {
			t.Fatal(err)
		}
		if len(devices) != 5 {
			t.Errorf("the %s server's inventory holds %d devices, want 5 of the 10 phones", name, len(devices))
		}
		for _, d := range devices {
			if d.Polls != 2 {
				t.Errorf("the %s server: device %s polled %d times, want 2", name, d.ID, d.Polls)
			}
		}
	}
}

// TestPhoneLoadOpenLoopAndDownload: with --rate and --new-connections
// every poll is answered on its own connection; phone download fetches a
// stored file whole with many clients at once.
func TestPhoneLoadOpenLoopAndDownload(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	res := e2e.Run(t, "", nil, "phone", "load", "--server", srv.InternalURL(), "--phones", "100", "--requests", "100",
		"--rate", "400", "--new-connections", "--concurrency", "64", "--json")
	var r loadgen.Result
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil || res.Code != 0 {
		t.Fatalf("phone load: exit %d %v\n%s%s", res.Code, err, res.Stdout, res.Stderr)
	}
	if r.Requests != 100 || r.OK != 100 || r.Failed+r.Dropped != 0 || r.Seconds < 0.2 {
		t.Fatalf("open loop at 400/s: %+v (100 polls should take about 250 ms)", r)
	}

	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	files := testpkg.Files{}
	image := testpkg.Image(256<<10, 7)
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", image, testpkg.NewSigner(t, ca, testpki.Options{}))
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	if res := e2e.Run(t, "", env, "import", testpkg.MakeCab(t, files)); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	file := "/DeviceUpdateFiles_Int/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt"
	for _, base := range []string{srv.InternalURL(), srv.URL()} {
		res = e2e.Run(t, "", env, "phone", "download", "--clients", "20", "--json", base+file)
		var d loadgen.DownloadResult
		if err := json.Unmarshal([]byte(res.Stdout), &d); err != nil || res.Code != 0 {
			t.Fatalf("phone download %s: exit %d %v\n%s%s", base, res.Code, err, res.Stdout, res.Stderr)
		}
		if d.Completed != 20 || d.Failed != 0 || d.Bytes != 20*int64(len(image)) {
			t.Errorf("%s: %+v, want 20 whole downloads of %d bytes", base, d, len(image))
		}
	}
	res = e2e.Run(t, "", env, "phone", "download", "--clients", "2", srv.InternalURL()+"/DeviceUpdateFiles_Int/no/such/file")
	if res.Code != 1 || !strings.Contains(res.Stderr, "404") {
		t.Errorf("download of a missing file: exit %d, %q", res.Code, res.Stderr)
	}
}
