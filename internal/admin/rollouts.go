package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

var _ deviceupdate.RolloutService = (*Service)(nil)

// StartRollout starts a staged approval, audited as rule.rollout.start.
// With --min-devices, every wave reaches at least that many of the
// devices of the rule the inventory knows: a wave of a small fleet could
// hold fewer, and the rollout would wait for ever for them to be judged.
func (s *Service) StartRollout(_ context.Context, ruleID string, o deviceupdate.RolloutOptions, actor string) (deviceupdate.Rollout, error) {
	var r deviceupdate.Rollout
	var raw [8]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	o.Reach = 0
	if rule, err := s.DB.FindRule(ruleID); err == nil && o.MinDevices > 0 {
		known, err := s.ruleDevices(rule.RuleKey)
		if err != nil {
			return r, err
		}
		o.Reach = (&deviceupdate.Rollout{ID: id, RolloutOptions: o}).ReachFor(known, o.MinDevices)
	}
	err := s.change(audit.Entry{Actor: actor, Action: "rule.rollout.start", Target: ruleID}, func(tx store.Store, e *audit.Entry) (err error) {
		if r, err = tx.StartRollout(ruleID, o, id, s.now()); err != nil {
			return err
		}
		e.After, _ = json.Marshal(r)
		return nil
	})
	return r, err
}

// ruleDevices returns the IDs of the devices the inventory knows that the
// rule's key covers.
func (s *Service) ruleDevices(k deviceupdate.RuleKey) ([]string, error) {
	match := func(d deviceupdate.Device) bool {
		return slices.ContainsFunc(d.Modules, func(m deviceupdate.Module) bool { return d.RuleKey(m.UpdateType) == k })
	}
	var ids []string
	for after := ""; ; {
		page, next, err := s.DB.DevicesPage(after, 1000, match)
		if err != nil {
			return nil, err
		}
		for _, d := range page {
			ids = append(ids, d.ID)
		}
		if next == "" {
			return ids, nil
		}
		after = next
	}
}

// Rollout returns the rule's latest rollout and its tally now.
func (s *Service) Rollout(_ context.Context, ruleID string) (deviceupdate.Rollout, []deviceupdate.WaveStats, error) {
	r, err := s.DB.Rollout(ruleID)
	if err != nil {
		return deviceupdate.Rollout{}, nil, err
	}
	at := s.now()
	if !r.Active() && !r.EndedAt.IsZero() {
		at = r.EndedAt // it stopped tracking its devices then
	}
	stats, err := s.tally(r, at)
	return *r, stats, err
}

func (s *Service) tally(r *deviceupdate.Rollout, now time.Time) ([]deviceupdate.WaveStats, error) {
	devices, err := s.DB.RolloutDevices(r.ID)
	if err != nil {
		return nil, err
	}
	interval, err := s.pollInterval()
	if err != nil {
		return nil, err
	}
	if s.PollInterval > 0 {
		// A simulation's interval wins over the ones the answers gave.
		for i := range devices {
			devices[i].Interval = 0
		}
	}
	// Polls are spread a tenth either way (deviceupdate.JitteredInterval);
	// grace covers that and a slow boot.
	return r.Tally(devices, interval, interval/5, now), nil
}

// pollInterval is s.PollInterval, else the global PollIntervalSeconds setting.
func (s *Service) pollInterval() (time.Duration, error) {
	if s.PollInterval > 0 {
		return s.PollInterval, nil
	}
	global, _, err := s.DB.ConfigOverrides(deviceupdate.ScopeGlobal)
	if err != nil {
		return 0, err
	}
	for _, v := range deviceupdate.ResolveConfig(global, nil, deviceupdate.ScopeGlobal) {
		if v.Name == "PollIntervalSeconds" {
			n, _ := strconv.Atoi(v.Value)
			return time.Duration(n) * time.Second, nil
		}
	}
	return 24 * time.Hour, nil
}

// PauseRollout stops new offers and promotion, audited as rule.rollout.pause.
func (s *Service) PauseRollout(_ context.Context, ruleID, actor string) (deviceupdate.Rollout, error) {
	return s.changeRollout(ruleID, "pause", actor, func(r deviceupdate.Rollout) (deviceupdate.Rollout, error) {
		if r.State != deviceupdate.RolloutRunning {
			return r, deviceupdate.Errorf(deviceupdate.ECONFLICT, "the rollout of rule %s is %s, not running; there is nothing to pause", r.RuleID, r.State)
		}
		r.State, r.Reason = deviceupdate.RolloutPaused, "paused by "+actor
		return r, nil
	})
}

// ResumeRollout restarts a paused rollout, audited as
// rule.rollout.resume. The admin accepts the failures judged so far: from
// then on only new ones count against the limit (else a rollout paused
// for failures would pause again at once). The current wave's soak
// starts again: its devices are judged anew before the next wave.
func (s *Service) ResumeRollout(_ context.Context, ruleID, actor string) (deviceupdate.Rollout, error) {
	now := s.now()
	// The tally is read before the change's transaction; the change is
	// refused when the rollout moved on in between. When it cannot be
	// read, the change below refuses with the reason, audited.
	var seen deviceupdate.Rollout
	accepted := 0
	if r, err := s.DB.Rollout(ruleID); err == nil {
		stats, err := s.tally(r, now)
		if err != nil {
			return deviceupdate.Rollout{}, err
		}
		seen, accepted = *r, r.Failed(stats)
	}
	return s.changeRollout(ruleID, "resume", actor, func(r deviceupdate.Rollout) (deviceupdate.Rollout, error) {
		if r.State != deviceupdate.RolloutPaused {
			return r, deviceupdate.Errorf(deviceupdate.ECONFLICT, "the rollout of rule %s is %s, not paused; there is nothing to resume", r.RuleID, r.State)
		}
		if r.ID != seen.ID || r.Wave != seen.Wave {
			return r, deviceupdate.Errorf(deviceupdate.ECONFLICT, "the rollout of rule %s changed while it was resumed; try again", r.RuleID)
		}
		r.State, r.Reason, r.WaveStartedAt, r.Accepted = deviceupdate.RolloutRunning, "", now.UTC(), accepted
		return r, nil
	})
}

// AbortRollout ends an active rollout and resets its rule, audited as
// rule.rollout.abort: every device is offered the previous version.
func (s *Service) AbortRollout(_ context.Context, ruleID, actor string) (deviceupdate.Rollout, error) {
	now := s.now()
	return s.changeRollout(ruleID, "abort", actor, func(r deviceupdate.Rollout) (deviceupdate.Rollout, error) {
		if !r.Active() {
			return r, deviceupdate.Errorf(deviceupdate.ECONFLICT, "the rollout of rule %s is %s already", r.RuleID, r.State)
		}
		r.State, r.Reason, r.EndedAt = deviceupdate.RolloutAborted, "aborted by "+actor, now.UTC()
		return r, nil
	})
}

// changeRollout makes one audited change of a rule's rollout:
// rule.rollout.<action>, with the rollout before and after.
func (s *Service) changeRollout(ruleID, action, actor string, change func(deviceupdate.Rollout) (deviceupdate.Rollout, error)) (deviceupdate.Rollout, error) {
	var after deviceupdate.Rollout
	err := s.change(audit.Entry{Actor: actor, Action: "rule.rollout." + action, Target: ruleID}, func(tx store.Store, e *audit.Entry) error {
		before, a, err := tx.ChangeRollout(ruleID, change)
		if err != nil {
			return err
		}
		after = a
		e.Before, _ = json.Marshal(before)
		e.After, _ = json.Marshal(after)
		return nil
	})
	return after, err
}

// RolloutActor is the actor of the changes the service makes to a
// rollout by itself: promotion, completion and automatic pauses.
const RolloutActor = "rollout"

// EvaluateRollouts judges every running rollout at now and promotes,
// completes or pauses it (deviceupdate.Rollout.Next), each change audited
// as rule.rollout.promote, rule.rollout.complete or rule.rollout.pause
// (with the reason), by RolloutActor. It returns the rollouts it changed,
// as they are after the change.
func (s *Service) EvaluateRollouts(_ context.Context, now time.Time) ([]deviceupdate.RolloutChange, error) {
	rollouts, err := s.DB.Rollouts()
	if err != nil {
		return nil, err
	}
	var changed []deviceupdate.RolloutChange
	for i := range rollouts {
		r := &rollouts[i]
		if r.State != deviceupdate.RolloutRunning {
			continue
		}
		stats, err := s.tally(r, now)
		if err != nil {
			return changed, err
		}
		next, step := r.Next(stats, now)
		if step == deviceupdate.StepNone {
			continue
		}
		seen := *r
		after, err := s.changeRollout(r.RuleID, string(step), RolloutActor, func(cur deviceupdate.Rollout) (deviceupdate.Rollout, error) {
			// An admin may have paused or aborted it since it was read.
			if cur.ID != seen.ID || cur.State != seen.State || cur.Wave != seen.Wave {
				return cur, deviceupdate.Errorf(deviceupdate.ECONFLICT, "the rollout of rule %s changed while it was judged", cur.RuleID)
			}
			return next, nil
		})
		if deviceupdate.ErrorCode(err) == deviceupdate.ECONFLICT {
			continue
		}
		if err != nil {
			return changed, err
		}
		changed = append(changed, deviceupdate.RolloutChange{Step: step, Rollout: after, Waves: stats})
	}
	return changed, nil
}

// resetRollout is a reset of a rule whose rollout is active: it aborts
// the rollout, audited as rule.rollout.abort, and returns the rule before
// and after.
func (s *Service) resetRollout(ctx context.Context, ruleID, actor string) (deviceupdate.Rule, *deviceupdate.Rule, error) {
	before, err := s.DB.FindRule(ruleID)
	if err != nil {
		return deviceupdate.Rule{}, nil, err
	}
	if _, err := s.AbortRollout(ctx, ruleID, actor); err != nil {
		return *before, nil, err
	}
	after, err := s.DB.FindRule(ruleID)
	return *before, after, err
}
