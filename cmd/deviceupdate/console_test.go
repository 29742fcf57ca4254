package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestConsoleInBrowser drives the web console of the real binary in
// Chromium: a wrong password then the right one, an import with the
// progress bar, an operator's approve with confirmation that the CLI and
// the trail (naming the operator) agree on, a viewer without Approve
// whose forced POST is refused, sign-out, and a screenshot of every page
// (in the test's temp folder, and in $DEVICEUPDATE_SHOTS when set).
func TestConsoleInBrowser(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	cert, err := certs.ReadServerCert(srv.Certs)
	if err != nil {
		t.Fatal(err)
	}
	b := e2e.NewBrowser(t, cert)
	base := srv.URL()
	env := []string{"DEVICEUPDATE_SERVER=" + base, "DEVICEUPDATE_CERTS=" + srv.Certs}
	const pw = "a console password 1"
	for _, a := range [][2]string{{"ada", "admin"}, {"otto", "operator"}, {"vera", "viewer"}} {
		if res := runStdin(t, env, pw+"\n", "admin", "add", a[0], "--role", a[1], "--password-stdin"); res.Code != 0 {
			t.Fatalf("admin add %s: exit %d: %s", a[0], res.Code, res.Stderr)
		}
	}
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	cab := func(version string) string {
		files := testpkg.Files{}
		testpkg.AddUpdate(t, files, "", version, testpkg.Image(4<<20, 9), sign)
		return testpkg.MakeCab(t, files)
	}
	for i, v := range []string{"4.0.7577.4000", "4.0.7577.4000", "4.0.7577.4100", "4.0.7577.4366"} {
		if code, body := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody("00-04-F2-00-10-0"+string(rune('1'+i)), "CX600", v)); code != 200 {
			t.Fatalf("poll: %d %s", code, body)
		}
	}
	if code, body := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody("00-04-F2-00-20-01", "CX700", "4.0.7577.4100")); code != 200 {
		t.Fatalf("poll: %d %s", code, body)
	}

	signIn := func(name, password, then string) {
		b.Do("sign in as "+name,
			chromedp.Navigate(base+"/login"),
			chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), name),
			chromedp.SendKeys(chromedp.CSS("#password"), password),
			chromedp.Click(chromedp.CSS(".login button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(then)),
		)
	}
	signOut := func() {
		b.Do("sign out", chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#username")))
	}

	b.Do("open the console", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
	b.Shot("login")
	signIn("ada", "not the password at all", "main .error")
	if msg := b.Text("main .error"); msg != "Wrong name or password." {
		t.Errorf("wrong password shows %q", msg)
	}
	b.Shot("login-wrong-password")
	signIn("ada", pw, "header.top")

	// Import with the progress bar.
	b.Do("import",
		chromedp.Navigate(base+"/import"),
		chromedp.SetUploadFiles(chromedp.CSS("#package"), []string{cab("4.0.7577.4366")}),
		chromedp.Click(chromedp.CSS("#import-form button")),
		chromedp.WaitVisible(chromedp.CSS("#result table")),
	)
	if got := b.Text("#result td:nth-child(3)"); got != deviceupdate.ImportAdded {
		t.Errorf("import result %q, want %q", got, deviceupdate.ImportAdded)
	}
	if p := e2e.Eval[float64](b, `document.getElementById("import-progress").value`); p != 100 {
		t.Errorf("progress bar at %v after the upload, want 100", p)
	}
	b.Shot("import-result")
	signOut()

	// An operator approves with confirmation; the CLI and the trail agree.
	signIn("otto", pw, "header.top")
	b.Do("rules", chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(chromedp.CSS("table.rules")))
	b.Shot("rules-pending")
	b.Do("approve", chromedp.Click(chromedp.CSS(`td.actions input[value="approve"] ~ button`)), chromedp.WaitVisible(chromedp.CSS("#confirm button.primary")))
	if got := b.Text("#confirm button.primary"); got != "Confirm" {
		t.Errorf("confirmation button %q", got)
	}
	if got := b.Text("#confirm li"); !strings.Contains(got, "will be offered 4.0.7577.4366") {
		t.Errorf("confirmation says %q", got)
	}
	if r := cliRules(t, env); !r[0].ApprovedVersion.IsZero() {
		t.Fatalf("approved before Confirm: %+v", r)
	}
	b.Shot("rules-confirm")
	b.Do("staged form", chromedp.Click(chromedp.CSS("#confirm details.staged summary")), chromedp.WaitVisible(chromedp.CSS(`#confirm input[name="waves"]`)))
	b.Shot("rules-confirm-staged")
	b.Do("confirm", chromedp.Click(chromedp.CSS("#confirm button.primary")), chromedp.WaitVisible(chromedp.CSS("main .notice")))
	if got := b.Text("main .notice"); got != "Approved 1 rule." {
		t.Errorf("after Confirm: %q", got)
	}
	b.Shot("rules-approved")
	rules := cliRules(t, env)
	if len(rules) != 1 || rules[0].ApprovedVersion.String() != "4.0.7577.4366" || !rules[0].PendingVersion.IsZero() {
		t.Fatalf("rule list --json after Confirm: %+v", rules)
	}
	res := e2e.Run(t, "", env, "audit", "list")
	if res.Code != 0 || !lineWithAll(res.Stdout, "otto", "rule.approve", rules[0].ID) {
		t.Fatalf("audit list does not name otto for rule.approve:\n%s%s", res.Stdout, res.Stderr)
	}
	signOut()

	// A viewer sees no Approve, and a forced POST is refused.
	if res := e2e.Run(t, "", env, "import", cab("4.0.7577.4400")); res.Code != 0 {
		t.Fatalf("import: %s", res.Stderr)
	}
	signIn("vera", pw, "header.top")
	b.Do("viewer's rules", chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(chromedp.CSS("table.rules")))
	if n := e2e.Eval[int](b, `[...document.querySelectorAll("button")].filter(b => b.textContent.trim() === "Approve").length`); n != 0 {
		t.Errorf("viewer sees %d Approve buttons", n)
	}
	id := rules[0].ID
	status := e2e.Eval[int](b, `fetch("/rules/apply", {method: "POST",
		headers: {"X-CSRF-Token": JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"], "Content-Type": "application/x-www-form-urlencoded"},
		body: "action=approve&id=`+id+`&expect-`+id+`=4.0.7577.4366/4.0.7577.4400/0.0.0.0"}).then(r => r.status)`)
	if status != 403 {
		t.Errorf("viewer's forced approve answered %d, want 403", status)
	}
	if r := cliRules(t, env); r[0].ApprovedVersion.String() != "4.0.7577.4366" {
		t.Fatalf("the viewer's POST changed the rule: %+v", r)
	}
	b.Shot("rules-viewer")
	signOut()

	// The first phone is offered the approved build, takes it, and
	// uploads a log: its page shows the offer, the change and the log.
	const mac = "00-04-F2-00-10-01"
	for _, v := range []string{"4.0.7577.4000", "4.0.7577.4366"} {
		if code, body := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(mac, "CX600", v)); code != 200 {
			t.Fatalf("poll: %d %s", code, body)
		}
	}
	logBody := []byte("CE log line\r\n")
	if code, msg := uploadLog(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/Files", logQuery(mac, "CELog", "celog.clg"), logBody, false); code != 200 {
		t.Fatalf("log upload: %d %s", code, msg)
	}

	// Every page, as the admin.
	signIn("ada", pw, "header.top")
	for _, p := range []struct{ path, name string }{
		{"/", "dashboard"}, {"/rules", "rules"}, {"/import", "import"}, {"/devices", "devices"},
		{"/devices?model=CX600&version=4.0.7577.4000", "devices-filtered"}, {"/devices/00-04-F2-00-10-01", "device"},
		{"/testdevices", "testdevices"}, {"/sites", "sites"}, {"/config", "config"}, {"/users", "users"},
		{"/admins", "admins"}, {"/audit", "audit"},
	} {
		b.Do(p.name, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS("main h1")))
		if p.name == "dashboard" {
			b.Do("chart", chromedp.WaitVisible(chromedp.CSS("#fleet-chart")), chromedp.Sleep(300*time.Millisecond))
		}
		if probs := b.Problems(); len(probs) > 0 {
			t.Errorf("%s: %s", p.path, strings.Join(probs, "; "))
		}
		b.Shot(p.name)
	}
	b.Do("device page", chromedp.Navigate(base+"/devices/"+mac), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if got := b.Text("main table.compact:nth-of-type(2) tbody tr"); !strings.Contains(got, "4.0.7577.4000") || !strings.Contains(got, "4.0.7577.4366") {
		t.Errorf("the device's versions over time: %q", got)
	}
	if got := e2e.Eval[string](b, `fetch(document.querySelector("a[download]").href).then(r => r.text())`); got != string(logBody) {
		t.Errorf("the log downloaded from the device page: %q", got)
	}
	b.Do("verify", chromedp.Navigate(base+"/audit"), chromedp.Click(chromedp.CSS(`form[action="/audit/verify"] button`)), chromedp.WaitVisible(chromedp.CSS("#verify p")))
	if got := b.Text("#verify p"); !strings.HasPrefix(got, "Intact:") {
		t.Errorf("Verify shows %q", got)
	}
	b.Shot("audit-verified")
	// A staged rollout of the pending build, started with the CLI: half
	// the phones polling are offered it, all but one take it; the rules
	// page shows a bar per wave, and Pause there pauses it.
	if res := e2e.Run(t, "", env, "rule", "approve", id, "--waves", "50,100", "--soak", "1h"); res.Code != 0 {
		t.Fatalf("rule approve --waves: %s", res.Stderr)
	}
	var offered []string
	for i := range 16 {
		mac := fmt.Sprintf("00-04-F2-00-30-%02X", i)
		if _, body := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(mac, "CX600", "4.0.7577.4366")); strings.Contains(body, "4.0.7577.4400") {
			offered = append(offered, mac)
		}
	}
	if len(offered) < 2 {
		t.Fatalf("%d of 16 phones offered the build of a 50%% wave", len(offered))
	}
	rollout := func() deviceupdate.RolloutStatus {
		res := e2e.Run(t, "", env, "rule", "rollout", id, "--json")
		var st deviceupdate.RolloutStatus
		if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &st) != nil || len(st.Waves) != 2 {
			t.Fatalf("rule rollout --json: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
		return st
	}
	// The inventory notes polls in batches, about a second apart: the
	// offers are noted before the phones report the build.
	waitFor := func(what string, ok func(deviceupdate.WaveStats) bool) {
		for deadline := time.Now().Add(15 * time.Second); !ok(rollout().Waves[0]); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, rollout())
			}
		}
	}
	waitFor("offers not counted", func(w deviceupdate.WaveStats) bool { return w.Offered == len(offered) })
	for _, mac := range offered[1:] { // the first keeps its old build
		if code, body := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(mac, "CX600", "4.0.7577.4400")); code != 200 {
			t.Fatalf("poll: %d %s", code, body)
		}
	}
	waitFor("updates not counted", func(w deviceupdate.WaveStats) bool { return w.Updated == len(offered)-1 })
	b.Do("rollout", chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(chromedp.CSS("details.rollout svg.wave-bar")))
	if got := strings.ToLower(b.Text("details.rollout summary")); !strings.Contains(got, "running staged rollout of 4.0.7577.4400, wave 1 of 2") {
		t.Errorf("rollout summary %q", got)
	}
	if n := e2e.Eval[int](b, `document.querySelectorAll("details.rollout li.wave:first-child rect.bar-updated").length`); n != 1 {
		t.Errorf("the first wave's bar has %d updated parts, want 1", n)
	}
	if probs := b.Problems(); len(probs) > 0 {
		t.Errorf("/rules with a rollout: %s", strings.Join(probs, "; "))
	}
	b.Shot("rules-rollout")
	b.Do("pause", chromedp.Click(chromedp.CSS(`details.rollout form[action$="/pause"] button`)), chromedp.WaitVisible(chromedp.CSS("main .notice")))
	if got := b.Text("main .notice"); got != "The rollout of rule "+id+" is paused." {
		t.Errorf("after Pause: %q", got)
	}
	if st := rollout(); st.State != deviceupdate.RolloutPaused || st.Reason != "paused by ada" {
		t.Errorf("rule rollout after Pause in the console: %s %q", st.State, st.Reason)
	}
	b.Shot("rules-rollout-paused")
	b.Do("phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(chromedp.CSS("table.rules")))
	b.Shot("rules-phone")
	b.Do("phone menu", chromedp.Navigate(base+"/"), chromedp.Click(chromedp.CSS(".menu-button")), chromedp.WaitVisible(chromedp.CSS(".top nav")), chromedp.Sleep(300*time.Millisecond))
	b.Shot("dashboard-phone-menu")
	b.Do("desktop screen", chromedp.ResetViewport())
	signOut()
	b.Shot("signed-out")
	if code := e2e.Eval[int](b, `fetch("/").then(r => r.redirected && new URL(r.url).pathname === "/login" ? 1 : 0)`); code != 1 {
		t.Error("after sign-out the dashboard still answers")
	}
}

// cliRules reads the rules as `rule list --json` prints them.
func cliRules(t *testing.T, env []string) []deviceupdate.Rule {
	t.Helper()
	res := e2e.Run(t, "", env, "rule", "list", "--json")
	var rules []deviceupdate.Rule
	if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &rules) != nil {
		t.Fatalf("rule list --json: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	return rules
}

// lineWithAll reports whether one line of out holds every word.
func lineWithAll(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}
