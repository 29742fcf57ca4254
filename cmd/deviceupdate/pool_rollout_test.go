package main_test

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// TestPoolRollout: a staged rollout decided by two `serve` on one
// PostgreSQL database is one rollout: --max-per-hour caps the new offers
// of the pool, not of each node, and a device offered the new version by
// one node keeps it when it polls the other, after the window closed
// (the site's time zone moved) and with the cap reached, though that node
// never offered it.
func TestPoolRollout(t *testing.T) {
	pool := startPool(t, 2)
	nodes := pool.nodes
	n1, n2 := nodes[0], nodes[1]
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, n1.Server, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	for i, version := range []string{"4.0.7577.4100", "4.0.7577.4366"} {
		f := testpkg.Files{}
		testpkg.AddUpdate(t, f, "", version, testpkg.Image(64<<10, byte(i+1)), sign)
		n1.run(t, "import", testpkg.MakeCab(t, f))
		if i == 0 {
			n1.run(t, "rule", "approve", ruleIDCX600)
		}
	}
	// A window open now, five hours wide, in UTC: twelve hours away it is
	// closed.
	now := time.Now().UTC()
	window := now.Add(-2*time.Hour).Format("15:04") + "-" + now.Add(3*time.Hour).Format("15:04")
	n1.run(t, "config", "set", "TimeZone=UTC")
	const maxPerHour = 3
	n1.run(t, "rule", "approve", ruleIDCX600, "--waves", "100", "--window", window, "--max-per-hour", fmt.Sprint(maxPerHour))

	// Twelve phones, all in the one wave, polling the nodes in turn.
	offeredBy := map[string]string{} // MAC → the URL of the node that offered it
	for i := range 12 {
		mac := fmt.Sprintf("00-04-F2-00-60-%02X", i)
		n := nodes[i%2]
		if res := n.pollOK(t, mac); res.Version == "4.0.7577.4366" {
			offeredBy[mac] = n.URL()
		} else if res.Version != "" {
			t.Fatalf("%s offered %s", mac, res.Version)
		}
	}
	if len(offeredBy) != maxPerHour {
		t.Errorf("the pool offered the new version to %d phones within the hour, want --max-per-hour %d: %v", len(offeredBy), maxPerHour, offeredBy)
	}

	// The window closes: the site's time zone moves twelve hours. The poll
	// interval, changed with it, tells when node 2 reads the change.
	n1.run(t, "config", "set", "TimeZone=Etc/GMT-12", "PollIntervalSeconds=7200")
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := post(t, http.DefaultClient, n2.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody("00-04-F2-00-61-00", "CX700", "1.0.0.1")) // no rule: the poll touches no rollout
		var res upx.Response
		if code == http.StatusOK && xml.Unmarshal([]byte(body), &res) == nil && res.PollIntervalSeconds >= 7200-720 && res.PollIntervalSeconds <= 7200+720 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 2 did not read the settings changed on node 1 within 5 s: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 12 {
		mac := fmt.Sprintf("00-04-F2-00-60-%02X", i)
		for _, n := range nodes {
			want := ""
			if _, ok := offeredBy[mac]; ok {
				want = "4.0.7577.4366"
			}
			if res := n.pollOK(t, mac); res.Version != want {
				t.Errorf("%s polling %s after the window closed is offered %q, want %q (offered by %s)", mac, n.URL(), res.Version, want, offeredBy[mac])
			}
		}
	}
}

// ruleIDCX600 is the rule of the CX600 phones pollBody describes.
var ruleIDCX600 = deviceupdate.RuleID(deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"})
