package poll_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

// TestPollRollout: under a staged rollout, only devices in the current
// wave are offered its version, no more new ones an hour than the cap;
// after a restart of the store, the devices offered it keep it, the cap
// still counts them, and the others are answered as before.
func TestPollRollout(t *testing.T) {
	f := newFixture(t)
	f.addUpdate(t, cx600, "4.0.7577.4100", map[string][]byte{"CPE.nbt": content(100, 1)})
	f.approve(t, cx600)
	f.addUpdate(t, cx600, "4.0.7577.4366", map[string][]byte{"CPE.nbt": content(100, 2)})
	f.addUpdate(t, cx700, "4.0.7577.4366", map[string][]byte{"CPE.nbt": content(100, 3)})
	f.approve(t, cx700)
	o := deviceupdate.RolloutOptions{Waves: []int{30, 100}, Soak: time.Hour, MaxFailures: 0.1, MaxPerHour: 3}
	r, err := f.db.StartRollout(deviceupdate.RuleID(cx600), o, "poll-test", f.now)
	if err != nil {
		t.Fatal(err)
	}
	poll := func(mac string) string {
		t.Helper()
		ans, err := f.svc.Poll(context.Background(), request("CX600", mac, "", "4.0.7577.4100"), outside)
		if err != nil {
			t.Fatal(err)
		}
		return offered(ans)
	}
	var macs []string
	answers := map[string]string{}
	members := 0
	for i := range 40 {
		mac := fmt.Sprintf("00-04-F2-00-01-%02X", i)
		macs = append(macs, mac)
		answers[mac] = poll(mac)
		switch {
		case answers[mac] == "4.0.7577.4366" && !r.Member(mac):
			t.Errorf("%s, outside the wave, was offered the rollout's version", mac)
		case answers[mac] != "" && answers[mac] != "4.0.7577.4366":
			t.Errorf("%s was offered %s", mac, answers[mac])
		}
		if r.Member(mac) {
			members++
		}
	}
	if got := countOffers(answers); got != 3 || members <= 3 {
		t.Fatalf("%d of %d members offered the new version; want the cap, 3", got, members)
	}
	// A device of another model is answered as without a rollout.
	if ans, err := f.svc.Poll(context.Background(), request("CX700", macs[0], "", "4.0.7577.4100"), outside); err != nil || offered(ans) != "4.0.7577.4366" {
		t.Fatalf("CX700 offered %q, %v; want its approved version", offered(ans), err)
	}

	f.restart(t)
	f.now = f.now.Add(time.Minute)
	for _, mac := range slices.Backward(macs) { // others first: they must not take the cap
		if got := poll(mac); got != answers[mac] {
			t.Errorf("after a restart %s is offered %q; was %q", mac, got, answers[mac])
		}
	}
	// The next hour, the cap allows three more.
	f.now = f.now.Add(time.Hour)
	later := map[string]string{}
	for _, mac := range macs {
		later[mac] = poll(mac)
	}
	if got := countOffers(later); got != min(6, members) {
		t.Errorf("the next hour %d devices are offered the new version; want %d", got, min(6, members))
	}
}

func countOffers(answers map[string]string) int {
	n := 0
	for _, v := range answers {
		if v == "4.0.7577.4366" {
			n++
		}
	}
	return n
}

// TestPollRolloutWindow: new offers are made only within the window, in
// the TimeZone setting's zone: the site's over the global one.
func TestPollRolloutWindow(t *testing.T) {
	f := newFixture(t) // f.now is 08:00 UTC, midnight in Los Angeles
	withRedmond(t, f)
	f.addUpdate(t, cx600, "4.0.7577.4100", map[string][]byte{"CPE.nbt": content(100, 1)})
	f.approve(t, cx600)
	f.addUpdate(t, cx600, "4.0.7577.4366", map[string][]byte{"CPE.nbt": content(100, 2)})
	night, err := deviceupdate.ParseWindow("22:00-05:00")
	if err != nil {
		t.Fatal(err)
	}
	o := deviceupdate.RolloutOptions{Waves: []int{100}, Soak: time.Hour, Window: night}
	if _, err := f.db.StartRollout(deviceupdate.RuleID(cx600), o, "window-test", f.now); err != nil {
		t.Fatal(err)
	}
	f.set(t, deviceupdate.ScopeGlobal, map[string]string{"TimeZone": "UTC"})
	f.set(t, "site:Redmond", map[string]string{"TimeZone": "America/Los_Angeles"})
	tests := []struct {
		name, remote, want string
	}{
		{"global zone: 08:00, shut", outside, ""},
		{"site's zone: 00:00, open", "10.1.0.5", "4.0.7577.4366"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans, err := f.svc.Poll(context.Background(), request("CX600", fmt.Sprintf("00-04-F2-00-03-%02X", i), "", "4.0.7577.4100"), tt.remote)
			if err != nil || offered(ans) != tt.want {
				t.Errorf("offered %q, %v; want %q", offered(ans), err, tt.want)
			}
		})
	}
}

// TestPollRolloutDeviceInterval: a device a rollout offered its version
// to is judged by the poll interval its answer gave: its site's, which
// the inventory records with the poll.
func TestPollRolloutDeviceInterval(t *testing.T) {
	f := newFixture(t)
	withRedmond(t, f)
	f.set(t, "site:Redmond", map[string]string{"PollIntervalSeconds": "604800"})
	f.addUpdate(t, cx600, "4.0.7577.4100", map[string][]byte{"CPE.nbt": content(100, 1)})
	f.approve(t, cx600)
	f.addUpdate(t, cx600, "4.0.7577.4366", map[string][]byte{"CPE.nbt": content(100, 2)})
	o := deviceupdate.RolloutOptions{Waves: []int{100}, Soak: time.Hour, MaxFailures: 0.1}
	r, err := f.db.StartRollout(deviceupdate.RuleID(cx600), o, "interval-test", f.now)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := f.svc.Poll(context.Background(), request("CX600", "00-04-F2-00-04-01", "", "4.0.7577.4100"), redmond)
	if err != nil || offered(ans) != "4.0.7577.4366" {
		t.Fatalf("offered %q, %v; want the rollout's version", offered(ans), err)
	}
	if err := f.rec.Flush(); err != nil {
		t.Fatal(err)
	}
	devices, err := f.db.RolloutDevices(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(devices) != 1 || devices[0].Interval != ans.PollInterval || ans.PollInterval < 500000 {
		t.Fatalf("rollout devices %+v; want the one, with the answer's interval %d (Redmond's week, jittered)", devices, ans.PollInterval)
	}
	if h, why := r.Judge(devices[0], 24*time.Hour, time.Hour, f.now.Add(4*24*time.Hour)); h != deviceupdate.HealthPending {
		t.Errorf("four days after the offer it is judged %s (%s); want pending: it polls weekly", h, why)
	}
}
