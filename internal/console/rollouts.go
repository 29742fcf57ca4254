package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

// rolloutView is a rule's latest staged rollout as the rules page shows
// it (SPEC §10): its state, the current wave, and a bar per wave.
type rolloutView struct {
	deviceupdate.Rollout
	Waves []waveView
	// Devices is the rule's devices in the inventory, -1 when unknown.
	Devices int
	// Operator shows Pause or Resume, which post CSRF.
	Operator bool
	CSRF     string
}

// waveView is one wave: its counts, and a stacked bar of them against
// the wave's share of the rule's devices.
type waveView struct {
	deviceupdate.WaveStats
	Number  int  // 1-based
	Current bool // the wave the rollout is in
	Reached bool // the wave has started
	// Share is about how many of the rule's devices the wave reaches
	// first: its slice of the percents times the rule's devices. The
	// hash places devices at random, so it is an estimate; never less
	// than those offered, so the bar stays within its frame.
	Share int
	Bar   []barPart
}

// barPart is a segment of a wave's bar, in percent of its width (an SVG
// rect: widths are attributes, not styles, so the CSP allows them).
type barPart struct {
	Class    string
	X, Width string
}

// Number1 is the current wave, 1-based.
func (v rolloutView) Number1() int { return v.Wave + 1 }

// Options writes the rollout's options as `rule approve` takes them.
func (v rolloutView) Options() string {
	waves := make([]string, len(v.Rollout.Waves))
	for i, p := range v.Rollout.Waves {
		waves[i] = strconv.Itoa(p)
	}
	parts := []string{"waves " + strings.Join(waves, ","), "soak " + shortDuration(v.Soak),
		"max failures " + strconv.FormatFloat(v.MaxFailures*100, 'f', -1, 64) + "%"}
	if v.MinDevices > 0 {
		parts = append(parts, fmt.Sprintf("min devices %d", v.MinDevices))
	}
	if !v.Window.IsZero() {
		parts = append(parts, "window "+v.Window.String())
	}
	if v.MaxPerHour > 0 {
		parts = append(parts, fmt.Sprintf("max %d per hour", v.MaxPerHour))
	}
	return strings.Join(parts, " · ")
}

// shortDuration writes d as `--soak` takes it, without the zero minutes
// and seconds Duration.String adds: 1h, 30m, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// SoakEnds is when the current wave is judged, while it runs.
func (v rolloutView) SoakEnds() time.Time { return v.WaveStartedAt.Add(v.Soak) }

// Running and Paused say which button the rollout offers.
func (v rolloutView) Running() bool { return v.State == deviceupdate.RolloutRunning }
func (v rolloutView) Paused() bool  { return v.State == deviceupdate.RolloutPaused }

// Pending is the wave's devices offered the version and not judged yet.
func (w waveView) Pending() int { return max(w.Offered-w.Updated-w.Failed-w.Silent, 0) }

// Label describes the bar in words, for its title and screen readers.
func (w waveView) Label() string {
	return fmt.Sprintf("wave %d (%d%%): %d offered of about %d, %d updated, %d failed, %d silent",
		w.Number, w.Percent, w.Offered, w.Share, w.Updated, w.Failed, w.Silent)
}

// newRolloutView builds the view of r and its tally; devices is the
// rule's devices in the inventory, -1 when unknown.
func newRolloutView(r deviceupdate.Rollout, stats []deviceupdate.WaveStats, devices int) *rolloutView {
	v := &rolloutView{Rollout: r, Devices: devices}
	prev := 0
	for i, s := range stats {
		w := waveView{WaveStats: s, Number: i + 1, Current: i == r.Wave && r.Active(), Reached: i <= r.Wave}
		w.Share = s.Offered
		if devices >= 0 {
			w.Share = max(w.Share, (devices*(s.Percent-prev)+50)/100)
		}
		prev = s.Percent
		w.Bar = bar(w.Share, []int{s.Updated, s.Failed, s.Silent, w.Pending()}, []string{"updated", "failed", "silent", "pending"})
		v.Waves = append(v.Waves, w)
	}
	return v
}

// bar lays counts side by side as percents of total; empty parts are
// left out.
func bar(total int, counts []int, classes []string) []barPart {
	if total <= 0 {
		return nil
	}
	var parts []barPart
	x := 0.0
	for i, n := range counts {
		if n <= 0 {
			continue
		}
		w := float64(n) * 100 / float64(total)
		parts = append(parts, barPart{Class: classes[i], X: strconv.FormatFloat(x, 'f', 2, 64), Width: strconv.FormatFloat(w, 'f', 2, 64)})
		x += w
	}
	return parts
}

// rollouts returns the latest rollout of each rule that has one, by rule
// ID, with the rule's devices from the fleet summary when there is one.
func (c *Console) rollouts(ctx context.Context, rules []deviceupdate.Rule) (map[string]*rolloutView, error) {
	if c.cfg.Rollouts == nil {
		return nil, nil
	}
	devices := map[string]int{}
	if c.cfg.Devices != nil {
		sum, err := c.cfg.Devices.Summary(ctx)
		if err != nil {
			return nil, err
		}
		for _, m := range sum.Models {
			if m.RuleID != "" {
				devices[m.RuleID] = m.Devices
			}
		}
	}
	out := map[string]*rolloutView{}
	for _, rule := range rules {
		r, stats, err := c.cfg.Rollouts.Rollout(ctx, rule.ID)
		if deviceupdate.ErrorCode(err) == deviceupdate.ENOTFOUND {
			continue
		}
		if err != nil {
			return nil, err
		}
		n, ok := devices[rule.ID]
		if !ok {
			n = -1
		}
		out[rule.ID] = newRolloutView(r, stats, n)
	}
	return out, nil
}

// handleRolloutChange is POST /rules/:id/pause and /rules/:id/resume:
// the same audited RolloutService calls as the admin API's, by the
// signed-in admin.
func (c *Console) handleRolloutChange(ec echo.Context, s *deviceupdate.Session) error {
	id := ec.Param("id")
	change, done := c.cfg.Rollouts.PauseRollout, "paused"
	if strings.HasSuffix(ec.Path(), "/resume") {
		change, done = c.cfg.Rollouts.ResumeRollout, "resumed"
	}
	if _, err := change(ec.Request().Context(), id, s.Admin.Name); err != nil {
		if deviceupdate.ErrorCode(err) == deviceupdate.EINTERNAL {
			return c.fail(ec, s, err)
		}
		return c.renderRules(ec, s, statusOf(deviceupdate.ErrorCode(err)), page{}, nil, []string{deviceupdate.ErrorMessage(err)})
	}
	return ec.Redirect(http.StatusSeeOther, "/rules?"+url.Values{"rollout": {done}, "rule": {id}}.Encode())
}

// rolloutNotice is the notice after a pause or resume, "" for none.
func rolloutNotice(q url.Values) string {
	switch done := q.Get("rollout"); done {
	case "paused", "resumed":
		return fmt.Sprintf("The rollout of rule %s is %s.", truncate(q.Get("rule"), 64), done)
	}
	return ""
}

// startRollouts starts a confirmed staged approval of each rule, each
// still with the versions the confirmation showed; it returns how many
// started and why the others did not. Bad options are an EINVALID
// error, and nothing starts.
func (c *Console) startRollouts(ctx context.Context, s *deviceupdate.Session, form url.Values, ids []string) (int, []string, error) {
	minDevices, err1 := optionalInt(form.Get("min-devices"), "min devices")
	perHour, err2 := optionalInt(form.Get("max-per-hour"), "max per hour")
	flags := deviceupdate.RolloutFlags{Waves: strings.TrimSpace(form.Get("waves")), Soak: strings.TrimSpace(form.Get("soak")),
		MaxFailures: strings.TrimSpace(form.Get("max-failures")), Window: strings.TrimSpace(form.Get("window")), MinDevices: minDevices, MaxPerHour: perHour}
	o, err := flags.Parse()
	for _, e := range []error{err1, err2, err} {
		if e != nil {
			return 0, nil, e
		}
	}
	rules, err := c.cfg.Rules.Rules(ctx)
	if err != nil {
		return 0, nil, err
	}
	byID := map[string]deviceupdate.Rule{}
	for _, r := range rules {
		byID[r.ID] = r
	}
	done := 0
	var failed []string
	for _, id := range ids {
		expect, err := parseExpect(form.Get("expect-" + id))
		if err == nil {
			if r, ok := byID[id]; ok && expectOf(r) != expectOf(*expect) {
				err = deviceupdate.Errorf(deviceupdate.ECONFLICT, "rule %s changed since the confirmation; look again and retry", id)
			}
		}
		if err == nil {
			_, err = c.cfg.Rollouts.StartRollout(ctx, id, o, s.Admin.Name)
		}
		if err != nil {
			if deviceupdate.ErrorCode(err) == deviceupdate.EINTERNAL {
				return done, failed, err
			}
			failed = append(failed, deviceupdate.ErrorMessage(err))
			continue
		}
		done++
	}
	return done, failed, nil
}

// optionalInt reads a count of a form, 0 when empty.
func optionalInt(s, name string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, deviceupdate.Errorf(deviceupdate.EINVALID, "%s %q: want a whole number of 0 or more", name, truncate(s, 32))
	}
	return n, nil
}
