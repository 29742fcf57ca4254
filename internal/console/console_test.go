package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/console"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
)

var pages = []string{"/", "/rules", "/import", "/devices", "/testdevices", "/sites", "/config", "/users", "/audit"}

// inline finds what the CSP forbids and a page must not rely on: inline
// scripts (a <script> without src that is not JSON data), style
// attributes and <style> elements, event-handler attributes, hx-on.
var inline = regexp.MustCompile(`<script(?:\s+[^>]*)?>\s*[^<\s]|\sstyle=|<style|\son[a-z]+=|hx-on`)

func checkHeaders(t *testing.T, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": console.CSP,
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "same-origin",
		"X-Content-Type-Options":  "nosniff",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestEveryPageHasSecurityHeadersAndNoInlineCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ada := e.signIn(t, "ada")
	for _, p := range append([]string{"/login"}, pages...) {
		t.Run(p, func(t *testing.T) {
			rec := e.get(t, ada, p)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: %d\n%s", p, rec.Code, rec.Body)
			}
			checkHeaders(t, rec.Header())
			body := strings.ReplaceAll(rec.Body.String(), `<script type="application/json" id="fleet-data">`, "")
			if m := inline.FindString(body); m != "" {
				t.Errorf("page has %q, which the CSP forbids", m)
			}
		})
	}
	// Refusals and redirects carry them too.
	checkHeaders(t, e.get(t, user{}, "/rules").Header())
	checkHeaders(t, e.post(t, ada, "/rules/apply", url.Values{}).Header())
}

func TestConsoleOnlyOnTheHTTPSHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for name, h := range map[string]http.Handler{"internal": e.srv.Internal(), "external": e.srv.External(), "metrics": e.srv.Metrics()} {
		for _, p := range []string{"/", "/login", "/rules"} {
			rec := httptestGet(h, p)
			if rec.Code != http.StatusNotFound {
				t.Errorf("%s listener GET %s = %d, want 404", name, p, rec.Code)
			}
		}
	}
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantBody   string
		wantTo     string
	}{
		{"wrong password", url.Values{"username": {"ada"}, "password": {"wrong password!"}}, 401, "Wrong name or password.", ""},
		{"unknown admin", url.Values{"username": {"nobody"}, "password": {password}}, 401, "Wrong name or password.", ""},
		{"empty form", url.Values{}, 401, "Enter your admin name and password.", ""},
		{"right", url.Values{"username": {"ada"}, "password": {password}}, 303, "", "/"},
		{"right, back to the page asked for", url.Values{"username": {"ada"}, "password": {password}, "next": {"/devices"}}, 303, "", "/devices"},
		{"another host is not a next page", url.Values{"username": {"ada"}, "password": {password}, "next": {"//evil.example/x"}}, 303, "", "/"},
		{"a backslash host neither", url.Values{"username": {"ada"}, "password": {password}, "next": {`/\evil.example`}}, 303, "", "/"},
		{"a URL neither", url.Values{"username": {"ada"}, "password": {password}, "next": {"https://evil.example/"}}, 303, "", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.post(t, user{}, "/login", tt.form)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d\n%s", rec.Code, tt.wantStatus, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body lacks %q:\n%s", tt.wantBody, rec.Body)
			}
			if tt.wantTo == "" {
				if len(rec.Result().Cookies()) != 0 {
					t.Errorf("a refused sign-in set a cookie: %v", rec.Result().Cookies())
				}
				return
			}
			if got := rec.Header().Get("Location"); got != tt.wantTo {
				t.Errorf("redirected to %q, want %q", got, tt.wantTo)
			}
			sc := rec.Header().Get("Set-Cookie")
			for _, want := range []string{console.CookieName + "=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
				if !strings.Contains(sc, want) {
					t.Errorf("Set-Cookie %q lacks %q", sc, want)
				}
			}
			if strings.Contains(sc, "Domain=") {
				t.Errorf("Set-Cookie %q has a Domain", sc)
			}
		})
	}
}

func TestSignInFromAnotherSiteRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	req := httptestPost("/login", url.Values{"username": {"ada"}, "password": {password}})
	req.Header.Set("Origin", "https://evil.example")
	rec := e.do(t, user{}, req)
	if rec.Code != http.StatusForbidden || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("cross-site sign-in: %d, cookies %v", rec.Code, rec.Result().Cookies())
	}
}

func TestWithoutLiveSessionToLogin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		advance  time.Duration
		keepBusy bool
	}{
		{"no cookie", -1, false},
		{"idle too long", deviceupdate.SessionIdle + time.Second, false},
		{"too old though busy", deviceupdate.SessionMaxAge + time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			u := e.signIn(t, "otto")
			if tt.advance < 0 {
				u = user{}
			} else if tt.keepBusy {
				for left := tt.advance; left > 0; left -= 20 * time.Minute {
					e.clock.add(min(left, 20*time.Minute))
					e.get(t, u, "/")
				}
			} else {
				e.clock.add(tt.advance)
			}
			rec := e.get(t, u, "/devices")
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login?next=%2Fdevices" {
				t.Fatalf("GET /devices: %d to %q, want 303 to /login?next=%%2Fdevices", rec.Code, rec.Header().Get("Location"))
			}
			if rec := e.post(t, u, "/rules/apply", url.Values{"csrf": {u.csrf}, "action": {"approve"}, "id": {"x"}}); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
				t.Errorf("POST: %d to %q, want 303 to /login", rec.Code, rec.Header().Get("Location"))
			}
		})
	}
}

func TestSignOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.signIn(t, "vera")
	if rec := e.post(t, u, "/logout", url.Values{}); rec.Code != http.StatusForbidden {
		t.Errorf("sign-out without CSRF token: %d, want 403", rec.Code)
	}
	rec := e.post(t, u, "/logout", url.Values{"csrf": {u.csrf}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login" {
		t.Fatalf("sign-out: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	if sc := rec.Header().Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
		t.Errorf("sign-out left the cookie: %q", sc)
	}
	if rec := e.get(t, u, "/"); rec.Code != http.StatusSeeOther {
		t.Errorf("the old cookie still works after sign-out: %d", rec.Code)
	}
}

func TestChangesNeedTheCSRFToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	up := e.importCab(t, "4.0.7577.4366")
	otto := e.signIn(t, "otto")
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "action": {"approve"}, "id": {up.RuleID}, "expect-" + up.RuleID: {"0.0.0.0/4.0.7577.4366/0.0.0.0"}}
	}
	tests := []struct {
		name   string
		token  string
		header string
		want   int
	}{
		{"no token", "", "", 403},
		{"wrong token", "not-the-token", "", 403},
		{"another session's token", e.signIn(t, "ada").csrf, "", 403},
		{"wrong header beats a right field", otto.csrf, "nope", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptestPost("/rules/apply", form(tt.token))
			if tt.header != "" {
				req.Header.Set(console.CSRFHeader, tt.header)
			}
			rec := e.do(t, otto, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d\n%s", rec.Code, tt.want, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), "reload the page") {
				t.Errorf("refusal does not say what to do:\n%s", rec.Body)
			}
			if r := e.rule(t, up.RuleID); !r.ApprovedVersion.IsZero() {
				t.Fatalf("refused request approved the rule: %+v", r)
			}
		})
	}
	// The right token in the header (htmx) or the field (a form) works.
	req := httptestPost("/rules/apply", form(""))
	req.Header.Set(console.CSRFHeader, otto.csrf)
	if rec := e.do(t, otto, req); rec.Code != http.StatusSeeOther {
		t.Fatalf("approve with the header: %d\n%s", rec.Code, rec.Body)
	}
	if r := e.rule(t, up.RuleID); r.ApprovedVersion.String() != "4.0.7577.4366" {
		t.Fatalf("rule after approve: %+v", r)
	}
}

func (e *env) rule(t *testing.T, id string) deviceupdate.Rule {
	t.Helper()
	rules, err := e.svc.Rules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no rule %s", id)
	return deviceupdate.Rule{}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	up := e.importCab(t, "4.0.7577.4366")
	approve := func(u user) url.Values {
		return url.Values{"csrf": {u.csrf}, "action": {"approve"}, "id": {up.RuleID}, "expect-" + up.RuleID: {"0.0.0.0/4.0.7577.4366/0.0.0.0"}}
	}
	vera, otto := e.signIn(t, "vera"), e.signIn(t, "otto")

	// A viewer sees the rule but no button, and a forced POST is refused.
	page := e.get(t, vera, "/rules").Body.String()
	if !strings.Contains(page, "4.0.7577.4366") {
		t.Fatalf("viewer does not see the pending version:\n%s", page)
	}
	for _, label := range []string{">Approve</button>", ">Reject</button>", ">Restore</button>", ">Remove</button>", "Approve selected"} {
		if strings.Contains(page, label) {
			t.Errorf("viewer's rules page has %q", label)
		}
	}
	if dash := e.get(t, vera, "/").Body.String(); strings.Contains(dash, ">Approve</a>") || strings.Contains(dash, `href="/import"`) {
		t.Errorf("viewer's dashboard offers approve or import")
	}
	for _, tt := range []struct {
		name string
		u    user
		path string
		form url.Values
	}{
		{"viewer approves", vera, "/rules/apply", approve(vera)},
		{"viewer asks to confirm", vera, "/rules/confirm?action=approve&id=" + up.RuleID, nil},
		{"viewer opens import", vera, "/import", nil},
		{"operator opens import", otto, "/import", nil},
		{"operator adds a user", otto, "/users", url.Values{"csrf": {otto.csrf}, "name": {"phone1"}, "password": {"a long password 1"}}},
		{"operator changes config", otto, "/config", url.Values{"csrf": {otto.csrf}, "LogCleanUpInterval": {"5"}}},
		{"viewer adds a test device", vera, "/testdevices", url.Values{"csrf": {vera.csrf}, "name": {"lab"}, "id": {"00-04-F2-00-00-01"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rec = e.get(t, tt.u, tt.path)
			if tt.form != nil {
				rec = e.post(t, tt.u, tt.path, tt.form)
			}
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "needs the") {
				t.Fatalf("status %d, want 403 naming the role\n%s", rec.Code, rec.Body)
			}
		})
	}
	if r := e.rule(t, up.RuleID); !r.ApprovedVersion.IsZero() {
		t.Fatalf("a viewer approved: %+v", r)
	}

	// The operator sees the buttons, confirms, and the trail names them.
	if page := e.get(t, otto, "/rules").Body.String(); !strings.Contains(page, ">Approve</button>") || !strings.Contains(page, ">Reject</button>") {
		t.Fatalf("operator's rules page lacks Approve/Reject:\n%s", page)
	}
	confirm := e.get(t, otto, "/rules/confirm?action=approve&id="+up.RuleID).Body.String()
	for _, want := range []string{">Confirm</button>", "will be offered 4.0.7577.4366 (today: nothing)"} {
		if !strings.Contains(confirm, want) {
			t.Errorf("confirmation lacks %q:\n%s", want, confirm)
		}
	}
	if r := e.rule(t, up.RuleID); !r.ApprovedVersion.IsZero() {
		t.Fatal("asking for confirmation approved already")
	}
	if rec := e.post(t, otto, "/rules/apply", approve(otto)); rec.Code != http.StatusSeeOther {
		t.Fatalf("operator approve: %d\n%s", rec.Code, rec.Body)
	}
	list, err := e.svc.AuditEntries(context.Background(), deviceupdate.AuditFilter{Action: "rule.approve"})
	if err != nil || len(list.Entries) != 1 || list.Entries[0].Actor != "otto" {
		t.Fatalf("audit of the approve: %+v, %v", list, err)
	}
}

func TestApproveRefusedWhenTheRuleChangedSinceConfirm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	up := e.importCab(t, "4.0.7577.4366")
	otto := e.signIn(t, "otto")
	// Confirmed with the versions of an older page.
	rec := e.post(t, otto, "/rules/apply", url.Values{"csrf": {otto.csrf}, "action": {"approve"}, "id": {up.RuleID}, "expect-" + up.RuleID: {"0.0.0.0/4.0.7577.4300/0.0.0.0"}})
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "Not done") {
		t.Fatalf("stale confirmation: %d\n%s", rec.Code, rec.Body)
	}
	if r := e.rule(t, up.RuleID); !r.ApprovedVersion.IsZero() {
		t.Fatalf("stale confirmation approved: %+v", r)
	}
}

func TestImportPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ada := e.signIn(t, "ada")
	rec := e.upload(t, ada, e.cab(t, "4.0.7577.4366"))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "imported") || !strings.Contains(rec.Body.String(), "UCPhone/Polycom/CX600/A/ENU/CPE") {
		t.Fatalf("import: %d\n%s", rec.Code, rec.Body)
	}
	tests := []struct {
		name     string
		u        user
		file     string
		want     int
		wantBody string
	}{
		{"not a package", ada, writeFile(t, "notes.txt", "hello"), 400, "is neither a .cab nor an .exe package"},
		{"a broken cabinet", ada, writeFile(t, "broken.cab", "MSCF but not really"), 400, "broken.cab"},
		{"wrong CSRF field", user{cookie: ada.cookie, csrf: "forged"}, e.cab(t, "4.0.7577.4400"), 403, "reload the page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.upload(t, tt.u, tt.file)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("status %d, want %d with %q\n%s", rec.Code, tt.want, tt.wantBody, rec.Body)
			}
		})
	}
	if rules, _ := e.svc.Rules(context.Background()); len(rules) != 1 || rules[0].PendingVersion.String() != "4.0.7577.4366" {
		t.Fatalf("refused uploads changed the rules: %+v", rules)
	}
}

func TestConfigShowsErrorsNextToTheField(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ada := e.signIn(t, "ada")
	rec := e.post(t, ada, "/config", url.Values{"csrf": {ada.csrf}, "MaxLogFileSize": {"12"}, "LogCleanUpInterval": {"5"}})
	body := rec.Body.String()
	if rec.Code != http.StatusBadRequest || !regexp.MustCompile(`(?s)id="cfg-MaxLogFileSize" name="MaxLogFileSize" value="12" aria-invalid="true".*?class="field-error" id="err-MaxLogFileSize">MaxLogFileSize=12`).MatchString(body) {
		t.Fatalf("status %d; want 400 with the error by MaxLogFileSize\n%s", rec.Code, body)
	}
	cfg, _ := e.svc.Config(context.Background(), deviceupdate.ScopeGlobal)
	for _, v := range cfg {
		if v.Name == "LogCleanUpInterval" && v.Value != "10" {
			t.Errorf("a form with an error saved LogCleanUpInterval=%s", v.Value)
		}
	}
	rec = e.post(t, ada, "/config", url.Values{"csrf": {ada.csrf}, "LogCleanUpInterval": {"5"}})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Saved: LogCleanUpInterval.") {
		t.Fatalf("valid change: %d\n%s", rec.Code, rec.Body)
	}
}

func TestStaticFilesCachedByContent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	page := e.get(t, user{}, "/login").Body.String()
	m := regexp.MustCompile(`src="(/static/[0-9a-f]{12}/vendor/htmx-2\.0\.11/htmx\.min\.js)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no htmx under a hashed URL:\n%s", page)
	}
	rec := e.get(t, user{}, m[1])
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET %s: %d %v", m[1], rec.Code, rec.Header())
	}
	for _, p := range []string{"/static/000000000000/console.css", m[1] + "/../../../console.go", strings.Replace(m[1], "htmx.min.js", "nope.js", 1)} {
		if rec := e.get(t, user{}, p); rec.Code != 404 {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
}

func TestDevicesFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedDevices(t, e)
	ada := e.signIn(t, "ada")
	if rec := e.post(t, ada, "/sites", url.Values{"csrf": {ada.csrf}, "name": {"hq"}, "subnets": {"10.2.0.0/16"}}); rec.Code != http.StatusOK {
		t.Fatalf("add site: %d\n%s", rec.Code, rec.Body)
	}
	all := []string{"00-04-F2-00-00-01", "00-04-F2-00-00-02", "00-04-F2-00-00-03", "00-04-F2-00-00-04", "SN-7000-1"}
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"everything", "", all},
		{"model", "model=cx700", []string{"SN-7000-1"}},
		{"model and version", "model=CX600&version=4.0.7577.4000", all[:2]},
		{"site", "site=hq", []string{"SN-7000-1"}},
		{"seen within", "seen=90m", []string{"00-04-F2-00-00-01", "00-04-F2-00-00-02", "SN-7000-1"}},
		{"a rule's devices not on a version", "key=UCPhone/Polycom/CX600/A/ENU/CPE&notversion=4.0.7577.4366", []string{"00-04-F2-00-00-01", "00-04-F2-00-00-02", "00-04-F2-00-00-04"}},
		{"a MAC as phones write it", "q=00:04:f2:00:00:03", []string{"00-04-F2-00-00-03"}},
		{"part of a MAC", "q=0004f2000004", []string{"00-04-F2-00-00-04"}},
		{"a serial", "q=SN-7000-1", []string{"SN-7000-1"}},
		{"a user", "q=alice", []string{"SN-7000-1"}},
		{"nothing matches", "q=nobody", nil},
	}
	row := regexp.MustCompile(`<tr><td><a href="/devices/([^"]+)">`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.get(t, ada, "/devices?"+tt.query)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d\n%s", rec.Code, rec.Body)
			}
			var got []string
			for _, m := range row.FindAllStringSubmatch(rec.Body.String(), -1) {
				got = append(got, m[1])
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("devices %v, want %v", got, tt.want)
			}
		})
	}
	for _, q := range []string{"version=4.0", "seen=yesterday", "site=nowhere"} {
		if rec := e.get(t, ada, "/devices?"+q); rec.Code < 400 || !strings.Contains(rec.Body.String(), `class="error"`) {
			t.Errorf("%s: %d, want a refusal shown on the page", q, rec.Code)
		}
	}
}

func TestDevicePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedDevices(t, e)
	vera, otto := e.signIn(t, "vera"), e.signIn(t, "otto")
	page := e.get(t, vera, "/devices/00-04-F2-00-00-02").Body.String()
	if !strings.Contains(page, "4.0.7577.4000") || strings.Contains(page, `name="PeerFirmwareSharing"`) {
		t.Fatalf("viewer's device page: versions shown, no settings form expected\n%s", page)
	}
	if rec := e.get(t, vera, "/devices/00:04:f2:00:00:99"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown device: %d, want 404", rec.Code)
	}
	if rec := e.post(t, vera, "/devices/00-04-F2-00-00-02/config", url.Values{"csrf": {vera.csrf}, "PeerFirmwareSharing": {"true"}}); rec.Code != http.StatusForbidden {
		t.Errorf("viewer sets a device setting: %d, want 403", rec.Code)
	}
	for _, tt := range []struct {
		value string
		code  int
		want  string
	}{{"maybe", 400, "choose"}, {"true", 200, "Saved"}} {
		rec := e.post(t, otto, "/devices/00-04-F2-00-00-02/config", url.Values{"csrf": {otto.csrf}, "PeerFirmwareSharing": {tt.value}})
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("PeerFirmwareSharing=%s: %d, want %d with %q", tt.value, rec.Code, tt.code, tt.want)
		}
	}
	cfg, err := e.svc.DeviceConfig(t.Context(), "00-04-F2-00-00-02")
	if err != nil || cfg.Settings["PeerFirmwareSharing"] != "true" {
		t.Fatalf("device settings after save: %+v %v", cfg, err)
	}
	list, _ := e.svc.AuditEntries(t.Context(), deviceupdate.AuditFilter{Action: "device.config.set"})
	if len(list.Entries) != 1 || list.Entries[0].Actor != "otto" {
		t.Errorf("audit of the setting: %+v", list.Entries)
	}
}

// TestListPages adds and removes a test device, a site and a user as the
// role each needs, shows a refusal next to the form, and audits the
// signed-in admin as the actor.
func TestListPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name, who, page string
		add             url.Values
		wantAdded       string
		bad             url.Values
		wantBad         string
		remove          string
		action          string
	}{
		{"test device", "otto", "/testdevices", url.Values{"name": {"lab phone"}, "id": {"00:04:f2:aa:bb:cc"}}, "00-04-F2-AA-BB-CC",
			url.Values{"name": {"x"}, "id": {"not a mac or serial!"}}, "serial number", "lab phone", "testdevice."},
		{"site", "ada", "/sites", url.Values{"name": {"hq"}, "subnets": {"10.1.0.0/16, 10.2.0.0/16"}}, "10.2.0.0/16",
			url.Values{"name": {"branch"}, "subnets": {"10.1.0.0/33"}}, "subnet", "hq", "site."},
		{"user", "ada", "/users", url.Values{"name": {"phone1@contoso.com"}, "password": {"a long password 1"}}, "phone1@contoso.com",
			url.Values{"name": {"phone2"}, "password": {"short"}}, "too short", "phone1@contoso.com", "user."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := e.signIn(t, tt.who)
			with := func(v url.Values) url.Values {
				v = maps.Clone(v)
				v.Set("csrf", u.csrf)
				return v
			}
			rec := e.post(t, u, tt.page, with(tt.add))
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tt.wantAdded) || !strings.Contains(rec.Body.String(), `class="notice"`) {
				t.Fatalf("add: %d\n%s", rec.Code, rec.Body)
			}
			rec = e.post(t, u, tt.page, with(tt.bad))
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tt.wantBad) {
				t.Fatalf("bad add: %d, want 400 with %q\n%s", rec.Code, tt.wantBad, rec.Body)
			}
			rec = e.post(t, u, tt.page+"/remove", url.Values{"csrf": {u.csrf}, "name": {tt.remove}})
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<p class="empty">`) {
				t.Fatalf("remove: %d\n%s", rec.Code, rec.Body)
			}
			list, err := e.svc.AuditEntries(t.Context(), deviceupdate.AuditFilter{Action: tt.action})
			if err != nil || len(list.Entries) < 2 {
				t.Fatalf("audit: %+v %v", list, err)
			}
			for _, en := range list.Entries {
				if en.Actor != tt.who {
					t.Errorf("audit entry %s by %q, want %q", en.Action, en.Actor, tt.who)
				}
			}
		})
	}
}

func TestAuditPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	up := e.importCab(t, "4.0.7577.4366")
	otto := e.signIn(t, "otto")
	e.post(t, otto, "/rules/apply", url.Values{"csrf": {otto.csrf}, "action": {"approve"}, "id": {up.RuleID}, "expect-" + up.RuleID: {"0.0.0.0/4.0.7577.4366/0.0.0.0"}})
	vera := e.signIn(t, "vera")
	row := regexp.MustCompile(`<td>(\d+)</td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>`)
	tests := []struct {
		name, query string
		want        []string // actor action
		status      int
	}{
		{"everything", "", []string{"bootstrap admin.add", "bootstrap admin.add", "bootstrap admin.add", "ada admin.signin", "ada import",
			"otto admin.signin", "otto rule.approve", "vera admin.signin"}, 200},
		{"an action prefix", "action=rule.", []string{"otto rule.approve"}, 200},
		{"a target", "target=" + up.RuleID, []string{"otto rule.approve"}, 200},
		{"until yesterday", "until=" + e.clock.now().AddDate(0, 0, -1).Format("2006-01-02"), nil, 200},
		{"a bad date", "since=last+week", nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.get(t, vera, "/audit?"+tt.query)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d\n%s", rec.Code, tt.status, rec.Body)
			}
			var got []string
			for _, m := range row.FindAllStringSubmatch(rec.Body.String(), -1) {
				got = append(got, m[2]+" "+m[3])
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("entries %v, want %v", got, tt.want)
			}
		})
	}
	rec := e.post(t, vera, "/audit/verify", url.Values{"csrf": {vera.csrf}})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "Intact: 8 entries checked") {
		t.Fatalf("verify: %d\n%s", rec.Code, rec.Body)
	}
	if dash := e.get(t, vera, "/").Body.String(); !strings.Contains(dash, "intact, 8 entries") {
		t.Errorf("the dashboard does not show the last verification:\n%s", dash)
	}

	// Someone rewrites what otto did: Verify and the dashboard say so.
	path := filepath.Join(filepath.Dir(e.db.Path()), audit.Dir, audit.FileName)
	trail, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Replace(trail, []byte(`"rule.approve"`), []byte(`"rule.reset"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	rec = e.post(t, vera, "/audit/verify", url.Values{"csrf": {vera.csrf}})
	if !strings.Contains(rec.Body.String(), "Broken at line 7") {
		t.Fatalf("verify of a rewritten trail: %d\n%s", rec.Code, rec.Body)
	}
	if dash := e.get(t, vera, "/").Body.String(); !strings.Contains(dash, `<dd class="bad">BROKEN at line 7`) {
		t.Errorf("the dashboard does not show the broken trail:\n%s", dash)
	}
}

// TestEveryConsoleRouteNeedsASession walks the HTTPS handler's routes:
// every console route but the sign-in form and the static files sends a
// browser without a session to /login, whatever its method.
func TestEveryConsoleRouteNeedsASession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ech, ok := e.srv.Secure().(*echo.Echo)
	if !ok {
		t.Fatalf("Secure() is a %T, not an *echo.Echo", e.srv.Secure())
	}
	open := []string{"/healthz", "/metrics", "/login", "/static/", "/admin/api/", "/RequestHandler", "/DeviceUpdateFiles_"}
	n := 0
	for _, r := range ech.Routes() {
		if slices.ContainsFunc(open, func(p string) bool { return strings.HasPrefix(r.Path, p) }) || r.Method == echo.RouteNotFound {
			continue
		}
		n++
		path := strings.NewReplacer(":id", "00-04-F2-00-00-01", ":type", "Watson", ":name", "x.dmp").Replace(r.Path)
		req := httptestPost(path, url.Values{})
		req.Method = r.Method
		rec := e.do(t, user{}, req)
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
			t.Errorf("%s %s without a session: %d to %q", r.Method, r.Path, rec.Code, rec.Header().Get("Location"))
		}
	}
	if n < 20 {
		t.Errorf("only %d console routes found", n)
	}
}

func TestAdminsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ada, otto := e.signIn(t, "ada"), e.signIn(t, "otto")
	if rec := e.get(t, otto, "/admins"); rec.Code != http.StatusForbidden {
		t.Errorf("operator opens Admins: %d, want 403", rec.Code)
	}
	if page := e.get(t, otto, "/").Body.String(); strings.Contains(page, `href="/admins"`) {
		t.Error("an operator's nav bar links to Admins")
	}
	for _, tt := range []struct {
		name string
		form url.Values
		code int
		want string
	}{
		{"add", url.Values{"name": {"olga"}, "role": {"operator"}, "password": {"another long password"}}, 200, "Added admin olga."},
		{"a bad role", url.Values{"name": {"bob"}, "role": {"root"}}, 400, "want viewer, operator or admin"},
		{"a taken name", url.Values{"name": {"olga"}, "role": {"viewer"}}, 409, "olga"},
		{"remove yourself", url.Values{"name": {"ada"}}, 409, "you cannot remove yourself"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.form.Set("csrf", ada.csrf)
			path := "/admins"
			if tt.form.Get("role") == "" {
				path = "/admins/remove"
			}
			rec := e.post(t, ada, path, tt.form)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
				t.Fatalf("status %d, want %d with %q\n%s", rec.Code, tt.code, tt.want, rec.Body)
			}
		})
	}
	if rec := e.post(t, user{}, "/login", url.Values{"username": {"olga"}, "password": {"another long password"}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("the new admin cannot sign in: %d", rec.Code)
	}
	if rec := e.post(t, ada, "/admins/remove", url.Values{"csrf": {ada.csrf}, "name": {"olga"}}); rec.Code != 200 || !strings.Contains(rec.Body.String(), "Removed admin olga.") {
		t.Fatalf("remove: %d\n%s", rec.Code, rec.Body)
	}
	list, _ := e.svc.AuditEntries(t.Context(), deviceupdate.AuditFilter{Action: "admin.remove"})
	if len(list.Entries) != 1 || list.Entries[0].Actor != "ada" {
		t.Errorf("audit of the removal: %+v", list.Entries)
	}
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedDevices(t, e)
	up := e.importCab(t, "4.0.7577.4366")
	otto := e.signIn(t, "otto")
	e.post(t, otto, "/rules/apply", url.Values{"csrf": {otto.csrf}, "action": {"approve"}, "id": {up.RuleID}, "expect-" + up.RuleID: {"0.0.0.0/4.0.7577.4366/0.0.0.0"}})
	e.importCab(t, "4.0.7577.4400")

	page := e.get(t, e.signIn(t, "vera"), "/").Body.String()
	m := regexp.MustCompile(`<script type="application/json" id="fleet-data">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no chart data:\n%s", page)
	}
	var chart struct {
		Models, Keys, Approved []string
		Versions               []struct {
			Version string
			Counts  []int
		}
	}
	if err := json.Unmarshal([]byte(m[1]), &chart); err != nil {
		t.Fatalf("chart data %s: %v", m[1], err)
	}
	got := fmt.Sprint(chart.Models, chart.Keys, chart.Approved, chart.Versions)
	want := "[CX600 CX700] [UCPhone/Polycom/CX600/A/ENU/CPE UCPhone/Polycom/CX700/A/ENU/CPE] [4.0.7577.4366 ] " +
		"[{4.0.7577.4000 [2 0]} {4.0.7577.4100 [1 1]} {4.0.7577.4366 [1 0]}]"
	if got != want {
		t.Errorf("chart\n got %s\nwant %s", got, want)
	}
	for _, want := range []string{
		"3 devices run another version than their rule approves.",
		`href="/devices?key=UCPhone%2fPolycom%2fCX600%2fA%2fENU%2fCPE&amp;notversion=4.0.7577.4366">CX600: 3 not on 4.0.7577.4366</a>`,
		`<a href="/devices/00-04-F2-00-00-04">00-04-F2-00-00-04</a></td><td>CX600</td><td>CPE</td><td>4.0.7577.4100</td><td>4.0.7577.4366</td>`,
		"4.0.7577.4400 waiting (approved: 4.0.7577.4366)",
		"<dt>Polls in the last minute</dt><dd>",
		"<dt>Disk free</dt><dd>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(page, "00-04-F2-00-00-03</a>") {
		t.Error("a device on the approved version is listed as not on it")
	}
}

// TestBulkApprove approves two rules, picked on the rules page, with one
// confirmation.
func TestBulkApprove(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	testpkg.NeedTool(t, "gcab")
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "CX600/", "4.0.7577.4366", testpkg.Image(16<<10, 1), e.publisher)
	testpkg.AddUpdate(t, files, "CX700/", "4.0.7577.4367", testpkg.Image(16<<10, 2), e.publisher)
	ada := e.signIn(t, "ada")
	if rec := e.upload(t, ada, testpkg.MakeCab(t, files)); rec.Code != http.StatusOK {
		t.Fatalf("import: %d\n%s", rec.Code, rec.Body)
	}
	rules := e.rules(t)
	otto := e.signIn(t, "otto")
	q := url.Values{"action": {"approve"}, "id": {rules[0].ID, rules[1].ID}}
	page := e.get(t, otto, "/rules/confirm?"+q.Encode()).Body.String()
	form := url.Values{"csrf": {otto.csrf}, "action": {"approve"}}
	confirm, _, _ := strings.Cut(page[strings.Index(page, `action="/rules/apply"`)+1:], "</form>")
	for _, m := range regexp.MustCompile(`name="(id|expect-[0-9a-f]+)" value="([^"]+)"`).FindAllStringSubmatch(confirm, -1) {
		form.Add(m[1], m[2])
	}
	if !strings.Contains(page, "Approve 2 rules?") || len(form["id"]) != 2 {
		t.Fatalf("confirmation of two rules:\n%s", page)
	}
	rec := e.post(t, otto, "/rules/apply", form)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/rules?done=approve&n=2" {
		t.Fatalf("bulk approve: %d to %q\n%s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	if !strings.Contains(e.get(t, otto, rec.Header().Get("Location")).Body.String(), "Approved 2 rules.") {
		t.Error("the rules page does not say what was done")
	}
	for _, r := range e.rules(t) {
		if r.ApprovedVersion.IsZero() || !r.PendingVersion.IsZero() {
			t.Errorf("rule %s after bulk approve: %+v", r.Model, r)
		}
	}
	list, _ := e.svc.AuditEntries(t.Context(), deviceupdate.AuditFilter{Action: "rule.approve"})
	if len(list.Entries) != 2 {
		t.Errorf("%d rule.approve entries, want 2", len(list.Entries))
	}
}

func TestOversizedFormRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ada := e.signIn(t, "ada")
	rec := e.post(t, ada, "/config", url.Values{"csrf": {ada.csrf}, "LogCleanUpInterval": {"5"}, "pad": {strings.Repeat("x", 100<<10)}})
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "at most 64 KiB") {
		t.Fatalf("100 KiB form: %d\n%s", rec.Code, rec.Body)
	}
	cfg, _ := e.svc.Config(t.Context(), deviceupdate.ScopeGlobal)
	for _, v := range cfg {
		if v.Name == "LogCleanUpInterval" && v.Value != "10" {
			t.Errorf("an oversized form saved LogCleanUpInterval=%s", v.Value)
		}
	}
}
