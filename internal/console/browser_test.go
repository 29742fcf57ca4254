package console_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

// TestBrowserConsole drives the console in Chromium over the real
// handler stack: sign-in (a wrong password first), import with the
// progress bar, approve with confirmation, a viewer refused, sign-out,
// and a screenshot of every page.
func TestBrowserConsole(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewUnstartedServer(e.srv.Secure())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	b := e2e.NewBrowser(t, ts.Certificate())
	base := ts.URL
	seedDevices(t, e)

	signIn := func(name, pw, then string) {
		b.Do("sign in as "+name,
			chromedp.Navigate(base+"/login"),
			chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), name),
			chromedp.SendKeys(chromedp.CSS("#password"), pw),
			chromedp.Click(chromedp.CSS(".login button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(then)),
		)
	}
	signOut := func() {
		b.Do("sign out", chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#username")))
	}

	// Not signed in: the dashboard sends the browser to the sign-in form.
	b.Do("open the console", chromedp.Navigate(base+"/devices"), chromedp.WaitVisible(chromedp.CSS("#username")))
	if loc := e2e.Eval[string](b, "location.pathname + location.search"); loc != "/login?next=%2Fdevices" {
		t.Errorf("not signed in, /devices went to %q", loc)
	}
	b.Shot("login")

	// A wrong password first: the form says so.
	signIn("ada", "not the password", "main .error")
	if msg := b.Text("main .error"); msg != "Wrong name or password." {
		t.Errorf("wrong password shows %q", msg)
	}
	b.Shot("login-wrong-password")
	signIn("ada", password, "header.top")
	b.Do("dashboard", chromedp.WaitVisible(chromedp.CSS("#fleet-chart")))
	b.Shot("dashboard-empty-rules")

	// Import with the progress bar.
	pkg := e.cab(t, "4.0.7577.4366")
	b.Do("import",
		chromedp.Navigate(base+"/import"),
		chromedp.SetUploadFiles(chromedp.CSS("#package"), []string{pkg}),
		chromedp.Click(chromedp.CSS("#import-form button")),
		chromedp.WaitVisible(chromedp.CSS("#result table")),
	)
	if got := b.Text("#result h2"); !strings.HasPrefix(got, "Imported") {
		t.Errorf("import result heading %q", got)
	}
	if p := e2e.Eval[float64](b, `document.getElementById("import-progress").value`); p != 100 {
		t.Errorf("progress bar at %v after the upload, want 100", p)
	}
	b.Shot("import-result")
	signOut()

	// An operator approves with confirmation.
	signIn("otto", password, "header.top")
	b.Do("rules", chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(chromedp.CSS("table.rules")))
	b.Shot("rules-pending")
	b.Do("approve", chromedp.Click(chromedp.CSS(`td.actions input[value="approve"] ~ button`)), chromedp.WaitVisible(chromedp.CSS("#confirm button.primary")))
	if got := b.Text("#confirm button.primary"); got != "Confirm" {
		t.Errorf("confirmation button %q", got)
	}
	if got := b.Text("#confirm li"); !strings.Contains(got, "will be offered 4.0.7577.4366") {
		t.Errorf("confirmation says %q", got)
	}
	if r := e.rules(t)[0]; !r.ApprovedVersion.IsZero() {
		t.Fatal("approved before Confirm")
	}
	b.Shot("rules-confirm")
	b.Do("confirm", chromedp.Click(chromedp.CSS("#confirm button.primary")), chromedp.WaitVisible(chromedp.CSS("main .notice")))
	if got := b.Text("main .notice"); got != "Approved 1 rule." {
		t.Errorf("after Confirm: %q", got)
	}
	b.Shot("rules-approved")
	if r := e.rules(t)[0]; r.ApprovedVersion.String() != "4.0.7577.4366" {
		t.Fatalf("rule after Confirm: %+v", r)
	}
	signOut()

	// A viewer sees no Approve, and a forced POST is refused.
	e.importCab(t, "4.0.7577.4400")
	signIn("vera", password, "header.top")
	b.Do("viewer's rules", chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(chromedp.CSS("table.rules")))
	if n := e2e.Eval[int](b, `[...document.querySelectorAll("button")].filter(b => b.textContent.trim() === "Approve").length`); n != 0 {
		t.Errorf("viewer sees %d Approve buttons", n)
	}
	id := e.rules(t)[0].ID
	status := e2e.Eval[int](b, `fetch("/rules/apply", {method: "POST",
		headers: {"X-CSRF-Token": JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"], "Content-Type": "application/x-www-form-urlencoded"},
		body: "action=approve&id=`+id+`&expect-`+id+`=4.0.7577.4366/4.0.7577.4400/0.0.0.0"}).then(r => r.status)`)
	if status != 403 {
		t.Errorf("viewer's forced approve answered %d, want 403", status)
	}
	if r := e.rules(t)[0]; r.ApprovedVersion.String() != "4.0.7577.4366" {
		t.Fatalf("viewer's POST changed the rule: %+v", r)
	}
	b.Shot("rules-viewer")
	signOut()

	// Every page, as an admin.
	signIn("ada", password, "header.top")
	for _, p := range []struct{ path, name string }{
		{"/", "dashboard"}, {"/rules", "rules"}, {"/import", "import"}, {"/devices", "devices"},
		{"/devices?model=CX600&version=4.0.7577.4000", "devices-filtered"}, {"/devices/00-04-F2-00-00-01", "device"},
		{"/testdevices", "testdevices"}, {"/sites", "sites"}, {"/config", "config"}, {"/users", "users"}, {"/audit", "audit"},
	} {
		b.Do(p.name, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS("main h1")))
		if p.name == "dashboard" {
			b.Do("chart", chromedp.Sleep(300*time.Millisecond))
		}
		if probs := b.Problems(); len(probs) > 0 {
			t.Errorf("%s: %s", p.path, strings.Join(probs, "; "))
		}
		b.Shot(p.name)
	}
	b.Do("verify", chromedp.Click(chromedp.CSS(`form[action="/audit/verify"] button`)), chromedp.WaitVisible(chromedp.CSS("#verify p")))
	if got := b.Text("#verify p"); !strings.HasPrefix(got, "Intact:") {
		t.Errorf("Verify shows %q", got)
	}
	b.Shot("audit-verified")

	// A phone-sized screen: the nav folds into a Menu button.
	b.Do("phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#fleet-chart")), chromedp.Sleep(300*time.Millisecond))
	b.Shot("dashboard-phone")
	b.Do("phone menu", chromedp.Click(chromedp.CSS(".menu-button")), chromedp.WaitVisible(chromedp.CSS(".top nav")))
	b.Shot("menu-phone")
	b.Do("phone rules", chromedp.Navigate(base+"/rules"), chromedp.WaitVisible(chromedp.CSS("table.rules")))
	b.Shot("rules-phone")
	b.Do("desktop screen", chromedp.ResetViewport())
	signOut()
	b.Shot("signed-out")
}

func (e *env) rules(t *testing.T) []deviceupdate.Rule {
	t.Helper()
	rules, err := e.svc.Rules(t.Context())
	if err != nil || len(rules) == 0 {
		t.Fatalf("rules: %v %v", rules, err)
	}
	return rules
}

// seedDevices records a few phones in the inventory, as polls would.
func seedDevices(t *testing.T, e *env) {
	t.Helper()
	var batch []deviceupdate.Device
	now := time.Now().UTC()
	for i, v := range []string{"4.0.7577.4000", "4.0.7577.4000", "4.0.7577.4366", "4.0.7577.4100"} {
		batch = append(batch, deviceupdate.Device{
			ID: "00-04-F2-00-00-0" + string(rune('1'+i)), MAC: "00-04-F2-00-00-0" + string(rune('1'+i)), DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600",
			Revision: "A", Locale: "ENU", Remote: "10.1.0." + string(rune('1'+i)), LastSeen: now.Add(-time.Duration(i) * time.Hour), Polls: int64(i + 1),
			Modules: []deviceupdate.Module{{UpdateType: "CPE", Filename: "CPE.nbt", Version: deviceupdate.MustParseVersion(v)}},
		})
	}
	batch = append(batch, deviceupdate.Device{ID: "SN-7000-1", Serial: "SN-7000-1", DeviceType: "UCPhone", Brand: "Polycom", Model: "CX700",
		Revision: "A", Locale: "ENU", Remote: "10.2.0.9", LastSeen: now, Polls: 3, UserID: "alice@contoso.com",
		Modules: []deviceupdate.Module{{UpdateType: "CPE", Version: deviceupdate.MustParseVersion("4.0.7577.4100")}}})
	if err := e.db.PutDevices(batch); err != nil {
		t.Fatal(err)
	}
}
