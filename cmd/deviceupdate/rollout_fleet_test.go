package main_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/phone"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestRolloutFleet: a staged rollout judged by the real server from what
// a simulated fleet of real phones reports, over a few seconds (the
// hidden serve flags compress the poll interval and the judging period):
// a healthy fleet goes through 10/50/100 and the rule ends approved; a
// fleet where half the phones revert pauses itself in the first wave,
// audited by "rollout", exposing at most a quarter of the fleet, and a
// reset offers the exposed phones the old version again.
func TestRolloutFleet(t *testing.T) {
	t.Parallel()
	const oldV, newV, count = "4.0.7577.4100", "4.0.7577.4366", 80
	const key = "UCPhone/Polycom/CX600/A/ENU/CPE"
	tests := []struct {
		name      string
		duration  string // of polling: enough to complete or to pause, with room for a loaded machine
		fail      []string
		wantState deviceupdate.RolloutState
		wantWave  int
	}{
		{"healthy", "30s", nil, deviceupdate.RolloutCompleted, 3},
		{"half revert", "30s", []string{"--fail-rate", "50%", "--fail-mode", "revert"}, deviceupdate.RolloutPaused, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := e2e.Start(t, e2e.Options{Args: []string{"--rollout-every", "300ms", "--rollout-poll-interval", "3s"}})
			ca := testpki.NewCA(t, "Polycom Root")
			trustPublisher(t, srv, ca)
			sign := testpkg.NewSigner(t, ca, testpki.Options{})
			env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
			run := func(args ...string) string { t.Helper(); return mustRun(t, env, args...) }
			importVersion := func(v string) {
				files := testpkg.Files{}
				testpkg.AddUpdate(t, files, "", v, testpkg.Image(16<<10, byte(len(v)+i)), sign)
				run("import", testpkg.MakeCab(t, files))
			}
			trust := filepath.Join(t.TempDir(), "publisher.pem")
			testpki.WriteCert(t, trust, ca.Cert)
			sim := func(version string, extra ...string) phone.SimResult {
				t.Helper()
				args := append([]string{"phone", "sim", "--server", srv.InternalURL(), "--count", fmt.Sprint(count), "--model", "CX600",
					"--version", version, "--trust", trust, "--peer-sharing", "off", "--first-addr", fmt.Sprintf("127.78.%d.1", i+1),
					"--timeout", "2m", "--json"}, extra...)
				res := e2e.Run(t, "", nil, args...)
				var got phone.SimResult
				err := json.Unmarshal([]byte(res.Stdout), &got)
				if res.Code == 1 && got.Polls == count && got.Offered == "" {
					return got // the boot: nothing to offer yet
				}
				if err != nil || res.Code != 0 {
					t.Fatalf("phone sim: exit %d (%v)\nstdout: %s\nstderr: %s", res.Code, err, res.Stdout, res.Stderr)
				}
				return got
			}
			offered := func(r phone.SimResult, v string) int {
				for _, sv := range r.Versions {
					if sv.Version == v {
						return sv.Offered
					}
				}
				return 0
			}

			importVersion(oldV)
			run("rule", "approve", key)
			sim(oldV) // the boot: the inventory knows the fleet once it writes its batch
			for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
				var known []deviceupdate.Device
				if err := json.Unmarshal([]byte(run("device", "list", "--json")), &known); err != nil {
					t.Fatal(err)
				}
				if len(known) == count {
					break
				}
				if time.Since(start) > 20*time.Second {
					t.Fatalf("the inventory knows %d of the %d phones that polled", len(known), count)
				}
			}
			importVersion(newV)
			// --min-devices widens the first wave to 14 of the 80 phones:
			// with half of them reverting, it holds one or none of those but
			// for a chance of 5 in 10,000 (the rollout's ID is random); the
			// 8 or so of a plain 10% held none about 1 time in 300.
			run("rule", "approve", key, "--waves", "10,50,100", "--soak", "2s", "--max-failures", "10%", "--min-devices", "14")
			got := sim(oldV, append([]string{"--duration", tt.duration, "--poll-every", "2s"}, tt.fail...)...)

			var st deviceupdate.RolloutStatus
			if err := json.Unmarshal([]byte(run("rule", "rollout", key, "--json")), &st); err != nil {
				t.Fatal(err)
			}
			t.Logf("rollout %+v; the fleet %+v", st, got.Versions)
			if st.State != tt.wantState || st.Wave != tt.wantWave {
				t.Fatalf("rollout %s in wave %d (%s); want %s in wave %d", st.State, st.Wave, st.Reason, tt.wantState, tt.wantWave)
			}
			var rules []deviceupdate.Rule
			if err := json.Unmarshal([]byte(run("rule", "list", "--json")), &rules); err != nil || len(rules) != 1 {
				t.Fatalf("rule list: %v %+v", err, rules)
			}
			var audited struct{ Entries []deviceupdate.AuditEntry }
			if err := json.Unmarshal([]byte(run("audit", "list", "--action", "rule.rollout.", "--json")), &audited); err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range audited.Entries {
				actions = append(actions, e.Actor+":"+e.Action)
			}
			if tt.wantState == deviceupdate.RolloutCompleted {
				if rules[0].ApprovedVersion.String() != newV || rules[0].RestoreVersion.String() != oldV {
					t.Errorf("rule after completion %+v; want %s approved, %s to restore", rules[0], newV, oldV)
				}
				if want := "rollout:rule.rollout.promote rollout:rule.rollout.promote rollout:rule.rollout.complete"; !strings.HasSuffix(strings.Join(actions, " "), want) {
					t.Errorf("audited %v; want it to end with %s", actions, want)
				}
				return
			}
			if exposed := offered(got, newV); exposed == 0 || exposed > count/4 {
				t.Errorf("%d of %d phones were offered %s; want some, at most a quarter", exposed, count, newV)
			}
			if !strings.Contains(strings.Join(actions, " "), "rollout:rule.rollout.pause") || !strings.Contains(st.Reason, "reverted") {
				t.Errorf("audited %v, reason %q; want a pause by rollout for reverts", actions, st.Reason)
			}
			// A reset aborts: phones running the new version are offered
			// the old one and go back to it.
			run("rule", "reset", key)
			back := sim(newV)
			if offered(back, oldV) != count || offered(back, newV) != 0 {
				t.Errorf("after the reset, the fleet on %s was offered %+v; want %s for every phone", newV, back.Versions, oldV)
			}
		})
	}
}
