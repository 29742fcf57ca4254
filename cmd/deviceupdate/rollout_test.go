package main_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

// TestRolloutThroughCLI: a staged approval started, shown, paused,
// resumed and aborted with the CLI against the real server, each change
// audited; bad options and the actions a running rollout forbids are
// refused with a clear message and change nothing.
func TestRolloutThroughCLI(t *testing.T) {
	_, env, pkg, run := ruleServer(t)
	key := "UCPhone/Polycom/CX600/A/ENU/CPE"
	state := func() string {
		t.Helper()
		s := ruleState(t, run)
		res := e2e.Run(t, "", env, "rule", "rollout", key, "--json")
		if res.Code != 0 {
			return s + "; " + strings.TrimSpace(res.Stderr)
		}
		var st deviceupdate.RolloutStatus
		if err := json.Unmarshal([]byte(res.Stdout), &st); err != nil {
			t.Fatal(err)
		}
		return s + fmt.Sprintf("; rollout %s wave %d of %d", st.State, st.Wave, len(st.Waves))
	}
	run("import", pkg("4.0.7577.4100"))
	run("rule", "approve", key)
	run("import", pkg("4.0.7577.4366"))
	before := state()
	if !strings.Contains(before, "has no staged rollout") {
		t.Fatalf("before any rollout: %s", before)
	}

	refused := func(step string, args []string, wantCode int, wantText string) {
		t.Helper()
		was := state()
		res := e2e.Run(t, "", env, args...)
		if res.Code != wantCode || !strings.Contains(res.Stderr, wantText) || strings.Count(strings.TrimSpace(res.Stderr), "\n") > 0 {
			t.Errorf("%s %v: exit %d %q; want %d and one line with %q", step, args, res.Code, res.Stderr, wantCode, wantText)
		}
		if now := state(); now != was {
			t.Errorf("%s changed %s into %s", step, was, now)
		}
	}
	for _, bad := range []struct {
		name     string
		args     []string
		wantText string
	}{
		{"waves not ending at 100", []string{"--waves", "5,25,50"}, "the last wave must be 100%"},
		{"waves not increasing", []string{"--waves", "25,5,100"}, "each wave must be larger than the one before"},
		{"zero soak, no minimum", []string{"--waves", "5,100", "--soak", "0s"}, "soak of zero with no minimum"},
		{"bad window", []string{"--waves", "5,100", "--window", "22-5"}, `window "22-5"`},
		{"soak without waves", []string{"--soak", "1h"}, "--soak goes with --waves"},
	} {
		refused(bad.name, append([]string{"rule", "approve", key}, bad.args...), 2, bad.wantText)
	}

	res := run("rule", "approve", key, "--waves", "10,50,100", "--soak", "1h", "--max-failures", "10%", "--window", "22:00-05:00", "--max-per-hour", "50")
	if !strings.Contains(res.Stdout, "started a staged rollout of 4.0.7577.4366") {
		t.Errorf("approve --waves said %q", res.Stdout)
	}
	if got := state(); got != "approved 4.0.7577.4100 pending 4.0.7577.4366 restore -; rollout running wave 1 of 3" {
		t.Fatalf("after approve --waves: %s", got)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(run("rule", "rollout", key, "--json").Stdout), &raw); err != nil {
		t.Fatal(err)
	}
	if w, ok := raw["waves"].([]any); !ok || len(w) != 3 || fmt.Sprint(w[0]) != "map[failed:0 offered:0 percent:10 silent:0 updated:0]" ||
		raw["rule"] == nil || raw["version"] != "4.0.7577.4366" || raw["reason"] != "" || len(raw) != 6 {
		t.Errorf("rule rollout --json = %v; want SPEC §10's document", raw)
	}
	if out := run("rule", "rollout", key).Stdout; !strings.Contains(out, "rollout of 4.0.7577.4366 running, wave 1 of 3\nWAVE  PERCENT  OFFERED  UPDATED  FAILED  SILENT\n1     10%      0") {
		t.Errorf("rule rollout = %q", out)
	}

	refused("approve during a rollout", []string{"rule", "approve", key}, 1, "staged rollout running")
	refused("a second rollout", []string{"rule", "approve", key, "--waves", "100", "--soak", "1h"}, 1, "staged rollout running")
	refused("restore during a rollout", []string{"rule", "restore", key, "--yes"}, 1, "staged rollout running")
	refused("resume a running rollout", []string{"rule", "resume", key}, 1, "not paused")

	run("rule", "pause", key)
	if got := state(); !strings.HasSuffix(got, "rollout paused wave 1 of 3") {
		t.Fatalf("after pause: %s", got)
	}
	refused("pause a paused rollout", []string{"rule", "pause", key}, 1, "not running")
	run("rule", "resume", key)
	run("rule", "reset", key)
	if got := state(); got != "approved 4.0.7577.4100 pending - restore -; rollout aborted wave 1 of 3" {
		t.Fatalf("after reset: %s", got)
	}

	var list deviceupdate.AuditList
	if err := json.Unmarshal([]byte(run("audit", "list", "--action", "rule.rollout.", "--json").Stdout), &list); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range list.Entries {
		if e.Result == "ok" {
			actions = append(actions, e.Action)
		}
	}
	if got := strings.Join(actions, ","); got != "rule.rollout.start,rule.rollout.pause,rule.rollout.resume,rule.rollout.abort" {
		t.Errorf("audited rollout actions = %s", got)
	}
}
