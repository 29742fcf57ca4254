package main_test

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// TestSitesAndDeviceSettings: a phone is placed in the site whose subnet
// holds its address; peer sharing resolves device, then site, then global;
// a site's host names go into the download URLs; a test device limited to
// a site gets the pending build only there.
func TestSitesAndDeviceSettings(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	run := func(args ...string) e2e.Result {
		t.Helper()
		res := e2e.Run(t, "", env, args...)
		if res.Code != 0 {
			t.Fatalf("%s: %s", strings.Join(args, " "), res.Stderr)
		}
		return res
	}
	for _, v := range []string{"4.0.7577.4366", "4.0.7577.4400"} {
		files := testpkg.Files{}
		testpkg.AddUpdate(t, files, "", v, testpkg.Image(4<<10, 1), sign)
		run("import", testpkg.MakeCab(t, files))
		if v == "4.0.7577.4366" {
			run("rule", "approve", "UCPhone/Polycom/CX600/A/ENU/CPE")
		}
	}
	poll := func(mac, running string) upx.Response {
		t.Helper()
		code, body := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(mac, "CX600", running))
		if code != 200 {
			t.Fatalf("poll %s: %d %s", mac, code, body)
		}
		var res upx.Response
		if err := xml.Unmarshal([]byte(body), &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	const phone, other = "00-04-F2-00-00-0A", "00-04-F2-00-00-0B"

	// No site yet: a test device cannot be limited to it.
	res := e2e.Run(t, "", env, "testdevice", "add", "--name", "lab", "--mac", phone, "--site", "Lab")
	if res.Code != 1 || !strings.Contains(res.Stderr, `no site named "Lab"`) {
		t.Fatalf("a test device at a site that does not exist: exit %d %q", res.Code, res.Stderr)
	}
	// Away from its site, the limited test device is an ordinary phone.
	run("site", "set", "Lab", "--subnet", "10.9.0.0/16")
	run("testdevice", "add", "--name", "lab", "--mac", phone, "--site", "Lab")
	if got := poll(phone, "4.0.7577.4100"); got.Version != "4.0.7577.4366" || got.PeerSharing.Enabled {
		t.Fatalf("outside its site: %+v", got)
	}

	run("config", "set", "PeerFirmwareSharing=true")
	if got := poll(other, "4.0.7577.4100"); !got.PeerSharing.Enabled {
		t.Errorf("global PeerFirmwareSharing=true not applied: %+v", got.PeerSharing)
	}

	// The phones poll from 127.0.0.1, which the site Lab now holds.
	res = run("site", "set", "Lab", "--subnet", "127.0.0.0/8", "--subnet", "10.9.0.0/16", "--json")
	var site deviceupdate.Site
	if err := json.Unmarshal([]byte(res.Stdout), &site); err != nil || len(site.Subnets) != 2 {
		t.Fatalf("site set: %v %s", err, res.Stdout)
	}
	run("config", "set", "--site", "Lab", "PeerFirmwareSharing=false", "InternalHostName=updates.lab.example:8080", "ExternalHostName=edge.example.com")
	run("device", "config", other, "PeerFirmwareSharing=true")

	tests := []struct {
		name, mac     string
		wantVersion   string
		wantSharing   bool
		wantBasePrefx string
	}{
		{"site setting wins over global", phone, "4.0.7577.4400", false, "http://updates.lab.example:8080/DeviceUpdateFiles_Int/"},
		{"device setting wins over site", other, "4.0.7577.4366", true, "http://updates.lab.example:8080/DeviceUpdateFiles_Int/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := poll(tt.mac, "4.0.7577.4100")
			if got.Version != tt.wantVersion || got.PeerSharing.Enabled != tt.wantSharing || !strings.HasPrefix(got.BaseURL, tt.wantBasePrefx) {
				t.Errorf("got version %s, sharing %v, base %s; want %s, %v, %s...", got.Version, got.PeerSharing.Enabled, got.BaseURL, tt.wantVersion, tt.wantSharing, tt.wantBasePrefx)
			}
			if _, port, _ := strings.Cut(strings.TrimPrefix(got.ExternalBaseURL, "https://edge.example.com"), ":"); !strings.HasPrefix(got.ExternalBaseURL, "https://edge.example.com:") || port == "" {
				t.Errorf("external base %s: want edge.example.com with the HTTPS port", got.ExternalBaseURL)
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		for _, args := range [][]string{
			{"site", "set", "Other", "--subnet", "10.9.0.0/16"},                // subnet of Lab
			{"site", "set", "Bad", "--subnet", "10.0.0.0/33"},                  // not CIDR
			{"site", "remove", "Lab"},                                          // a test device is limited to it
			{"config", "set", "--site", "Nowhere", "PeerFirmwareSharing=true"}, // no such site
			{"device", "config", other, "PollIntervalSeconds=3600"},            // not a device setting
			{"config", "set", "InternalHostName=bad host"},                     // not a host
			{"device", "config", "not a device!", "PeerFirmwareSharing="},      // not an identifier
		} {
			if res := e2e.Run(t, "", env, args...); res.Code != 1 || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
				t.Errorf("%s: exit %d, stderr %q; want 1 and one line", strings.Join(args, " "), res.Code, res.Stderr)
			}
		}
	})

	if res := e2e.Run(t, "", env, "site", "remove", "Lab"); !strings.Contains(res.Stderr, `site Lab is in use: test device "lab" is limited to it`) {
		t.Errorf("site remove of a site in use: %q", res.Stderr)
	}

	// Removing the site drops its settings: global applies again.
	run("testdevice", "remove", "lab")
	run("site", "remove", "Lab")
	if got := poll(phone, "4.0.7577.4100"); got.Version != "4.0.7577.4366" || !got.PeerSharing.Enabled || !strings.HasPrefix(got.BaseURL, srv.InternalURL()) {
		t.Errorf("after removing the site: %+v", got)
	}
	if res := run("site", "list", "--json"); strings.TrimSpace(res.Stdout) != "[]" {
		t.Errorf("site list = %s", res.Stdout)
	}
	if res := run("audit", "list", "--json"); !strings.Contains(res.Stdout, "site.put") || !strings.Contains(res.Stdout, "device.config.set") || !strings.Contains(res.Stdout, "site.remove") {
		t.Error("site and device setting changes are not in the audit trail")
	}
	if res := run("audit", "list", "--action", "site.remove", "--json"); !strings.Contains(res.Stdout, `"settings":{"ExternalHostName":"edge.example.com"`) {
		t.Errorf("the removal of a site is audited without the settings it took: %s", res.Stdout)
	}
}
