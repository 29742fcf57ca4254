package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
)

var (
	oldVersion = deviceupdate.MustParseVersion("4.0.7577.4100")
	newVersion = deviceupdate.MustParseVersion("4.0.7577.4366")
)

// rolloutService is a service whose rule for key approves oldVersion
// with newVersion pending.
func rolloutService(t *testing.T) *admin.Service {
	t.Helper()
	s, _ := openService(t)
	ctx := context.Background()
	for _, v := range []deviceupdate.Version{oldVersion, newVersion} {
		_, err := s.DB.CommitImport([]*deviceupdate.StoredUpdate{{RuleKey: key, Version: v,
			Images: []deviceupdate.UpdateFile{{Name: "CPE.nbt", Size: 1, SHA256: v.String()}}}})
		if err != nil {
			t.Fatal(err)
		}
		if v == oldVersion {
			if _, _, err := s.ChangeRule(ctx, deviceupdate.RuleID(key), deviceupdate.RuleApprove, nil, "alice"); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}

// fleet is n simulated phones of key polling the store as the inventory
// records them; a phone that fails reverts to the old version one poll
// after it reported the new one, and stays there.
type fleet struct {
	running  map[string]deviceupdate.Version
	reported map[string]bool // reported the new version
	fails    func(i int) bool
	ids      []string
	exposed  map[string]bool // ever offered the new version
	hour     int64           // the hour offers counts new offers of
	offers   int
	interval int // the poll interval the answers give, seconds; 0: none
}

func newFleet(n int, fails func(i int) bool) *fleet {
	f := &fleet{running: map[string]deviceupdate.Version{}, reported: map[string]bool{}, fails: fails, exposed: map[string]bool{}}
	for i := range n {
		id := fmt.Sprintf("00-04-F2-10-%02X-%02X", i>>8, i&0xff)
		f.ids = append(f.ids, id)
		f.running[id] = oldVersion
	}
	return f
}

// poll makes every phone poll at at: each is answered by
// deviceupdate.Decide under the rule and rollout in the store, and
// installs what it is offered for its next poll.
func (f *fleet) poll(t *testing.T, s *admin.Service, at time.Time) {
	t.Helper()
	rule, err := s.DB.FindRule(deviceupdate.RuleID(key))
	if err != nil {
		t.Fatal(err)
	}
	var ro *deviceupdate.Rollout
	if r, err := s.DB.Rollout(rule.ID); err == nil && r.Active() {
		ro = r
	}
	var batch []deviceupdate.Device
	if h := at.Unix() / 3600; h != f.hour {
		f.hour, f.offers = h, 0
	}
	for i, id := range f.ids {
		running := f.running[id]
		d := deviceupdate.Decide(deviceupdate.OfferInput{Rule: rule, Device: id, Running: running, Rollout: ro, RolloutOffered: f.exposed[id], Now: at, OffersThisHour: f.offers})
		if d.Reason == deviceupdate.OfferRollout && !f.exposed[id] {
			f.offers++
		}
		req := deviceupdate.PollRequest{DeviceType: key.DeviceType, MAC: id, Brand: key.Brand, Model: key.Model, Revision: key.Revision, Locale: key.Locale,
			Modules: []deviceupdate.Module{{UpdateType: key.UpdateType, Version: running}}}
		dev := deviceupdate.DeviceFromPoll(req, "10.0.0.1", at, d.Version)
		dev.PollInterval = f.interval
		batch = append(batch, dev)
		switch {
		case running == newVersion && f.fails(i):
			f.running[id] = oldVersion // reverts, for good
			f.reported[id] = true
		case d.Offered() && !(f.fails(i) && f.reported[id]):
			f.running[id] = d.Version
		}
		if d.Version == newVersion {
			f.exposed[id] = true
		}
	}
	if err := s.DB.PutDevices(batch); err != nil {
		t.Fatal(err)
	}
}

// run polls and evaluates every 30 minutes for at most rounds rounds,
// until the rollout ends or pauses, and returns it.
func (f *fleet) run(t *testing.T, s *admin.Service, start time.Time, rounds int) deviceupdate.Rollout {
	t.Helper()
	at := start
	for range rounds {
		f.poll(t, s, at)
		if _, err := s.EvaluateRollouts(context.Background(), at); err != nil {
			t.Fatal(err)
		}
		r, _, err := s.Rollout(context.Background(), deviceupdate.RuleID(key))
		if err != nil {
			t.Fatal(err)
		}
		if r.State != deviceupdate.RolloutRunning {
			return r
		}
		at = at.Add(30 * time.Minute)
	}
	t.Fatalf("the rollout still runs after %d rounds", rounds)
	return deviceupdate.Rollout{}
}

// startFleetRollout starts a 10,50,100 rollout at t0 that needs 5
// devices judged and allows 10% to fail.
func startFleetRollout(t *testing.T) (s *admin.Service, id string, t0 time.Time) {
	t.Helper()
	s = rolloutService(t)
	t0 = time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return t0 }
	id = deviceupdate.RuleID(key)
	o := deviceupdate.RolloutOptions{Waves: []int{10, 50, 100}, Soak: time.Hour, MaxFailures: 0.1, MinDevices: 5}
	if _, err := s.StartRollout(context.Background(), id, o, "alice"); err != nil {
		t.Fatal(err)
	}
	return s, id, t0
}

func TestRolloutHealthyFleetCompletes(t *testing.T) {
	s, id, t0 := startFleetRollout(t)
	rule, _ := s.DB.FindRule(id)
	want, _ := rule.Approve()
	f := newFleet(200, func(int) bool { return false })
	r := f.run(t, s, t0, 20)
	if r.State != deviceupdate.RolloutCompleted {
		t.Fatalf("rollout %s in wave %d (%s); want completed", r.State, r.Wave+1, r.Reason)
	}
	if got, _ := s.DB.FindRule(id); *got != want {
		t.Errorf("rule after completion %+v; want %+v, as a plain approve leaves it", got, want)
	}
	assertActions(t, s, "rule.rollout.start", "rule.rollout.promote", "rule.rollout.promote", "rule.rollout.complete")
}

// Devices are judged by the poll interval their answers gave (their
// site's), not the global one: phones of a site that polls weekly are
// not silent four days after the offer.
func TestRolloutJudgesByDeviceInterval(t *testing.T) {
	tests := []struct {
		name       string
		interval   int
		wantFailed bool
	}{
		{"a week, the site's", 7 * 24 * 3600, false},
		{"none given: the global day", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, id, t0 := startFleetRollout(t)
			f := newFleet(100, func(int) bool { return false })
			f.interval = tt.interval
			f.poll(t, s, t0)
			s.Now = func() time.Time { return t0.Add(4 * 24 * time.Hour) }
			_, stats, err := s.Rollout(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if w := stats[0]; w.Offered == 0 || (w.Failed == w.Offered) != tt.wantFailed || (w.Failed == 0) == tt.wantFailed {
				t.Errorf("four days after the offer, wave 1 %+v; want every offered device failed: %v", w, tt.wantFailed)
			}
		})
	}
}

// An ended rollout is shown as it was when it ended: a device it had
// offered its version to that had not reported yet is pending, not taken
// for silent a week later (the rollout no longer sees its polls).
func TestRolloutShownAsItEnded(t *testing.T) {
	s := rolloutService(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return t0 }
	id := deviceupdate.RuleID(key)
	o := deviceupdate.RolloutOptions{Waves: []int{100}, Soak: time.Hour, MaxFailures: 0.5, MinDevices: 1}
	if _, err := s.StartRollout(ctx, id, o, "alice"); err != nil {
		t.Fatal(err)
	}
	f := newFleet(3, func(int) bool { return false })
	f.poll(t, s, t0) // all three offered
	f.ids = f.ids[:2]
	f.poll(t, s, t0.Add(20*time.Minute)) // two report the version
	f.poll(t, s, t0.Add(40*time.Minute))
	if _, err := s.EvaluateRollouts(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return t0.Add(7 * 24 * time.Hour) }
	r, stats, err := s.Rollout(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != deviceupdate.RolloutCompleted || !r.EndedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("rollout %s, ended %s; want completed an hour after the start", r.State, r.EndedAt)
	}
	if w := stats[0]; w.Offered != 3 || w.Updated != 2 || w.Failed != 0 || w.Silent != 0 {
		t.Errorf("a week after completion it shows %+v; want 3 offered, 2 updated, none failed or silent", w)
	}
}

// A small fleet's first wave reaches --min-devices of the phones the
// inventory knows: 5% of 30 phones is one or two, and the rollout would
// wait for ever for five to be judged. The first wave grows at most to
// the second's size; with a second wave of 50% the five lowest of 30
// phones are within it but for a chance of 3 in 100,000 (the rollout's
// ID is random), with 25% they were not one time in ten.
func TestRolloutSmallFleetReachesMinimum(t *testing.T) {
	s := rolloutService(t)
	t0 := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return t0 }
	f := newFleet(30, func(int) bool { return false })
	f.poll(t, s, t0.Add(-time.Hour)) // the boot: the inventory knows them
	id := deviceupdate.RuleID(key)
	o := deviceupdate.RolloutOptions{Waves: []int{5, 50, 100}, Soak: time.Hour, MaxFailures: 0.1, MinDevices: 5}
	r, err := s.StartRollout(context.Background(), id, o, "alice")
	if err != nil {
		t.Fatal(err)
	}
	first := 0
	for _, dev := range f.ids {
		if r.InWave(dev, 5) {
			first++
		}
	}
	if first < 5 {
		t.Fatalf("the first wave holds %d of the 30 phones; want at least 5", first)
	}
	if r = f.run(t, s, t0, 20); r.State != deviceupdate.RolloutCompleted {
		t.Fatalf("rollout %s in wave %d; want completed", r.State, r.Wave+1)
	}
}

// The last wave completes only when every phone polling has been offered
// the version: completing approves the rule, which would offer all the
// phones the hourly cap still held back at once.
func TestRolloutCapHoldsCompletion(t *testing.T) {
	s := rolloutService(t)
	t0 := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return t0 }
	id := deviceupdate.RuleID(key)
	o := deviceupdate.RolloutOptions{Waves: []int{10, 50, 100}, Soak: time.Hour, MaxFailures: 0.1, MinDevices: 5, MaxPerHour: 30}
	if _, err := s.StartRollout(context.Background(), id, o, "alice"); err != nil {
		t.Fatal(err)
	}
	f := newFleet(200, func(int) bool { return false })
	var hourly map[int64]int
	at := t0
	for range 40 {
		before := len(f.exposed)
		f.poll(t, s, at)
		if hourly == nil {
			hourly = map[int64]int{}
		}
		hourly[at.Unix()/3600] += len(f.exposed) - before
		if _, err := s.EvaluateRollouts(context.Background(), at); err != nil {
			t.Fatal(err)
		}
		r, _, err := s.Rollout(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == deviceupdate.RolloutCompleted {
			if len(f.exposed) != len(f.ids) {
				t.Fatalf("completed with %d of %d phones offered the version; the approval offers the other %d at once",
					len(f.exposed), len(f.ids), len(f.ids)-len(f.exposed))
			}
			for h, n := range hourly {
				if n > o.MaxPerHour {
					t.Errorf("hour %d: %d new offers; want at most %d", h, n, o.MaxPerHour)
				}
			}
			return
		}
		at = at.Add(30 * time.Minute)
	}
	t.Fatalf("not completed after 20 hours; %d of %d offered", len(f.exposed), len(f.ids))
}

func TestRolloutRevertingFleetPauses(t *testing.T) {
	s, id, t0 := startFleetRollout(t)
	ctx := context.Background()
	f := newFleet(200, func(i int) bool { return i%2 == 0 })
	r := f.run(t, s, t0, 20)
	if r.State != deviceupdate.RolloutPaused || r.Wave != 0 || !strings.Contains(r.Reason, "reverted") {
		t.Fatalf("rollout %s in wave %d (%q); want paused in wave 1 for reverts", r.State, r.Wave+1, r.Reason)
	}
	if len(f.exposed) > len(f.ids)/4 {
		t.Errorf("%d of %d phones were offered the new version; want at most a quarter", len(f.exposed), len(f.ids))
	}
	list, _ := s.AuditEntries(ctx, deviceupdate.AuditFilter{Action: "rule.rollout.pause"})
	if len(list.Entries) != 1 || list.Entries[0].Actor != admin.RolloutActor || !strings.Contains(string(list.Entries[0].After), "reverted") {
		t.Fatalf("pause entries %+v; want one by %s with the reason", list.Entries, admin.RolloutActor)
	}
	// Reset aborts: the exposed phones are offered the previous version.
	if _, _, err := s.ChangeRule(ctx, id, deviceupdate.RuleReset, nil, "bob"); err != nil {
		t.Fatal(err)
	}
	rule, _ := s.DB.FindRule(id)
	for dev := range f.exposed {
		d := deviceupdate.Decide(deviceupdate.OfferInput{Rule: rule, Device: dev, Running: newVersion})
		if d.Version != oldVersion {
			t.Errorf("after reset %s running the new version is offered %s; want %s", dev, d.Version, oldVersion)
		}
	}
	assertActions(t, s, "rule.rollout.start", "rule.rollout.pause", "rule.rollout.abort")
}

// A resume accepts the failures judged so far: the rollout goes on
// rather than pause again at once, and new failures still stop it.
func TestRolloutResumeAcceptsFailures(t *testing.T) {
	s, id, t0 := startFleetRollout(t)
	ctx := context.Background()
	f := newFleet(200, func(i int) bool { return i%2 == 0 })
	r := f.run(t, s, t0, 20)
	if r.State != deviceupdate.RolloutPaused || r.Wave != 0 {
		t.Fatalf("rollout %s in wave %d; want paused in wave 1", r.State, r.Wave+1)
	}
	_, stats, err := s.Rollout(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	failed := stats[0].Failed
	resumedAt := t0.Add(12 * time.Hour)
	s.Now = func() time.Time { return resumedAt }
	if r, err = s.ResumeRollout(ctx, id, "alice"); err != nil || r.Accepted != failed {
		t.Fatalf("resume: %+v, %v; want %d failures accepted", r, err, failed)
	}
	r = f.run(t, s, resumedAt, 20)
	if r.State != deviceupdate.RolloutPaused || r.Wave != 1 || !strings.Contains(r.Reason, fmt.Sprintf("besides %d accepted", failed)) {
		t.Fatalf("after resume: %s in wave %d (%q); want paused again in wave 2 for its own failures", r.State, r.Wave+1, r.Reason)
	}
	assertActions(t, s, "rule.rollout.start", "rule.rollout.pause", "rule.rollout.resume", "rule.rollout.promote", "rule.rollout.pause")
}

// TestRolloutAdminChanges: pause and resume are audited; refusals change
// nothing.
func TestRolloutAdminChanges(t *testing.T) {
	s := rolloutService(t)
	ctx := context.Background()
	id := deviceupdate.RuleID(key)
	o := deviceupdate.RolloutOptions{Waves: []int{10, 100}, Soak: time.Hour, MaxFailures: 0.1}
	steps := []struct {
		name string
		do   func() error
		want string // error code, "" for success
	}{
		{"resume before start", func() error { _, err := s.ResumeRollout(ctx, id, "alice"); return err }, deviceupdate.ENOTFOUND},
		{"bad options", func() error {
			_, err := s.StartRollout(ctx, id, deviceupdate.RolloutOptions{Waves: []int{10, 90}, Soak: time.Hour}, "alice")
			return err
		}, deviceupdate.EINVALID},
		{"start", func() error { _, err := s.StartRollout(ctx, id, o, "alice"); return err }, ""},
		{"start again", func() error { _, err := s.StartRollout(ctx, id, o, "alice"); return err }, deviceupdate.ECONFLICT},
		{"approve while running", func() error { _, _, err := s.ChangeRule(ctx, id, deviceupdate.RuleApprove, nil, "alice"); return err }, deviceupdate.ECONFLICT},
		{"restore while running", func() error { _, _, err := s.ChangeRule(ctx, id, deviceupdate.RuleRestore, nil, "alice"); return err }, deviceupdate.ECONFLICT},
		{"resume while running", func() error { _, err := s.ResumeRollout(ctx, id, "alice"); return err }, deviceupdate.ECONFLICT},
		{"pause", func() error { _, err := s.PauseRollout(ctx, id, "alice"); return err }, ""},
		{"pause again", func() error { _, err := s.PauseRollout(ctx, id, "alice"); return err }, deviceupdate.ECONFLICT},
		{"resume", func() error { _, err := s.ResumeRollout(ctx, id, "alice"); return err }, ""},
	}
	for _, st := range steps {
		rule, _ := s.DB.FindRule(id)
		ro, _ := s.DB.Rollout(id)
		err := st.do()
		if deviceupdate.ErrorCode(err) != st.want {
			t.Fatalf("%s: %v; want %q", st.name, err, st.want)
		}
		if st.want == "" {
			continue
		}
		if after, _ := s.DB.FindRule(id); *after != *rule {
			t.Errorf("%s changed the rule", st.name)
		}
		if after, _ := s.DB.Rollout(id); fmt.Sprint(after) != fmt.Sprint(ro) {
			t.Errorf("%s changed the rollout", st.name)
		}
	}
	r, _, _ := s.Rollout(ctx, id)
	if r.State != deviceupdate.RolloutRunning {
		t.Errorf("after resume: %s", r.State)
	}
	list, _ := s.AuditEntries(ctx, deviceupdate.AuditFilter{Action: "rule.rollout.pause"})
	if len(list.Entries) != 2 || list.Entries[0].Result != "ok" || list.Entries[1].Result == "ok" {
		t.Errorf("pause entries %+v; want the pause and the refused second one", list.Entries)
	}
}

// assertActions checks the trail's ok rollout entries, in order.
func assertActions(t *testing.T, s *admin.Service, want ...string) {
	t.Helper()
	list, err := s.AuditEntries(context.Background(), deviceupdate.AuditFilter{Action: "rule.rollout."})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list.Entries {
		if e.Result == "ok" {
			got = append(got, e.Action)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audited %v; want %v", got, want)
	}
}

// TestRolloutPollInterval: Service.PollInterval (serve's hidden
// --rollout-poll-interval, for simulations that compress time) is the
// interval devices are judged by, instead of PollIntervalSeconds.
func TestRolloutPollInterval(t *testing.T) {
	tests := []struct {
		name       string
		interval   time.Duration
		wantSilent bool
	}{
		{"the setting: a day", 0, false},
		{"10s", 10 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, id, t0 := startFleetRollout(t)
			s.PollInterval = tt.interval
			f := newFleet(100, func(int) bool { return false })
			f.poll(t, s, t0) // offered, then quiet
			s.Now = func() time.Time { return t0.Add(15 * time.Second) }
			_, stats, err := s.Rollout(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if stats[0].Offered == 0 || (stats[0].Silent == stats[0].Offered) != tt.wantSilent || (stats[0].Silent == 0) == tt.wantSilent {
				t.Errorf("15s after the offer, wave 1 %+v; want every offered device silent: %v", stats[0], tt.wantSilent)
			}
		})
	}
}
