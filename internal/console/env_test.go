package console_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/console"
	"github.com/deviceupdate/deviceupdate/internal/handler"
	"github.com/deviceupdate/deviceupdate/internal/importer"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is the real handler stack over a real store, with the console
// mounted on its HTTPS handler.
type env struct {
	srv       *handler.Server
	clock     *clock
	db        *store.DB
	svc       *admin.Service
	publisher testpkg.Signer
}

const password = "correct horse battery"

func newEnv(t testing.TB) *env {
	t.Helper()
	data, certs := t.TempDir(), t.TempDir()
	clk := &clock{t: time.Now()}
	db, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	trail, err := audit.Open(data, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	files := updatestore.New(data, zap.NewNop())
	if err := files.Create(); err != nil {
		t.Fatal(err)
	}
	ca := testpki.NewCA(t, "Polycom Root")
	if err := os.MkdirAll(filepath.Join(certs, "trusted"), 0o755); err != nil {
		t.Fatal(err)
	}
	testpki.WriteCert(t, filepath.Join(certs, "trusted", "publisher.pem"), ca.Cert)
	im := &importer.Importer{DB: db, Audit: trail, Logger: zap.NewNop(), Files: files, CertsDir: certs}
	svc := &admin.Service{DB: db, Trail: trail, Now: clk.now}
	admins := admin.NewAdmins(svc)
	for _, a := range []struct {
		name string
		role deviceupdate.Role
	}{{"vera", deviceupdate.RoleViewer}, {"otto", deviceupdate.RoleOperator}, {"ada", deviceupdate.RoleAdmin}} {
		if _, err := admins.AddAdmin(t.Context(), a.name, a.role, password, deviceupdate.BootstrapAdmin); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	con, err := console.New(console.Config{
		Sessions: admins, Admins: admins, Rules: svc, Rollouts: svc, Packages: im, Devices: svc, DeviceConfig: svc, TestDevices: svc, Sites: svc,
		Config: svc, Users: svc, Audit: svc, MaxPackageSize: importer.DefaultMaxPackageSize, Now: clk.now,
		Health: console.Health{DataDir: data},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := handler.New(handler.Config{
		Logger: zap.NewNop(), Registry: reg, Store: db, AdminToken: "unused-token", Packages: im, MaxPackageSize: importer.DefaultMaxPackageSize,
		Rules: svc, Audit: svc, TestDevices: svc, Config: svc, Files: im, Devices: svc, Sites: svc, DeviceConfig: svc, Users: svc,
		Rollouts: svc, Admins: admins, Console: con, Now: clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, clock: clk, db: db, svc: svc, publisher: testpkg.NewSigner(t, ca, testpki.Options{})}
}

// cab builds a signed CX600 package of version.
func (e *env) cab(t testing.TB, version string) string {
	t.Helper()
	testpkg.NeedTool(t, "gcab")
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", version, testpkg.Image(32<<10, 3), e.publisher)
	return testpkg.MakeCab(t, files)
}

// importCab imports a package through the console as an admin: its
// version becomes the pending version of the CX600 rule.
func (e *env) importCab(t testing.TB, version string) deviceupdate.ImportedUpdate {
	t.Helper()
	res := e.upload(t, e.signIn(t, "ada"), e.cab(t, version))
	if res.Code != http.StatusOK {
		t.Fatalf("import: %d %s", res.Code, res.Body)
	}
	rules, err := e.svc.Rules(context.Background())
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule after import: %v", err)
	}
	return deviceupdate.ImportedUpdate{RuleID: rules[0].ID, Version: rules[0].PendingVersion}
}

// user is a signed-in browser: its session cookie and CSRF token.
type user struct {
	cookie *http.Cookie
	csrf   string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs in through the form and reads the CSRF token of a page.
func (e *env) signIn(t testing.TB, name string) user {
	t.Helper()
	rec := e.post(t, user{}, "/login", url.Values{"username": {name}, "password": {password}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in of %s: %d %s", name, rec.Code, rec.Body)
	}
	var u user
	for _, c := range rec.Result().Cookies() {
		if c.Name == console.CookieName {
			u.cookie = c
		}
	}
	if u.cookie == nil {
		t.Fatalf("sign-in set no %s cookie", console.CookieName)
	}
	page := e.get(t, u, "/rules")
	m := csrfField.FindStringSubmatch(page.Body.String())
	if m == nil {
		t.Fatalf("no CSRF field on /rules:\n%s", page.Body)
	}
	u.csrf = m[1]
	return u
}

func (e *env) do(t testing.TB, u user, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	req.RemoteAddr = "192.0.2.10:50000"
	if u.cookie != nil {
		req.AddCookie(&http.Cookie{Name: u.cookie.Name, Value: u.cookie.Value})
	}
	rec := httptest.NewRecorder()
	e.srv.Secure().ServeHTTP(rec, req)
	return rec
}

func (e *env) get(t testing.TB, u user, path string) *httptest.ResponseRecorder {
	t.Helper()
	return e.do(t, u, httptest.NewRequest(http.MethodGet, "https://deviceupdate.test"+path, nil))
}

func (e *env) post(t testing.TB, u user, path string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "https://deviceupdate.test"+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(t, u, req)
}

// upload posts a package as the import form does without JavaScript:
// the CSRF field first, then the file.
func (e *env) upload(t testing.TB, u user, pkg string) *httptest.ResponseRecorder {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("csrf", u.csrf); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile("package", filepath.Base(pkg))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pkg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(fw, f); err != nil {
		t.Fatal(err)
	}
	mw.Close()
	req := httptest.NewRequest(http.MethodPost, "https://deviceupdate.test/import", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return e.do(t, u, req)
}

func httptestGet(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func httptestPost(path string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "https://deviceupdate.test"+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
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

func (e *env) rules(t testing.TB) []deviceupdate.Rule {
	t.Helper()
	rules, err := e.svc.Rules(t.Context())
	if err != nil || len(rules) == 0 {
		t.Fatalf("rules: %v %v", rules, err)
	}
	return rules
}
