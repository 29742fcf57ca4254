package console_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
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
	"golang.org/x/crypto/bcrypt"

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

// testSessions is a small real SessionService for these tests, until
// the store's is on this branch: bcrypt passwords, random secrets, the
// idle and absolute expiry of deviceupdate.Session.
type testSessions struct {
	mu       sync.Mutex
	now      func() time.Time
	admins   map[string]testAdmin
	sessions map[string]*deviceupdate.Session
}

type testAdmin struct {
	role deviceupdate.Role
	hash []byte
}

func newTestSessions(now func() time.Time) *testSessions {
	return &testSessions{now: now, admins: map[string]testAdmin{}, sessions: map[string]*deviceupdate.Session{}}
}

func (s *testSessions) add(t testing.TB, name string, role deviceupdate.Role, password string) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admins[name] = testAdmin{role, h}
}

func randomString() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *testSessions) SignIn(_ context.Context, name, password, _ string) (string, deviceupdate.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.admins[name]
	if !ok || bcrypt.CompareHashAndPassword(a.hash, []byte(password)) != nil {
		return "", deviceupdate.Session{}, deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "wrong name or password")
	}
	now := s.now()
	secret := randomString()
	ss := &deviceupdate.Session{Admin: deviceupdate.Admin{Name: name, Role: a.role, HasPassword: true}, CreatedAt: now, SeenAt: now, CSRF: randomString()}
	s.sessions[secret] = ss
	return secret, *ss, nil
}

func (s *testSessions) Session(_ context.Context, secret string) (deviceupdate.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[secret]
	if !ok || ss.Expired(s.now()) {
		delete(s.sessions, secret)
		return deviceupdate.Session{}, deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "session ended")
	}
	ss.SeenAt = s.now()
	return *ss, nil
}

func (s *testSessions) SignOut(_ context.Context, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, secret)
	return nil
}

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
	sessions  *testSessions
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
	sessions := newTestSessions(clk.now)
	for _, a := range []struct {
		name string
		role deviceupdate.Role
	}{{"vera", deviceupdate.RoleViewer}, {"otto", deviceupdate.RoleOperator}, {"ada", deviceupdate.RoleAdmin}} {
		sessions.add(t, a.name, a.role, password)
	}
	reg := prometheus.NewRegistry()
	con, err := console.New(console.Config{
		Sessions: sessions, Rules: svc, Packages: im, Devices: svc, DeviceConfig: svc, TestDevices: svc, Sites: svc,
		Config: svc, Users: svc, Audit: svc, MaxPackageSize: importer.DefaultMaxPackageSize, Now: clk.now,
		Health: console.Health{DataDir: data, Metrics: reg},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := handler.New(handler.Config{
		Logger: zap.NewNop(), Registry: reg, Store: db, AdminToken: "unused-token", Packages: im, MaxPackageSize: importer.DefaultMaxPackageSize,
		Rules: svc, Audit: svc, TestDevices: svc, Config: svc, Files: im, Devices: svc, Sites: svc, DeviceConfig: svc, Users: svc,
		Console: con, Now: clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, sessions: sessions, clock: clk, db: db, svc: svc, publisher: testpkg.NewSigner(t, ca, testpki.Options{})}
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
