package deviceupdate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RolloutState is where a staged rollout stands (SPEC §10).
type RolloutState string

// The states of a rollout.
const (
	RolloutRunning   RolloutState = "running"
	RolloutPaused    RolloutState = "paused"
	RolloutCompleted RolloutState = "completed"
	RolloutAborted   RolloutState = "aborted"
)

// Limits of a rollout's options: enough for any real fleet, small enough
// that a hostile request cannot make the service loop or allocate much.
const (
	MaxRolloutWaves    = 20
	MaxRolloutSoak     = 30 * 24 * time.Hour
	MaxRolloutDevices  = 1_000_000
	DefaultRolloutSoak = time.Hour
	// DefaultRolloutMaxFailures is the failure rate a wave may have and
	// still be promoted when the approval names none.
	DefaultRolloutMaxFailures = 0.05
)

// RolloutOptions are how a staged approval proceeds (SPEC §10).
type RolloutOptions struct {
	Waves       []int         // percents of the rule's devices, increasing, the last 100
	Soak        time.Duration // how long a wave runs before it is judged
	MaxFailures float64       // the failure rate (0 to 1) a wave may have and be promoted
	MinDevices  int           // judged devices a wave needs before it is promoted; 0: none
	Window      Window        // when new offers are made, in the site's time zone; zero: always
	MaxPerHour  int           // new offers per hour; 0: no cap
	// Reach is the least share, in hundredths of a percent, every wave
	// reaches: set at the start (Rollout.ReachFor), not by the admin, so
	// that a small fleet's first wave holds MinDevices of its devices.
	Reach int
}

// RolloutFlags are the options as a user writes them, on the command line
// or in the admin API's JSON body: "5,25,100", "1h", "5%", "22:00-05:00".
// An empty field takes the default.
type RolloutFlags struct {
	Waves       string `json:"waves"`
	Soak        string `json:"soak,omitempty"`
	MaxFailures string `json:"maxFailures,omitempty"`
	MinDevices  int    `json:"minDevices,omitempty"`
	Window      string `json:"window,omitempty"`
	MaxPerHour  int    `json:"maxPerHour,omitempty"`
}

// Parse reads and validates the options; EINVALID names the first bad one.
func (f RolloutFlags) Parse() (RolloutOptions, error) {
	o := RolloutOptions{Soak: DefaultRolloutSoak, MaxFailures: DefaultRolloutMaxFailures, MinDevices: f.MinDevices, MaxPerHour: f.MaxPerHour}
	var err error
	if o.Waves, err = ParseWaves(f.Waves); err != nil {
		return o, err
	}
	if f.Soak != "" {
		if o.Soak, err = time.ParseDuration(f.Soak); err != nil {
			return o, Errorf(EINVALID, "soak %q: want a duration such as 30m or 1h", truncateForMessage(f.Soak))
		}
	}
	if f.MaxFailures != "" {
		if o.MaxFailures, err = ParseFailureRate(f.MaxFailures); err != nil {
			return o, err
		}
	}
	if o.Window, err = ParseWindow(f.Window); err != nil {
		return o, err
	}
	return o, o.Validate()
}

// ParseWaves reads a comma-separated list of percents such as 5,25,100.
func ParseWaves(s string) ([]int, error) {
	if s == "" {
		return nil, Errorf(EINVALID, "waves: want comma-separated percents ending at 100, such as 5,25,100")
	}
	if n := strings.Count(s, ",") + 1; n > MaxRolloutWaves {
		return nil, Errorf(EINVALID, "waves %q: %d waves; at most %d", truncateForMessage(s), n, MaxRolloutWaves)
	}
	var waves []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(p), "%"))
		if err != nil {
			return nil, Errorf(EINVALID, "waves %q: %q is not a percent", truncateForMessage(s), truncateForMessage(p))
		}
		waves = append(waves, n)
	}
	return waves, nil
}

// ParseFailureRate reads a failure rate as a percent (5%) or a fraction
// (0.05), from 0 to 100%.
func ParseFailureRate(s string) (float64, error) {
	t, percent := strings.CutSuffix(strings.TrimSpace(s), "%")
	f, err := strconv.ParseFloat(t, 64)
	if percent {
		f /= 100
	}
	if err != nil || f != f || f < 0 || f > 1 {
		return 0, Errorf(EINVALID, "max failures %q: want a percent from 0%% to 100%%, such as 5%%, or a fraction such as 0.05", truncateForMessage(s))
	}
	return f, nil
}

// Validate returns an EINVALID error naming the first bad option.
func (o RolloutOptions) Validate() error {
	if len(o.Waves) == 0 || len(o.Waves) > MaxRolloutWaves {
		return Errorf(EINVALID, "waves: want 1 to %d percents ending at 100, such as 5,25,100", MaxRolloutWaves)
	}
	for i, p := range o.Waves {
		if p < 1 || p > 100 {
			return Errorf(EINVALID, "waves: %d%% is not a percent from 1 to 100", p)
		}
		if i > 0 && p <= o.Waves[i-1] {
			return Errorf(EINVALID, "waves %s: each wave must be larger than the one before (%d%% after %d%%)", wavesString(o.Waves), p, o.Waves[i-1])
		}
	}
	if last := o.Waves[len(o.Waves)-1]; last != 100 {
		return Errorf(EINVALID, "waves %s: the last wave must be 100%%, not %d%%, or the rollout never reaches every device", wavesString(o.Waves), last)
	}
	switch {
	case o.Soak < 0 || o.Soak > MaxRolloutSoak:
		return Errorf(EINVALID, "soak %s: want 0 to %s", o.Soak, MaxRolloutSoak)
	case o.MinDevices < 0 || o.MinDevices > MaxRolloutDevices:
		return Errorf(EINVALID, "min devices %d: want 0 to %d", o.MinDevices, MaxRolloutDevices)
	case o.Soak == 0 && o.MinDevices == 0:
		return Errorf(EINVALID, "a soak of zero with no minimum of devices promotes every wave before any device is judged; give --soak or --min-devices")
	case o.MaxFailures != o.MaxFailures || o.MaxFailures < 0 || o.MaxFailures > 1:
		return Errorf(EINVALID, "max failures: want 0%% to 100%%")
	case o.MaxPerHour < 0 || o.MaxPerHour > MaxRolloutDevices:
		return Errorf(EINVALID, "max per hour %d: want 0 (no cap) to %d", o.MaxPerHour, MaxRolloutDevices)
	case o.Reach < 0 || o.Reach > rolloutBuckets:
		return Errorf(EINVALID, "reach %d: want 0 to %d", o.Reach, rolloutBuckets)
	}
	return nil
}

func wavesString(waves []int) string {
	s := make([]string, len(waves))
	for i, p := range waves {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// Window is a daily span of local time, such as 22:00-05:00 (it may wrap
// past midnight), in minutes since midnight. The zero Window is always
// open.
type Window struct {
	Start, End int // minutes since midnight; equal only in the zero Window
}

// ParseWindow reads hh:mm-hh:mm; the empty string is the always-open window.
func ParseWindow(s string) (Window, error) {
	if s == "" {
		return Window{}, nil
	}
	bad := Errorf(EINVALID, "window %q: want hh:mm-hh:mm in the site's time zone, such as 22:00-05:00", truncateForMessage(s))
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Window{}, bad
	}
	start, err1 := time.Parse("15:04", strings.TrimSpace(a))
	end, err2 := time.Parse("15:04", strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return Window{}, bad
	}
	w := Window{Start: start.Hour()*60 + start.Minute(), End: end.Hour()*60 + end.Minute()}
	if w.Start == w.End {
		return Window{}, Errorf(EINVALID, "window %q: starts where it ends; leave it out to offer at any time", truncateForMessage(s))
	}
	return w, nil
}

// IsZero reports whether w is the always-open window.
func (w Window) IsZero() bool { return w == Window{} }

// String returns the window as ParseWindow reads it, "" for the zero one.
func (w Window) String() string {
	if w.IsZero() {
		return ""
	}
	return fmt.Sprintf("%02d:%02d-%02d:%02d", w.Start/60, w.Start%60, w.End/60, w.End%60)
}

// MarshalText writes the window as String does.
func (w Window) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText reads the window as ParseWindow does.
func (w *Window) UnmarshalText(b []byte) error {
	v, err := ParseWindow(string(b))
	*w = v
	return err
}

// Open reports whether t falls in the window in the time zone loc (the
// site's); the start is in, the end out.
func (w Window) Open(t time.Time, loc *time.Location) bool {
	if w.IsZero() {
		return true
	}
	if loc != nil {
		t = t.In(loc)
	}
	m := t.Hour()*60 + t.Minute()
	if w.Start < w.End {
		return m >= w.Start && m < w.End
	}
	return m >= w.Start || m < w.End
}

// Rollout is a staged approval of a rule's pending version (SPEC §10).
// While it runs, the rule keeps Previous approved and Version pending;
// devices in the current wave are offered Version.
type Rollout struct {
	RuleID   string  `json:"ruleId"`
	RuleKey  RuleKey `json:"ruleKey"`
	Version  Version `json:"version"`  // the version rolled out
	Previous Version `json:"previous"` // the approved version before it; zero when none
	// ID is random per rollout: it places devices in waves, so a new
	// rollout of the same rule reshuffles them.
	ID string `json:"id"`
	RolloutOptions
	State         RolloutState `json:"state"`
	Wave          int          `json:"wave"` // the current wave, 0-based
	Reason        string       `json:"reason,omitempty"`
	StartedAt     time.Time    `json:"startedAt"`
	WaveStartedAt time.Time    `json:"waveStartedAt"`
	// Accepted is how many failed devices the admin accepted by resuming
	// the rollout: judging counts only the failures beyond them.
	Accepted int `json:"accepted,omitempty"`
	// EndedAt is when the rollout completed or was aborted: it is judged
	// as it was then, not by the silence of devices it no longer tracks.
	EndedAt time.Time `json:"endedAt,omitzero"`
}

// Failed counts the failed devices of the waves so far in stats.
func (r *Rollout) Failed(stats []WaveStats) int {
	n := 0
	for i := 0; i <= r.Wave && i < len(stats); i++ {
		n += stats[i].Failed
	}
	return n
}

// rolloutBuckets is how finely membership is placed: 0.01%.
const rolloutBuckets = 10000

// bucket places a device in [0, rolloutBuckets) by a stable hash of the
// rollout's ID and the device's ID. The hash must stay as it is: another
// would move devices between waves of running rollouts.
func (r *Rollout) bucket(device string) int {
	h := sha256.New()
	h.Write([]byte(r.ID))
	h.Write([]byte{0})
	h.Write([]byte(device))
	var sum [sha256.Size]byte
	return int(binary.BigEndian.Uint64(h.Sum(sum[:0])) % rolloutBuckets)
}

// InWave reports whether device is among the percent of the rule's
// devices that a wave of that size reaches. A device in a wave is in
// every larger one.
func (r *Rollout) InWave(device string, percent int) bool {
	return r.bucket(device) < r.threshold(percent)
}

// threshold is the bucket a wave of percent reaches below: at least Reach.
func (r *Rollout) threshold(percent int) int {
	return max(percent*(rolloutBuckets/100), r.Reach)
}

// ReachFor returns the Reach under which every wave of r holds at least n
// of the known devices (by ID): the n it places lowest. It widens the
// first wave at most to the second's size, so that an inventory that
// knows a few devices of a large fleet does not turn the first wave into
// most of it; 0 (no widening) when n is 0 or fewer than n are known.
func (r *Rollout) ReachFor(known []string, n int) int {
	if n <= 0 || len(known) < n {
		return 0
	}
	buckets := make([]int, len(known))
	for i, d := range known {
		buckets[i] = r.bucket(d)
	}
	slices.Sort(buckets)
	most := rolloutBuckets
	if len(r.Waves) > 1 {
		most = r.threshold(r.Waves[1])
	}
	return min(buckets[n-1]+1, most)
}

// Member reports whether device is in the current wave.
func (r *Rollout) Member(device string) bool {
	return r.Wave >= 0 && r.Wave < len(r.Waves) && r.InWave(device, r.Waves[r.Wave])
}

// WaveOf returns the 0-based index of the first wave that reaches device.
func (r *Rollout) WaveOf(device string) int {
	b := r.bucket(device)
	for i, p := range r.Waves {
		if b < r.threshold(p) {
			return i
		}
	}
	return len(r.Waves) - 1
}

// Active reports whether the rollout still governs its rule's offers.
func (r *Rollout) Active() bool {
	return r.State == RolloutRunning || r.State == RolloutPaused
}

// RolloutDevice is what a rollout knows of one device it offered its
// version to, from the device's polls and uploads.
type RolloutDevice struct {
	Device    string    `json:"device"`
	OfferedAt time.Time `json:"offeredAt"`          // first offer of the rollout's version
	Offers    int       `json:"offers"`             // polls answered with that offer
	LastSeen  time.Time `json:"lastSeen"`           // last poll
	Reported  Version   `json:"reported"`           // version reported at the last poll
	UpdatedAt time.Time `json:"updatedAt,omitzero"` // first poll reporting the rollout's version
	CrashAt   time.Time `json:"crashAt,omitzero"`   // first crash dump uploaded after updating
	Interval  int       `json:"interval,omitempty"` // the device's poll interval, seconds
	// HeldAt is the last poll at which the device, in the current wave
	// of the running rollout and on an older version, was not offered
	// it: the window was closed or the hourly cap reached. Zero once
	// offered (OfferedAt is set).
	HeldAt time.Time `json:"heldAt,omitzero"`
}

// Health is how a rollout judges a device.
type Health string

// The judgements. Updated and Failed devices are judged; Silent ones are
// counted apart until they are silent long enough to have failed.
const (
	HealthPending Health = "pending" // offered; has not reported the version yet
	HealthUpdated Health = "updated"
	HealthFailed  Health = "failed"
	HealthSilent  Health = "silent"
)

// Judging limits: a device that keeps reporting its old version after
// StuckOffers offers, or StuckIntervals poll intervals past the offer, did
// not install; one silent SilentIntervals intervals (plus grace) past its
// last poll is taken for bricked.
const (
	StuckOffers     = 3
	StuckIntervals  = 2
	SilentIntervals = 3
)

// Judge judges device d of rollout r at now; grace is how late a poll may
// be before the device counts as silent. The reason says why a device
// failed: reverted, crashed, stuck or silent.
func (r *Rollout) Judge(d RolloutDevice, interval, grace time.Duration, now time.Time) (Health, string) {
	if d.Interval > 0 {
		interval = time.Duration(d.Interval) * time.Second
	}
	if !d.UpdatedAt.IsZero() {
		switch {
		case d.Reported.Compare(r.Version) < 0:
			return HealthFailed, "reverted"
		case !d.CrashAt.IsZero() && !d.CrashAt.Before(d.UpdatedAt) && d.CrashAt.Sub(d.UpdatedAt) <= r.Soak:
			return HealthFailed, "crashed"
		}
		return HealthUpdated, ""
	}
	quiet := now.Sub(d.LastSeen)
	switch {
	case quiet > SilentIntervals*interval+grace:
		return HealthFailed, "silent"
	case quiet > interval+grace:
		return HealthSilent, ""
	case d.Offers >= StuckOffers && d.LastSeen.After(d.OfferedAt),
		d.LastSeen.Sub(d.OfferedAt) > StuckIntervals*interval+grace:
		return HealthFailed, "stuck"
	}
	return HealthPending, ""
}

// WaveStats counts the devices of one wave: those the wave reached first.
type WaveStats struct {
	Percent int `json:"percent"`
	Offered int `json:"offered"`
	Updated int `json:"updated"`
	Failed  int `json:"failed"`
	Silent  int `json:"silent"`
	// Why counts the failed devices by reason (reverted, crashed, stuck, silent).
	Why map[string]int `json:"-"`
	// Lagging counts the pending devices that polled again after the
	// offer still on the old version: they may be stuck.
	Lagging int `json:"-"`
	// Fresh counts the updated devices that have not polled since: they
	// may still revert.
	Fresh int `json:"-"`
	// Held counts the devices of the wave not offered the version yet
	// that polled within an interval (and grace) while the window was
	// closed or the hourly cap reached: they still wait for their offer.
	Held int `json:"-"`
}

// Tally judges every device the rollout offered its version to and counts
// them per wave.
func (r *Rollout) Tally(devices []RolloutDevice, interval, grace time.Duration, now time.Time) []WaveStats {
	stats := make([]WaveStats, len(r.Waves))
	for i, p := range r.Waves {
		stats[i] = WaveStats{Percent: p, Why: map[string]int{}}
	}
	for _, d := range devices {
		if d.OfferedAt.IsZero() {
			if !d.HeldAt.IsZero() && now.Sub(d.HeldAt) <= interval+grace {
				stats[r.WaveOf(d.Device)].Held++
			}
			continue
		}
		s := &stats[r.WaveOf(d.Device)]
		s.Offered++
		switch h, why := r.Judge(d, interval, grace, now); h {
		case HealthUpdated:
			s.Updated++
			if !d.LastSeen.After(d.UpdatedAt) {
				s.Fresh++
			}
		case HealthFailed:
			s.Failed++
			s.Why[why]++
		case HealthSilent:
			s.Silent++
		case HealthPending:
			if d.Offers > 1 && d.LastSeen.After(d.OfferedAt) {
				s.Lagging++
			}
		}
	}
	return stats
}

// RolloutStep is what Next did to a rollout.
type RolloutStep string

// The steps of Next.
const (
	StepNone     RolloutStep = ""         // nothing changed
	StepPromote  RolloutStep = "promote"  // the next wave started
	StepPause    RolloutStep = "pause"    // too many failures; Reason says which
	StepComplete RolloutStep = "complete" // the last wave passed: approve the rule
)

// Next decides a running rollout's wave at now from its tally: after the
// soak, with at least MinDevices judged in the waves so far, the next wave
// starts (or the rollout completes) when their failure rate is within
// MaxFailures (not counting the failures accepted by a resume);
// otherwise the rollout pauses with the reason. The last
// wave completes only when none of its devices still waits for its offer
// (held by the window or the hourly cap): completing approves the rule,
// which would offer every one of them at once. Before the
// soak, with too few judged, while enough devices are silent or lagging
// to break the limit should they have failed, or while enough have not been judged
// yet to bring it within should they be fine, nothing changes. r is not
// changed.
func (r Rollout) Next(stats []WaveStats, now time.Time) (Rollout, RolloutStep) {
	if r.State != RolloutRunning || now.Before(r.WaveStartedAt.Add(r.Soak)) {
		return r, StepNone
	}
	var offered, updated, failed, silent, lagging, fresh, held int
	why := map[string]int{}
	for i := 0; i <= r.Wave && i < len(stats); i++ {
		offered += stats[i].Offered
		updated += stats[i].Updated
		failed += stats[i].Failed
		silent += stats[i].Silent
		lagging += stats[i].Lagging
		fresh += stats[i].Fresh
		held += stats[i].Held
		for k, n := range stats[i].Why {
			why[k] += n
		}
	}
	// The failures the admin accepted by resuming count neither way.
	accepted := min(r.Accepted, failed)
	failed -= accepted
	offered -= accepted
	judged := updated + failed
	if judged < r.MinDevices {
		return r, StepNone
	}
	if judged > 0 && float64(failed) > r.MaxFailures*float64(judged) {
		// The devices offered that have not been judged yet (in
		// transit, or silent) report within a few poll intervals: wait
		// for them while they could still bring the rate within.
		if float64(failed) <= r.MaxFailures*float64(max(offered, judged)) {
			return r, StepNone
		}
		r.State = RolloutPaused
		r.Reason = fmt.Sprintf("wave %d (%d%%): %d of %d judged devices failed (%s, limit %s)%s",
			r.Wave+1, r.Waves[r.Wave], failed, judged, percent(float64(failed)/float64(judged)), percent(r.MaxFailures), reasons(why))
		if accepted > 0 {
			r.Reason += fmt.Sprintf(", besides %d accepted at the last resume", accepted)
		}
		return r, StepPause
	}
	// A bricked phone is silent SilentIntervals poll intervals before it
	// is judged failed, often longer than the soak, and a stuck one is
	// judged only at its StuckOffers-th offer, while an updated one is at
	// its first poll after the offer, and a reverting one looks updated
	// until its next poll: wait for the silent, lagging and freshly
	// updated ones rather than promote on the healthy share of those
	// judged soonest.
	if doubt := silent + lagging + fresh; doubt > 0 && float64(failed+doubt) > r.MaxFailures*float64(judged+silent+lagging) {
		return r, StepNone
	}
	last := r.Wave >= len(r.Waves)-1
	if last && held > 0 {
		return r, StepNone
	}
	r.Reason = ""
	if last {
		r.State, r.EndedAt = RolloutCompleted, now
		return r, StepComplete
	}
	r.Wave++
	r.WaveStartedAt = now
	return r, StepPromote
}

func percent(f float64) string {
	return strconv.FormatFloat(f*100, 'f', -1, 64) + "%"
}

// reasons lists failure reasons in a fixed order: ": 2 reverted, 1 stuck".
func reasons(why map[string]int) string {
	var parts []string
	for _, k := range []string{"reverted", "crashed", "stuck", "silent"} {
		if why[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", why[k], k))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

// RolloutService runs staged approvals; every change is audited.
type RolloutService interface {
	// StartRollout approves the rule's pending version in waves. Errors:
	// ENOTFOUND, EINVALID (options), ECONFLICT (nothing pending, or a
	// rollout of the rule is active).
	StartRollout(ctx context.Context, ruleID string, o RolloutOptions, actor string) (Rollout, error)
	// Rollout returns the rule's latest rollout and its tally. ENOTFOUND
	// when the rule has none.
	Rollout(ctx context.Context, ruleID string) (Rollout, []WaveStats, error)
	// PauseRollout and ResumeRollout stop and restart new offers and
	// promotion. ECONFLICT when the rollout is not running (paused).
	PauseRollout(ctx context.Context, ruleID, actor string) (Rollout, error)
	ResumeRollout(ctx context.Context, ruleID, actor string) (Rollout, error)
	// AbortRollout ends the rollout: every device is offered the previous
	// version again. ECONFLICT when no rollout is active.
	AbortRollout(ctx context.Context, ruleID, actor string) (Rollout, error)
	// EvaluateRollouts promotes, pauses or completes the running
	// rollouts at now, and returns those it changed; the background loop
	// calls it.
	EvaluateRollouts(ctx context.Context, now time.Time) ([]RolloutChange, error)
}

// RolloutChange is what EvaluateRollouts did to one rollout: the step,
// the rollout after it, and the tally it was judged on.
type RolloutChange struct {
	Step    RolloutStep
	Rollout Rollout
	Waves   []WaveStats
}

// RolloutStatus is a rollout as `rule rollout --json` and the admin API
// show it (SPEC §10); Wave is 1-based.
type RolloutStatus struct {
	Rule    string       `json:"rule"`
	Version Version      `json:"version"`
	State   RolloutState `json:"state"`
	Wave    int          `json:"wave"`
	Reason  string       `json:"reason"`
	Waves   []WaveStats  `json:"waves"`
}

// Status returns the rollout as shown, with its tally.
func (r *Rollout) Status(stats []WaveStats) RolloutStatus {
	if stats == nil {
		stats = []WaveStats{}
	}
	return RolloutStatus{Rule: r.RuleID, Version: r.Version, State: r.State, Wave: r.Wave + 1, Reason: r.Reason, Waves: stats}
}

// Observe returns d after a poll at at that reported the module's version
// reported and was offered offered: the first offer of the rollout's
// version starts tracking the device, the first report of that version
// (or a newer one) marks it updated. A device never offered the version
// stays untracked (zero OfferedAt), but one of d.Device in the current
// wave of the running rollout, still on an older version, is noted held:
// the window or the hourly cap kept its offer back.
func (r *Rollout) Observe(d RolloutDevice, at time.Time, reported, offered Version) RolloutDevice {
	if offered == r.Version {
		if d.OfferedAt.IsZero() {
			d.OfferedAt, d.HeldAt = at, time.Time{}
		}
		d.Offers++
	}
	if d.OfferedAt.IsZero() {
		if r.State == RolloutRunning && r.Member(d.Device) && reported.Compare(r.Version) < 0 {
			d.HeldAt = at
		}
		return d
	}
	d.LastSeen, d.Reported = at, reported
	if d.UpdatedAt.IsZero() && reported.Compare(r.Version) >= 0 {
		d.UpdatedAt = at
	}
	return d
}

// EndRule returns rule as r, ended, leaves it: approved as a plain approve
// leaves it when r completed, else reset (its pending version dropped) as
// a plain reset leaves it. Nothing should change a rule's pending version
// while its rollout is active (rule actions and imports refuse); a rule
// whose pending version is not r's is ECONFLICT.
func (r Rollout) EndRule(rule Rule) (Rule, error) {
	if rule.PendingVersion != r.Version {
		pending := "none"
		if !rule.PendingVersion.IsZero() {
			pending = rule.PendingVersion.String()
		}
		return rule, Errorf(ECONFLICT, "rule %s's pending version is %s, not the rollout's %s", r.RuleID, pending, r.Version)
	}
	if r.State == RolloutCompleted {
		return rule.Apply(RuleApprove)
	}
	return rule.Apply(RuleReset)
}

// NewRollout returns the rollout that starts, with the random id that
// places devices in waves, a staged approval of rule's pending version,
// the approved one its previous. A rule with nothing pending is ECONFLICT.
func NewRollout(rule Rule, o RolloutOptions, id string, now time.Time) (Rollout, error) {
	if rule.PendingVersion.IsZero() {
		return Rollout{}, Errorf(ECONFLICT, "rule %s (%s) has no pending version to roll out; import a package first", rule.ID, rule.RuleKey)
	}
	return Rollout{RuleID: rule.ID, RuleKey: rule.RuleKey, Version: rule.PendingVersion, Previous: rule.ApprovedVersion,
		ID: id, RolloutOptions: o, State: RolloutRunning, StartedAt: now.UTC(), WaveStartedAt: now.UTC()}, nil
}
