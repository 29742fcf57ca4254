package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// defaultRolloutEvery is how often staged rollouts are judged: often
// enough to notice failures within minutes, seldom enough to cost nothing.
const defaultRolloutEvery = time.Minute

// runRollouts judges the staged rollouts every m.RolloutEvery until Close:
// promotion and completion are logged, an automatic pause is logged as a
// warning with its reason and counted in deviceupdate_rollout_pauses_total.
func (m *Main) runRollouts(svc deviceupdate.RolloutService, reg prometheus.Registerer) {
	every := m.RolloutEvery
	if every <= 0 {
		every = defaultRolloutEvery
	}
	steps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deviceupdate_rollout_steps_total",
		Help: "Staged rollout steps taken by the service itself, by step: promote (the next wave started), complete, pause (too many devices failed).",
	}, []string{"step"})
	for _, s := range []deviceupdate.RolloutStep{deviceupdate.StepPromote, deviceupdate.StepComplete, deviceupdate.StepPause} {
		steps.WithLabelValues(string(s))
	}
	reg.MustRegister(steps)
	stop := make(chan struct{})
	m.rolloutStop = stop
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			changed, err := svc.EvaluateRollouts(context.Background(), time.Now())
			if err != nil {
				m.Logger.Error("judge staged rollouts; the next round tries again", zap.Error(err))
			}
			for _, c := range changed {
				steps.WithLabelValues(string(c.Step)).Inc()
				fields := []zap.Field{zap.String("rule", c.Rollout.RuleID), zap.String("version", c.Rollout.Version.String()),
					zap.String("step", string(c.Step)), zap.Int("wave", c.Rollout.Wave+1)}
				if c.Step == deviceupdate.StepPause {
					m.Logger.Warn("staged rollout paused itself", append(fields, zap.String("reason", c.Rollout.Reason),
						zap.String("fix", "look at the failed devices; `deviceupdate rule resume` to go on, `deviceupdate rule reset` to roll back"))...)
					continue
				}
				m.Logger.Info("staged rollout moved on", fields...)
			}
		}
	}()
}
