package deviceupdate_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

func TestRolloutFlagsParse(t *testing.T) {
	tests := []struct {
		name    string
		flags   deviceupdate.RolloutFlags
		want    deviceupdate.RolloutOptions // checked when wantErr is empty
		wantErr string                      // part of the message
	}{
		{"defaults", deviceupdate.RolloutFlags{Waves: "5,25,100"},
			deviceupdate.RolloutOptions{Waves: []int{5, 25, 100}, Soak: time.Hour, MaxFailures: 0.05}, ""},
		{"every option", deviceupdate.RolloutFlags{Waves: "10, 50%,100", Soak: "30m", MaxFailures: "10%", MinDevices: 3, Window: "22:00-05:00", MaxPerHour: 50},
			deviceupdate.RolloutOptions{Waves: []int{10, 50, 100}, Soak: 30 * time.Minute, MaxFailures: 0.1, MinDevices: 3, Window: deviceupdate.Window{Start: 22 * 60, End: 5 * 60}, MaxPerHour: 50}, ""},
		{"fraction", deviceupdate.RolloutFlags{Waves: "100", MaxFailures: "0.2"},
			deviceupdate.RolloutOptions{Waves: []int{100}, Soak: time.Hour, MaxFailures: 0.2}, ""},
		{"zero soak with a minimum", deviceupdate.RolloutFlags{Waves: "50,100", Soak: "0s", MinDevices: 5},
			deviceupdate.RolloutOptions{Waves: []int{50, 100}, MaxFailures: 0.05, MinDevices: 5}, ""},
		{"no waves", deviceupdate.RolloutFlags{}, deviceupdate.RolloutOptions{}, "want comma-separated percents"},
		{"not increasing", deviceupdate.RolloutFlags{Waves: "5,5,100"}, deviceupdate.RolloutOptions{}, "larger than the one before (5% after 5%)"},
		{"decreasing", deviceupdate.RolloutFlags{Waves: "50,25,100"}, deviceupdate.RolloutOptions{}, "larger than the one before"},
		{"not ending at 100", deviceupdate.RolloutFlags{Waves: "5,25,50"}, deviceupdate.RolloutOptions{}, "the last wave must be 100%, not 50%"},
		{"over 100", deviceupdate.RolloutFlags{Waves: "5,101"}, deviceupdate.RolloutOptions{}, "101% is not a percent"},
		{"zero percent", deviceupdate.RolloutFlags{Waves: "0,100"}, deviceupdate.RolloutOptions{}, "0% is not a percent"},
		{"not a number", deviceupdate.RolloutFlags{Waves: "5,x,100"}, deviceupdate.RolloutOptions{}, `"x" is not a percent`},
		{"too many waves", deviceupdate.RolloutFlags{Waves: strings.Repeat("1,", 30) + "100"}, deviceupdate.RolloutOptions{}, "at most 20"},
		{"zero soak, no minimum", deviceupdate.RolloutFlags{Waves: "5,100", Soak: "0s"}, deviceupdate.RolloutOptions{}, "soak of zero with no minimum"},
		{"negative soak", deviceupdate.RolloutFlags{Waves: "100", Soak: "-1h"}, deviceupdate.RolloutOptions{}, "soak -1h0m0s"},
		{"bad soak", deviceupdate.RolloutFlags{Waves: "100", Soak: "soon"}, deviceupdate.RolloutOptions{}, "want a duration"},
		{"unparseable window", deviceupdate.RolloutFlags{Waves: "100", Window: "22-05"}, deviceupdate.RolloutOptions{}, "want hh:mm-hh:mm"},
		{"window hour out of range", deviceupdate.RolloutFlags{Waves: "100", Window: "25:00-05:00"}, deviceupdate.RolloutOptions{}, "want hh:mm-hh:mm"},
		{"empty window", deviceupdate.RolloutFlags{Waves: "100", Window: "05:00-05:00"}, deviceupdate.RolloutOptions{}, "starts where it ends"},
		{"failures over 100%", deviceupdate.RolloutFlags{Waves: "100", MaxFailures: "150%"}, deviceupdate.RolloutOptions{}, "max failures"},
		{"failures NaN", deviceupdate.RolloutFlags{Waves: "100", MaxFailures: "NaN"}, deviceupdate.RolloutOptions{}, "max failures"},
		{"negative minimum", deviceupdate.RolloutFlags{Waves: "100", MinDevices: -1}, deviceupdate.RolloutOptions{}, "min devices -1"},
		{"negative rate", deviceupdate.RolloutFlags{Waves: "100", MaxPerHour: -1}, deviceupdate.RolloutOptions{}, "max per hour -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.flags.Parse()
			if tt.wantErr != "" {
				if deviceupdate.ErrorCode(err) != deviceupdate.EINVALID || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v; want EINVALID containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("Parse = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestRolloutMembership: a device in a wave stays in every larger one; a
// wave holds about its share of a fleet; another rollout reshuffles.
func TestRolloutMembership(t *testing.T) {
	a := &deviceupdate.Rollout{ID: "rollout-a", RolloutOptions: deviceupdate.RolloutOptions{Waves: []int{5, 25, 100}}}
	b := &deviceupdate.Rollout{ID: "rollout-b", RolloutOptions: a.RolloutOptions}
	const fleet = 10000
	in := map[int]int{}
	var moved, both int
	for i := range fleet {
		id := fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff)
		was := false
		for p := 1; p <= 100; p++ {
			now := a.InWave(id, p)
			if was && !now {
				t.Fatalf("%s left the rollout growing to %d%%", id, p)
			}
			was = now
		}
		for _, p := range []int{1, 5, 25, 50, 100} {
			if a.InWave(id, p) {
				in[p]++
			}
		}
		if w := a.WaveOf(id); !a.InWave(id, a.Waves[w]) || w > 0 && a.InWave(id, a.Waves[w-1]) {
			t.Fatalf("WaveOf(%s) = %d, not its first wave", id, w)
		}
		if a.InWave(id, 25) {
			if b.InWave(id, 25) {
				both++
			} else {
				moved++
			}
		}
	}
	for _, p := range []int{1, 5, 25, 50, 100} {
		want := fleet * p / 100
		if d := in[p] - want; d < -want/10-30 || d > want/10+30 {
			t.Errorf("%d%% wave holds %d of %d devices; want about %d", p, in[p], fleet, want)
		}
	}
	// Independent placements share about a quarter of a 25% wave.
	if moved < in[25]/2 {
		t.Errorf("another rollout kept %d of %d devices in its 25%% wave; want them reshuffled", both, in[25])
	}
	r := &deviceupdate.Rollout{ID: "x", RolloutOptions: a.RolloutOptions, Wave: 2}
	if !r.Member("any-device") {
		t.Error("the 100% wave leaves a device out")
	}
}

// With a Reach from ReachFor, every wave of a small fleet holds at least
// the minimum of its known devices, the same ones in every wave, and no
// device leaves as the rollout grows.
func TestRolloutReachFor(t *testing.T) {
	var known []string
	for i := range 30 {
		known = append(known, fmt.Sprintf("00-04-F2-00-00-%02X", i))
	}
	tests := []struct {
		name     string
		min      int
		wantZero bool
		want     int // known devices in the 1% wave at least
	}{
		{"no minimum", 0, true, 0},
		{"five of thirty", 5, false, 5},
		{"more than are known: no widening", 50, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &deviceupdate.Rollout{ID: "small", RolloutOptions: deviceupdate.RolloutOptions{Waves: []int{1, 50, 100}}}
			r.Reach = r.ReachFor(known, tt.min)
			if (r.Reach == 0) != tt.wantZero {
				t.Fatalf("Reach = %d; want zero: %v", r.Reach, tt.wantZero)
			}
			first := 0
			for _, id := range known {
				if r.InWave(id, 1) {
					first++
					if !r.InWave(id, 50) || r.WaveOf(id) != 0 {
						t.Errorf("%s is in the 1%% wave but not first, or not in the 50%% one", id)
					}
				}
			}
			if first < tt.want || (!tt.wantZero && first != tt.min) {
				t.Errorf("the 1%% wave holds %d of the %d known devices; want %d", first, len(known), tt.want)
			}
		})
	}
	// Six devices known of a fleet: the fifth lowest of six is placed
	// high, but the first wave grows no larger than the second.
	r := &deviceupdate.Rollout{ID: "few", RolloutOptions: deviceupdate.RolloutOptions{Waves: []int{1, 10, 100}}}
	if reach := r.ReachFor(known[:6], 5); reach == 0 || reach > 1000 {
		t.Errorf("ReachFor(6 known, 5) = %d; want at most the second wave's 1000 (10%%)", reach)
	}
}

func TestWindowOpen(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	night := deviceupdate.Window{Start: 22 * 60, End: 5 * 60}
	day := deviceupdate.Window{Start: 9 * 60, End: 17 * 60}
	utc := func(h, m int) time.Time { return time.Date(2026, 12, 5, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name string
		w    deviceupdate.Window
		at   time.Time
		loc  *time.Location
		want bool
	}{
		{"always open", deviceupdate.Window{}, utc(12, 0), time.UTC, true},
		{"wrapping, late evening", night, utc(23, 30), time.UTC, true},
		{"wrapping, early morning", night, utc(4, 59), time.UTC, true},
		{"wrapping, end is out", night, utc(5, 0), time.UTC, false},
		{"wrapping, start is in", night, utc(22, 0), time.UTC, true},
		{"wrapping, midday", night, utc(12, 0), time.UTC, false},
		{"day window", day, utc(9, 30), time.UTC, true},
		{"day window, evening", day, utc(18, 0), time.UTC, false},
		// 03:00 UTC is 22:00 in New York in December: open there, shut in UTC.
		{"site's zone opens it", night, utc(3, 0).Add(0), ny, true},
		{"site's zone shuts it", night, utc(23, 0), ny, false},
		{"nil zone is the time's own", day, utc(10, 0), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Open(tt.at, tt.loc); got != tt.want {
				t.Errorf("%s.Open(%s in %v) = %v; want %v", tt.w, tt.at, tt.loc, got, tt.want)
			}
		})
	}
	if got, err := deviceupdate.ParseWindow(night.String()); err != nil || got != night {
		t.Errorf("ParseWindow(%q) = %v, %v; want the window back", night.String(), got, err)
	}
}

func TestRolloutJudge(t *testing.T) {
	v := deviceupdate.MustParseVersion
	newV, oldV := v("4.0.7577.4400"), v("4.0.7577.4366")
	t0 := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	r := &deviceupdate.Rollout{Version: newV, Previous: oldV, RolloutOptions: deviceupdate.RolloutOptions{Soak: time.Hour}}
	const interval, grace = time.Hour, 10 * time.Minute
	tests := []struct {
		name    string
		d       deviceupdate.RolloutDevice
		now     time.Time
		want    deviceupdate.Health
		wantWhy string
	}{
		{"just offered", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 1, LastSeen: t0, Reported: oldV}, t0.Add(time.Minute), deviceupdate.HealthPending, ""},
		{"updated", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 1, LastSeen: t0.Add(5 * time.Minute), Reported: newV, UpdatedAt: t0.Add(5 * time.Minute)}, t0.Add(time.Hour), deviceupdate.HealthUpdated, ""},
		{"updated, then silent, still updated", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 1, LastSeen: t0, Reported: newV, UpdatedAt: t0}, t0.Add(10 * time.Hour), deviceupdate.HealthUpdated, ""},
		{"reverted", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 2, LastSeen: t0.Add(time.Hour), Reported: oldV, UpdatedAt: t0.Add(5 * time.Minute)}, t0.Add(time.Hour), deviceupdate.HealthFailed, "reverted"},
		{"crash within the soak", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 1, LastSeen: t0, Reported: newV, UpdatedAt: t0, CrashAt: t0.Add(30 * time.Minute)}, t0.Add(time.Hour), deviceupdate.HealthFailed, "crashed"},
		{"crash after the soak", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 1, LastSeen: t0, Reported: newV, UpdatedAt: t0, CrashAt: t0.Add(2 * time.Hour)}, t0.Add(3 * time.Hour), deviceupdate.HealthUpdated, ""},
		{"crash before updating", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 1, LastSeen: t0.Add(time.Minute), Reported: newV, UpdatedAt: t0.Add(time.Minute), CrashAt: t0}, t0.Add(time.Hour), deviceupdate.HealthUpdated, ""},
		{"stuck after several offers", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 3, LastSeen: t0.Add(20 * time.Minute), Reported: oldV}, t0.Add(25 * time.Minute), deviceupdate.HealthFailed, "stuck"},
		{"two offers is not stuck yet", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 2, LastSeen: t0.Add(20 * time.Minute), Reported: oldV}, t0.Add(25 * time.Minute), deviceupdate.HealthPending, ""},
		{"stuck well past an interval", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 2, LastSeen: t0.Add(3 * time.Hour), Reported: oldV}, t0.Add(3 * time.Hour), deviceupdate.HealthFailed, "stuck"},
		{"silent past interval and grace", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 1, LastSeen: t0, Reported: oldV}, t0.Add(interval + grace + time.Second), deviceupdate.HealthSilent, ""},
		{"late but within grace", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 1, LastSeen: t0, Reported: oldV}, t0.Add(interval + grace), deviceupdate.HealthPending, ""},
		{"silent long enough to have failed", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 1, LastSeen: t0, Reported: oldV}, t0.Add(3*interval + grace + time.Second), deviceupdate.HealthFailed, "silent"},
		{"device's own interval", deviceupdate.RolloutDevice{OfferedAt: t0, Offers: 1, LastSeen: t0, Reported: oldV, Interval: 60}, t0.Add(grace + 2*time.Minute), deviceupdate.HealthSilent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := r.Judge(tt.d, interval, grace, tt.now)
			if got != tt.want || why != tt.wantWhy {
				t.Errorf("Judge = %s %q; want %s %q", got, why, tt.want, tt.wantWhy)
			}
		})
	}
}

func TestRolloutNext(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	base := deviceupdate.Rollout{ID: "x", State: deviceupdate.RolloutRunning, WaveStartedAt: t0,
		RolloutOptions: deviceupdate.RolloutOptions{Waves: []int{10, 50, 100}, Soak: time.Hour, MaxFailures: 0.1, MinDevices: 5}}
	at := func(wave int) deviceupdate.Rollout { r := base; r.Wave = wave; return r }
	paused := base
	paused.State = deviceupdate.RolloutPaused
	stats := func(updated, failed int, why map[string]int) []deviceupdate.WaveStats {
		return []deviceupdate.WaveStats{{Percent: 10, Offered: updated + failed, Updated: updated, Failed: failed, Why: why}, {Percent: 50}, {Percent: 100}}
	}
	silent := func(updated, failed, silent int) []deviceupdate.WaveStats {
		s := stats(updated, failed, nil)
		s[0].Offered += silent
		s[0].Silent = silent
		return s
	}
	lagging := func(updated, failed, lagging int) []deviceupdate.WaveStats {
		s := stats(updated, failed, nil)
		s[0].Offered += lagging
		s[0].Lagging = lagging
		return s
	}
	fresh := func(updated, failed, fresh int) []deviceupdate.WaveStats {
		s := stats(updated, failed, nil)
		s[0].Fresh = fresh
		return s
	}
	held := func(updated, held int) []deviceupdate.WaveStats {
		s := stats(updated, 0, nil)
		s[2].Held = held
		return s
	}
	pending := func(updated, failed, pending int) []deviceupdate.WaveStats {
		s := stats(updated, failed, nil)
		s[0].Offered += pending
		return s
	}
	tests := []struct {
		name       string
		r          deviceupdate.Rollout
		stats      []deviceupdate.WaveStats
		now        time.Time
		want       deviceupdate.RolloutStep
		wantWave   int
		wantReason string
	}{
		{"healthy, after the soak: promote", at(0), stats(10, 0, nil), t0.Add(time.Hour), deviceupdate.StepPromote, 1, ""},
		{"healthy, within the soak: wait", at(0), stats(10, 0, nil), t0.Add(59 * time.Minute), deviceupdate.StepNone, 0, ""},
		{"too few judged: wait", at(0), stats(4, 0, nil), t0.Add(2 * time.Hour), deviceupdate.StepNone, 0, ""},
		{"failures at the limit: promote", at(0), stats(9, 1, nil), t0.Add(time.Hour), deviceupdate.StepPromote, 1, ""},
		{"failures over the limit: pause", at(0), stats(5, 5, map[string]int{"reverted": 4, "stuck": 1}), t0.Add(time.Hour), deviceupdate.StepPause, 0,
			"wave 1 (10%): 5 of 10 judged devices failed (50%, limit 10%): 4 reverted, 1 stuck"},
		{"failures within the soak: wait for it", at(0), stats(5, 5, nil), t0.Add(time.Minute), deviceupdate.StepNone, 0, ""},
		{"last wave: complete", at(2), stats(10, 0, nil), t0.Add(time.Hour), deviceupdate.StepComplete, 2, ""},
		{"last wave, devices held by the window or cap: wait for their offers", at(2), held(10, 3), t0.Add(time.Hour), deviceupdate.StepNone, 2, ""},
		{"first wave, devices held: promote all the same", at(0), func() []deviceupdate.WaveStats { s := stats(10, 0, nil); s[0].Held = 3; return s }(), t0.Add(time.Hour), deviceupdate.StepPromote, 1, ""},
		{"failures accepted at a resume: promote", func() deviceupdate.Rollout { r := at(0); r.Accepted = 5; return r }(), stats(5, 5, nil), t0.Add(time.Hour), deviceupdate.StepPromote, 1, ""},
		{"new failures beyond those accepted: pause", func() deviceupdate.Rollout { r := at(0); r.Accepted = 3; return r }(), stats(5, 5, nil), t0.Add(time.Hour), deviceupdate.StepPause, 0,
			"wave 1 (10%): 2 of 7 judged devices failed (28.57142857142857%, limit 10%), besides 3 accepted at the last resume"},
		{"paused stays paused", paused, stats(10, 0, nil), t0.Add(time.Hour), deviceupdate.StepNone, 0, ""},
		// A bricked phone is silent for several poll intervals before it
		// counts as failed: promoting meanwhile would take it for healthy.
		{"silent devices that would break the limit: wait for them", at(0), silent(9, 0, 2), t0.Add(time.Hour), deviceupdate.StepNone, 0, ""},
		{"silent devices within the limit: promote", at(0), silent(9, 0, 1), t0.Add(time.Hour), deviceupdate.StepPromote, 1, ""},
		{"silent devices in the last wave: wait for them", at(2), silent(20, 1, 2), t0.Add(time.Hour), deviceupdate.StepNone, 2, ""},
		// A device that polled again after the offer still on the old
		// version may be stuck: stuck is judged only at the third offer.
		{"lagging devices that would break the limit: wait for them", at(0), lagging(9, 0, 2), t0.Add(time.Hour), deviceupdate.StepNone, 0, ""},
		{"lagging devices within the limit: promote", at(0), lagging(9, 0, 1), t0.Add(time.Hour), deviceupdate.StepPromote, 1, ""},
		{"freshly updated devices that would break the limit: wait for their next poll", at(0), fresh(10, 0, 2), t0.Add(time.Hour), deviceupdate.StepNone, 0, ""},
		{"freshly updated devices within the limit: promote", at(0), fresh(10, 0, 1), t0.Add(time.Hour), deviceupdate.StepPromote, 1, ""},
		// Devices offered that have not reported yet are in transit: a
		// pause waits for them when they could bring the rate within.
		{"over the limit until the pending report: wait for them", at(0), pending(8, 1, 1), t0.Add(time.Hour), deviceupdate.StepNone, 0, ""},
		{"over the limit whatever the pending report: pause", at(0), pending(5, 5, 5), t0.Add(time.Hour), deviceupdate.StepPause, 0,
			"wave 1 (10%): 5 of 10 judged devices failed (50%, limit 10%)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fmt.Sprint(tt.r)
			got, step := tt.r.Next(tt.stats, tt.now)
			if step != tt.want || got.Wave != tt.wantWave || got.Reason != tt.wantReason {
				t.Errorf("Next = %q wave %d reason %q; want %q wave %d reason %q", step, got.Wave, got.Reason, tt.want, tt.wantWave, tt.wantReason)
			}
			if fmt.Sprint(tt.r) != before {
				t.Error("Next changed its receiver")
			}
			if step == deviceupdate.StepPromote && !got.WaveStartedAt.Equal(tt.now) {
				t.Errorf("promoted wave started at %s; want %s", got.WaveStartedAt, tt.now)
			}
		})
	}
}

// TestRolloutTally: devices count in the wave that first reached them;
// devices never offered are not counted; those offered again still on the
// old version lag.
func TestRolloutTally(t *testing.T) {
	v := deviceupdate.MustParseVersion
	t0 := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	r := &deviceupdate.Rollout{ID: "tally", Version: v("2.0.0.0"), Previous: v("1.0.0.0"), RolloutOptions: deviceupdate.RolloutOptions{Waves: []int{50, 100}, Soak: time.Hour}}
	var devices []deviceupdate.RolloutDevice
	want := make([]deviceupdate.WaveStats, 2)
	for i := range 40 {
		id := fmt.Sprintf("dev-%d", i)
		d := deviceupdate.RolloutDevice{Device: id, OfferedAt: t0, Offers: 1, LastSeen: t0, Reported: v("2.0.0.0"), UpdatedAt: t0}
		w := &want[r.WaveOf(id)]
		switch i % 4 {
		case 0:
			d.Reported = v("1.0.0.0")
			w.Failed++
		case 1:
			d.OfferedAt = time.Time{}
			w.Offered--
		case 2:
			w.Updated++
		default: // not updated yet: lagging when it polled again since the offer
			d.Reported, d.UpdatedAt = v("1.0.0.0"), time.Time{}
			if i%8 == 3 {
				d.Offers, d.LastSeen = 2, t0.Add(30*time.Second)
				w.Lagging++
			}
		}
		w.Offered++
		devices = append(devices, d)
	}
	// Devices held back, in the wave but not offered yet: counted while
	// their last poll is recent, not offered.
	for i := range 6 {
		id := fmt.Sprintf("held-%d", i)
		d := deviceupdate.RolloutDevice{Device: id, HeldAt: t0}
		if i%2 == 1 {
			d.HeldAt = t0.Add(-2 * time.Hour) // polled long ago: gone, not waiting
		} else {
			want[r.WaveOf(id)].Held++
		}
		devices = append(devices, d)
	}
	got := r.Tally(devices, time.Hour, time.Minute, t0.Add(time.Minute))
	for i := range want {
		want[i].Percent = r.Waves[i]
		if got[i].Percent != want[i].Percent || got[i].Offered != want[i].Offered || got[i].Updated != want[i].Updated || got[i].Failed != want[i].Failed || got[i].Silent != 0 ||
			got[i].Lagging != want[i].Lagging || got[i].Held != want[i].Held {
			t.Errorf("wave %d = %+v; want %+v", i+1, got[i], want[i])
		}
	}
	if got[0].Offered == 0 || got[1].Offered == 0 {
		t.Errorf("tally %+v: want devices in both waves", got)
	}
}

func TestRolloutObserve(t *testing.T) {
	v := deviceupdate.MustParseVersion
	newV, oldV := v("2.0.0.0"), v("1.0.0.0")
	r := &deviceupdate.Rollout{Version: newV, Previous: oldV}
	t0 := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	d := r.Observe(deviceupdate.RolloutDevice{Device: "d"}, t0, oldV, oldV)
	if !d.OfferedAt.IsZero() || d.Offers != 0 {
		t.Fatalf("a device offered the previous version is tracked: %+v", d)
	}
	d = r.Observe(d, t0.Add(time.Minute), oldV, newV)
	d = r.Observe(d, t0.Add(2*time.Minute), oldV, newV)
	if !d.OfferedAt.Equal(t0.Add(time.Minute)) || d.Offers != 2 || !d.UpdatedAt.IsZero() {
		t.Fatalf("after two offers: %+v; want offered at the first, twice, not updated", d)
	}
	d = r.Observe(d, t0.Add(3*time.Minute), newV, deviceupdate.Version{})
	d = r.Observe(d, t0.Add(4*time.Minute), oldV, oldV)
	if !d.UpdatedAt.Equal(t0.Add(3*time.Minute)) || d.Reported != oldV || !d.LastSeen.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("after updating and reverting: %+v", d)
	}
	if h, why := r.Judge(d, time.Hour, time.Minute, t0.Add(5*time.Minute)); h != deviceupdate.HealthFailed || why != "reverted" {
		t.Errorf("Judge = %s %q; want failed, reverted", h, why)
	}
}

// A device of the current wave that the window or the hourly cap kept
// from its offer is noted held until it is offered; others are not.
func TestRolloutObserveHeld(t *testing.T) {
	v := deviceupdate.MustParseVersion
	newV, oldV := v("2.0.0.0"), v("1.0.0.0")
	t0 := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	r := &deviceupdate.Rollout{ID: "held", Version: newV, Previous: oldV, State: deviceupdate.RolloutRunning,
		RolloutOptions: deviceupdate.RolloutOptions{Waves: []int{50, 100}}}
	var member, outsider string
	for i := 0; member == "" || outsider == ""; i++ {
		id := fmt.Sprintf("dev-%d", i)
		if r.Member(id) {
			member = id
		} else {
			outsider = id
		}
	}
	paused := *r
	paused.State = deviceupdate.RolloutPaused
	tests := []struct {
		name     string
		r        *deviceupdate.Rollout
		device   string
		reported deviceupdate.Version
		wantHeld bool
	}{
		{"member on the old version, not offered", r, member, oldV, true},
		{"member already on the version", r, member, newV, false},
		{"outside the current wave", r, outsider, oldV, false},
		{"paused: nobody waits for an offer", &paused, member, oldV, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.r.Observe(deviceupdate.RolloutDevice{Device: tc.device}, t0, tc.reported, oldV)
			if got := !d.HeldAt.IsZero(); got != tc.wantHeld || !d.OfferedAt.IsZero() {
				t.Fatalf("Observe = %+v; want held %v, not offered", d, tc.wantHeld)
			}
		})
	}
	d := r.Observe(deviceupdate.RolloutDevice{Device: member}, t0, oldV, oldV)
	d = r.Observe(d, t0.Add(time.Hour), oldV, newV)
	if !d.HeldAt.IsZero() || !d.OfferedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("held, then offered: %+v; want offered and no longer held", d)
	}
}

// TestRolloutEndRule: a completed rollout leaves its rule approved, an
// aborted one reset; a rule whose pending version is no longer the
// rollout's is refused and returned as it was.
func TestRolloutEndRule(t *testing.T) {
	v1, v2, v3 := deviceupdate.MustParseVersion("4.0.7577.4100"), deviceupdate.MustParseVersion("4.0.7577.4366"), deviceupdate.MustParseVersion("4.0.7577.4400")
	rule := deviceupdate.Rule{ID: "r1", ApprovedVersion: v1, PendingVersion: v2}
	tests := []struct {
		name     string
		state    deviceupdate.RolloutState
		rule     deviceupdate.Rule
		want     deviceupdate.Rule
		wantCode string
	}{
		{"completed", deviceupdate.RolloutCompleted, rule, deviceupdate.Rule{ID: "r1", ApprovedVersion: v2, RestoreVersion: v1}, ""},
		{"aborted", deviceupdate.RolloutAborted, rule, deviceupdate.Rule{ID: "r1", ApprovedVersion: v1}, ""},
		{"pending changed", deviceupdate.RolloutCompleted, deviceupdate.Rule{ID: "r1", ApprovedVersion: v1, PendingVersion: v3}, deviceupdate.Rule{ID: "r1", ApprovedVersion: v1, PendingVersion: v3}, deviceupdate.ECONFLICT},
		{"nothing pending", deviceupdate.RolloutAborted, deviceupdate.Rule{ID: "r1", ApprovedVersion: v1}, deviceupdate.Rule{ID: "r1", ApprovedVersion: v1}, deviceupdate.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := deviceupdate.Rollout{RuleID: "r1", Version: v2, Previous: v1, State: tt.state}
			got, err := r.EndRule(tt.rule)
			if deviceupdate.ErrorCode(err) != tt.wantCode || got != tt.want {
				t.Errorf("EndRule = %+v, %v; want %+v, code %q", got, err, tt.want, tt.wantCode)
			}
		})
	}
}

// FuzzRolloutFlags: whatever a user writes, Parse returns options that
// validate, or an EINVALID error; it never panics. A window it accepts
// reads back the same from its own text.
func FuzzRolloutFlags(f *testing.F) {
	f.Add("5,25,100", "1h", "5%", 0, "22:00-05:00", 0)
	f.Add("10, 50%,100", "30m", "0.2", 3, "", 50)
	f.Add("100", "0s", "100%", 1, "00:00-23:59", 1)
	f.Add("5,5,100", "-1h", "NaN", -1, "25:00-05:00", -1)
	f.Fuzz(func(t *testing.T, waves, soak, maxFailures string, minDevices int, window string, perHour int) {
		fl := deviceupdate.RolloutFlags{Waves: waves, Soak: soak, MaxFailures: maxFailures, MinDevices: minDevices, Window: window, MaxPerHour: perHour}
		o, err := fl.Parse()
		if err != nil {
			if deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
				t.Fatalf("Parse(%+v) = %v; want an EINVALID error", fl, err)
			}
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("Parse(%+v) = %+v, which does not validate: %v", fl, o, err)
		}
		if o.Waves[len(o.Waves)-1] != 100 || !slices.IsSorted(o.Waves) {
			t.Fatalf("waves %v from %q", o.Waves, waves)
		}
		if again, err := deviceupdate.ParseWindow(o.Window.String()); err != nil || again != o.Window {
			t.Fatalf("window %q reads back as %v, %v", o.Window, again, err)
		}
	})
}
