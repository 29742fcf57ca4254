package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

const (
	oldBuild = "4.0.7577.4000"
	newBuild = "4.0.7577.4366"
)

// rolloutFleet approves oldBuild for the CX600 rule, imports newBuild as
// pending, and records n phones running oldBuild; it returns the rule's
// ID and the phones' IDs.
func rolloutFleet(t *testing.T, e *env, n int) (string, []string) {
	t.Helper()
	up := e.importCab(t, oldBuild)
	if _, _, err := e.svc.ChangeRule(t.Context(), up.RuleID, deviceupdate.RuleApprove, nil, "ada"); err != nil {
		t.Fatal(err)
	}
	e.importCab(t, newBuild)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("00-04-F2-01-%02X-%02X", i/256, i%256)
	}
	e.polls(t, ids, oldBuild, "")
	return up.RuleID, ids
}

// polls records a poll of each phone, as the inventory's flush does:
// running reported, offered offered ("" for nothing).
func (e *env) polls(t *testing.T, ids []string, reported, offered string) {
	t.Helper()
	var off deviceupdate.Version
	if offered != "" {
		off = deviceupdate.MustParseVersion(offered)
	}
	batch := make([]deviceupdate.Device, len(ids))
	for i, id := range ids {
		batch[i] = deviceupdate.Device{ID: id, MAC: id, DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU",
			Remote: "10.1.0.1", LastSeen: e.clock.now().UTC(), Polls: 1, Offered: off,
			Modules: []deviceupdate.Module{{UpdateType: "CPE", Filename: "CPE.nbt", Version: deviceupdate.MustParseVersion(reported)}}}
	}
	if err := e.db.PutDevices(batch); err != nil {
		t.Fatal(err)
	}
}

func (e *env) rollout(t *testing.T, ruleID string) deviceupdate.Rollout {
	t.Helper()
	r, _, err := e.svc.Rollout(t.Context(), ruleID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// auditedBy returns the actors of the trail's entries of action.
func (e *env) auditedBy(t *testing.T, action string) []string {
	t.Helper()
	list, err := e.svc.AuditEntries(t.Context(), deviceupdate.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	var actors []string
	for _, en := range list.Entries {
		actors = append(actors, en.Actor)
	}
	return actors
}

// TestRolloutOnRulesPage starts a rollout through the service, lets the
// first wave's phones take the build (but one), and reads the rules page:
// the state, the wave, a bar per wave with its counts; an operator
// pauses and resumes it from the page, audited as them; a viewer sees no
// button and a forced POST is refused.
func TestRolloutOnRulesPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ruleID, ids := rolloutFleet(t, e, 100)
	r, err := e.svc.StartRollout(t.Context(), ruleID, deviceupdate.RolloutOptions{Waves: []int{20, 60, 100}, Soak: time.Hour, MaxFailures: 0.1, MaxPerHour: 50}, "otto")
	if err != nil {
		t.Fatal(err)
	}
	var wave1 []string
	for _, id := range ids {
		if r.Member(id) {
			wave1 = append(wave1, id)
		}
	}
	if len(wave1) < 2 {
		t.Fatalf("only %d of 100 phones in a 20%% wave", len(wave1))
	}
	e.polls(t, wave1, oldBuild, newBuild)
	e.clock.add(time.Minute)
	e.polls(t, wave1[1:], newBuild, newBuild)

	otto, vera := e.signIn(t, "otto"), e.signIn(t, "vera")
	page := e.get(t, otto, "/rules").Body.String()
	k := len(wave1)
	for _, want := range []string{
		`<span class="state running">running</span> staged rollout of ` + newBuild + `, wave 1 of 3`,
		"(from " + oldBuild,
		"waves 20,60,100 · soak 1h · max failures 10% · max 50 per hour · this wave is judged after",
		fmt.Sprintf(`<span class="wave-counts">%d of ~%d offered · <span class="n-updated">%d updated</span> · <span class="n-failed">0 failed</span> · <span class="n-silent">0 silent</span>`, k, max(20, k), k-1),
		fmt.Sprintf(`<rect class="bar-updated" x="0.00" width="%.2f" height="10"/><rect class="bar-pending" x="%.2f" width="%.2f" height="10"/>`,
			float64(k-1)*100/float64(max(20, k)), float64(k-1)*100/float64(max(20, k)), 100/float64(max(20, k))),
		"0 of ~40 offered", // the second wave: 60% less 20% of 100 phones
		`action="/rules/` + ruleID + `/pause"`,
		">Reject</button>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("operator's rules page lacks %q", want)
		}
	}
	for _, unwanted := range []string{">Approve</button>", ">Restore</button>", ">Resume</button>"} {
		if strings.Contains(page, unwanted) {
			t.Errorf("rules page during a running rollout offers %q", unwanted)
		}
	}
	if m := inline.FindString(page); m != "" {
		t.Errorf("rules page has %q, which the CSP forbids", m)
	}
	if vp := e.get(t, vera, "/rules").Body.String(); !strings.Contains(vp, "wave 1 of 3") || strings.Contains(vp, ">Pause</button>") {
		t.Errorf("viewer's rules page: no rollout, or a Pause button")
	}

	// Pause, refused to a viewer and without the CSRF token.
	pause, resume := "/rules/"+ruleID+"/pause", "/rules/"+ruleID+"/resume"
	for _, tt := range []struct {
		name string
		u    user
		form url.Values
		want string
	}{
		{"viewer", vera, url.Values{"csrf": {vera.csrf}}, "needs the operator role"},
		{"no CSRF token", otto, url.Values{}, "reload the page"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if rec := e.post(t, tt.u, pause, tt.form); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("status %d, want 403 saying %q\n%s", rec.Code, tt.want, rec.Body)
			}
		})
	}
	if got := e.rollout(t, ruleID).State; got != deviceupdate.RolloutRunning {
		t.Fatalf("a refused pause left the rollout %s", got)
	}

	rec := e.post(t, otto, pause, url.Values{"csrf": {otto.csrf}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("operator's pause: %d\n%s", rec.Code, rec.Body)
	}
	if r := e.rollout(t, ruleID); r.State != deviceupdate.RolloutPaused || r.Reason != "paused by otto" {
		t.Fatalf("after Pause: %s %q", r.State, r.Reason)
	}
	if got := e.auditedBy(t, "rule.rollout.pause"); len(got) != 1 || got[0] != "otto" {
		t.Errorf("rule.rollout.pause audited by %v, want [otto]", got)
	}
	page = e.get(t, otto, rec.Header().Get("Location")).Body.String()
	for _, want := range []string{
		"The rollout of rule " + ruleID + " is paused.",
		`<span class="state paused">paused</span>`,
		`<p class="reason error">paused by otto</p>`,
		`action="/rules/` + ruleID + `/resume"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("rules page after Pause lacks %q", want)
		}
	}
	if strings.Contains(page, ">Pause</button>") {
		t.Error("a paused rollout offers Pause")
	}
	if rec := e.post(t, vera, resume, url.Values{"csrf": {vera.csrf}}); rec.Code != http.StatusForbidden {
		t.Errorf("viewer's resume: %d, want 403", rec.Code)
	}
	if rec := e.post(t, otto, pause, url.Values{"csrf": {otto.csrf}}); rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "nothing to pause") {
		t.Errorf("pause of a paused rollout: %d, want 409 saying why\n%s", rec.Code, rec.Body)
	}

	if rec := e.post(t, otto, resume, url.Values{"csrf": {otto.csrf}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("operator's resume: %d\n%s", rec.Code, rec.Body)
	}
	if r := e.rollout(t, ruleID); r.State != deviceupdate.RolloutRunning || r.Reason != "" {
		t.Fatalf("after Resume: %s %q", r.State, r.Reason)
	}
	if got := e.auditedBy(t, "rule.rollout.resume"); len(got) != 1 || got[0] != "otto" {
		t.Errorf("rule.rollout.resume audited by %v, want [otto]", got)
	}
}

// TestStagedApproveFromConfirmation starts a rollout from the Approve
// confirmation's staged form: bad options are refused and start nothing,
// good ones start it audited as the operator and leave the rule's
// approved version as it was; Reject then aborts it.
func TestStagedApproveFromConfirmation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ruleID, _ := rolloutFleet(t, e, 10)
	otto := e.signIn(t, "otto")
	confirm := e.get(t, otto, "/rules/confirm?action=approve&id="+ruleID).Body.String()
	if !strings.Contains(confirm, ">Start staged rollout</button>") || !strings.Contains(confirm, `name="waves" value="5,25,100"`) {
		t.Fatalf("the Approve confirmation offers no staged rollout:\n%s", confirm)
	}
	if reject := e.get(t, otto, "/rules/confirm?action=reset&id="+ruleID).Body.String(); strings.Contains(reject, "Start staged rollout") {
		t.Error("the Reject confirmation offers a staged rollout")
	}
	expect := oldBuild + "/" + newBuild + "/0.0.0.0"
	staged := func(fields ...string) url.Values {
		f := url.Values{"csrf": {otto.csrf}, "action": {"approve"}, "staged": {"1"}, "id": {ruleID}, "expect-" + ruleID: {expect},
			"waves": {"10,50,100"}, "soak": {"30m"}, "max-failures": {"10%"}}
		for i := 0; i < len(fields); i += 2 {
			f.Set(fields[i], fields[i+1])
		}
		return f
	}
	for _, tt := range []struct {
		name       string
		form       url.Values
		wantStatus int
		want       string
	}{
		{"waves not increasing", staged("waves", "50,10,100"), 400, "each wave must be larger than the one before"},
		{"waves not ending at 100", staged("waves", "10,50"), 400, "the last wave must be 100%"},
		{"no soak, no minimum", staged("soak", "0s"), 400, "a soak of zero with no minimum"},
		{"window unreadable", staged("window", "25:00-05:00"), 400, "want hh:mm-hh:mm"},
		{"min devices negative", staged("min-devices", "-1"), 400, "min devices &#34;-1&#34;: want a whole number"},
		{"rule changed since", staged("expect-"+ruleID, "0.0.0.0/"+newBuild+"/0.0.0.0"), 409, "changed since the confirmation"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.post(t, otto, "/rules/apply", tt.form)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("status %d, want %d saying %q\n%s", rec.Code, tt.wantStatus, tt.want, rec.Body)
			}
			if _, _, err := e.svc.Rollout(t.Context(), ruleID); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
				t.Errorf("a refused staged approve started a rollout (%v)", err)
			}
		})
	}

	rec := e.post(t, otto, "/rules/apply", staged("window", "22:00-05:00", "max-per-hour", "25"))
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("staged approve: %d\n%s", rec.Code, rec.Body)
	}
	r := e.rollout(t, ruleID)
	if got := fmt.Sprintf("%s %v %s %v %s %d %s %s", r.State, r.Waves, r.Soak, r.MaxFailures, r.Window, r.MaxPerHour, r.Version, r.Previous); got != "running [10 50 100] 30m0s 0.1 22:00-05:00 25 "+newBuild+" "+oldBuild {
		t.Errorf("rollout started: %s", got)
	}
	if got := e.auditedBy(t, "rule.rollout.start"); len(got) != 1 || got[0] != "otto" {
		t.Errorf("rule.rollout.start audited by %v, want [otto]", got)
	}
	if rule := e.rule(t, ruleID); rule.ApprovedVersion.String() != oldBuild || rule.PendingVersion.String() != newBuild {
		t.Errorf("a staged approve changed the rule's versions at once: %+v", rule)
	}
	page := e.get(t, otto, rec.Header().Get("Location")).Body.String()
	for _, want := range []string{"Started a staged rollout of 1 rule.", "waves 10,50,100 · soak 30m · max failures 10% · window 22:00-05:00 · max 25 per hour"} {
		if !strings.Contains(page, want) {
			t.Errorf("rules page after the staged approve lacks %q", want)
		}
	}

	// Reject says it aborts the rollout, and does.
	reject := e.get(t, otto, "/rules/confirm?action=reset&id="+ruleID).Body.String()
	if want := "The staged rollout of " + newBuild + " is aborted: the phones it reached are offered " + oldBuild + " again."; !strings.Contains(reject, want) {
		t.Errorf("the Reject confirmation lacks %q", want)
	}
	if rec := e.post(t, otto, "/rules/apply", url.Values{"csrf": {otto.csrf}, "action": {"reset"}, "id": {ruleID}, "expect-" + ruleID: {expect}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("reject: %d\n%s", rec.Code, rec.Body)
	}
	page = e.get(t, otto, "/rules").Body.String()
	if !strings.Contains(page, `<span class="state aborted">aborted</span>`) || strings.Contains(page, ">Pause</button>") || strings.Contains(page, ">Resume</button>") {
		t.Errorf("rules page after Reject: want the rollout aborted, without Pause or Resume")
	}
}
