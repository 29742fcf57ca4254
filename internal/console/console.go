// Package console serves the web console (SPEC §7): server-rendered
// pages over the same domain services the admin API calls, for admins
// signed in with their name and password.
//
// It is mounted on the HTTPS handler only. Every page answers with a
// strict Content-Security-Policy (no inline script or style: the pages'
// behaviour lives in static/console.js, htmx is configured by a meta tag),
// every change carries the session's CSRF token, and every handler checks
// the signed-in admin's role before it calls a service, as the API does.
package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/handler"
)

//go:embed static templates
var files embed.FS

// CookieName is the session cookie. The __Host- prefix makes browsers
// refuse it unless it is Secure, has Path=/ and no Domain.
const CookieName = "__Host-deviceupdate_session"

// CSP is the Content-Security-Policy of every console answer.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// maxForm bounds the body of a change other than an upload.
const maxForm = 64 << 10

// CSRFHeader carries the CSRF token of htmx requests; forms send it in
// the field CSRFField.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf"
)

// Config holds the services the console calls. Sessions is required;
// a page whose service is nil is left out.
type Config struct {
	Logger   *zap.Logger
	Sessions deviceupdate.SessionService
	Admins   deviceupdate.AdminService

	Rules        deviceupdate.RuleService
	Rollouts     deviceupdate.RolloutService // staged approvals (SPEC §10); nil leaves them out
	Packages     deviceupdate.PackageService
	Devices      deviceupdate.DeviceService
	DeviceConfig deviceupdate.DeviceConfigService
	Logs         deviceupdate.LogService
	TestDevices  deviceupdate.TestDeviceService
	Sites        deviceupdate.SiteService
	Config       deviceupdate.ConfigService
	Users        deviceupdate.UserService
	Audit        deviceupdate.AuditService

	// MaxPackageSize bounds an uploaded package.
	MaxPackageSize int64
	// Health feeds the dashboard's health panel.
	Health Health
	Now    func() time.Time
}

// Health is where the dashboard reads the service's health from; a nil
// or empty field leaves its line out.
type Health struct {
	// DataDir is the folder whose file system's free space is shown.
	DataDir string
	// CertExpiry returns when the server certificate expires.
	CertExpiry func() (time.Time, error)
	// LastImport returns when the last package was imported (zero when
	// none was).
	LastImport func(ctx context.Context) (time.Time, error)
	// AuditBroken says where the audit trail's chain broke when the
	// service last read it (at start, or listing it), nil while intact.
	AuditBroken func() error
}

// Console is the web console's handlers.
type Console struct {
	cfg       Config
	log       *zap.Logger
	now       func() time.Time
	pages     map[string]*template.Template
	static    fs.FS
	staticURL string // /static/<content hash>
	verified  lastVerify
}

// New parses the templates and hashes the static files.
func New(cfg Config) (*Console, error) {
	if cfg.Sessions == nil {
		return nil, errors.New("console: Sessions is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	sum, err := hashFS(static)
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, log: cfg.Logger, now: cfg.Now, static: static, staticURL: "/static/" + sum}
	if err := c.parse(); err != nil {
		return nil, err
	}
	return c, nil
}

// hashFS returns a short hash of every file's name and content: it
// changes with any static file, so their URLs may be cached for ever.
func hashFS(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12], err
}

// parse builds one template set per page: the layout, the shared
// partials, and the page's own file.
func (c *Console) parse() error {
	funcs := template.FuncMap{
		"static":  func(p string) string { return c.staticURL + "/" + p },
		"when":    formatTime,
		"ago":     func(t time.Time) string { return ago(c.now(), t) },
		"bytes":   formatBytes,
		"version": formatVersion,
		"json":    func(v any) (string, error) { b, err := json.Marshal(v); return string(b), err },
		"join":    strings.Join,
	}
	base, err := template.New("").Funcs(funcs).ParseFS(files, "templates/layout.html")
	if err != nil {
		return err
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return err
	}
	c.pages = map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(files, n)
		if err != nil {
			return err
		}
		c.pages[name] = t
	}
	return nil
}

// Mount adds the console's routes to the HTTPS handler.
func (c *Console) Mount(e *echo.Echo) {
	e.GET(c.staticURL+"/*", c.handleStatic)
	e.GET("/login", c.plain(c.handleLoginPage))
	e.POST("/login", c.plain(c.handleLogin))
	const (
		viewer, operator, admin = deviceupdate.RoleViewer, deviceupdate.RoleOperator, deviceupdate.RoleAdmin
	)
	cfg := c.cfg
	routes := []struct {
		on           bool // the service the page calls is there
		method, path string
		need         deviceupdate.Role
		h            pageHandler
	}{
		{true, http.MethodPost, "/logout", viewer, c.handleLogout},
		{true, http.MethodGet, "/", viewer, c.handleDashboard},
		{cfg.Rules != nil, http.MethodGet, "/rules", viewer, c.handleRules},
		{cfg.Rules != nil, http.MethodGet, "/rules/confirm", operator, c.handleRuleConfirm},
		{cfg.Rules != nil, http.MethodPost, "/rules/apply", operator, c.handleRuleApply},
		{cfg.Rules != nil && cfg.Rollouts != nil, http.MethodPost, "/rules/:id/pause", operator, c.handleRolloutChange},
		{cfg.Rules != nil && cfg.Rollouts != nil, http.MethodPost, "/rules/:id/resume", operator, c.handleRolloutChange},
		{cfg.Packages != nil, http.MethodGet, "/import", admin, c.handleImportPage},
		{cfg.Packages != nil, http.MethodPost, "/import", admin, c.handleImport},
		{cfg.Devices != nil, http.MethodGet, "/devices", viewer, c.handleDevices},
		{cfg.Devices != nil, http.MethodGet, "/devices/:id", viewer, c.handleDevice},
		{cfg.Logs != nil, http.MethodGet, "/devices/:id/logs/:type/:name", operator, c.handleLogDownload},
		{cfg.DeviceConfig != nil, http.MethodPost, "/devices/:id/config", operator, c.handleDeviceConfig},
		{cfg.TestDevices != nil, http.MethodGet, "/testdevices", viewer, c.handleTestDevices},
		{cfg.TestDevices != nil, http.MethodPost, "/testdevices", operator, c.handleAddTestDevice},
		{cfg.TestDevices != nil, http.MethodPost, "/testdevices/remove", operator, c.handleRemoveTestDevice},
		{cfg.Sites != nil, http.MethodGet, "/sites", viewer, c.handleSites},
		{cfg.Sites != nil, http.MethodPost, "/sites", admin, c.handlePutSite},
		{cfg.Sites != nil, http.MethodPost, "/sites/remove", admin, c.handleRemoveSite},
		{cfg.Config != nil, http.MethodGet, "/config", viewer, c.handleConfig},
		{cfg.Config != nil, http.MethodPost, "/config", admin, c.handleSetConfig},
		{cfg.Users != nil, http.MethodGet, "/users", viewer, c.handleUsers},
		{cfg.Users != nil, http.MethodPost, "/users", admin, c.handleAddUser},
		{cfg.Users != nil, http.MethodPost, "/users/remove", admin, c.handleRemoveUser},
		{cfg.Admins != nil, http.MethodGet, "/admins", admin, c.handleAdmins},
		{cfg.Admins != nil, http.MethodPost, "/admins", admin, c.handleAddAdmin},
		{cfg.Admins != nil, http.MethodPost, "/admins/remove", admin, c.handleRemoveAdmin},
		{cfg.Audit != nil, http.MethodGet, "/audit", viewer, c.handleAudit},
		{cfg.Audit != nil, http.MethodPost, "/audit/verify", viewer, c.handleVerify},
	}
	for _, r := range routes {
		if r.on {
			e.Add(r.method, r.path, c.signedIn(r.need, r.h))
		}
	}
}

// handleStatic serves the embedded files under their content hash, so
// they are cached for a year and never stale.
func (c *Console) handleStatic(ec echo.Context) error {
	p := ec.Param("*")
	if !fs.ValidPath(p) {
		return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no such file")
	}
	b, err := fs.ReadFile(c.static, p)
	if err != nil {
		return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no such file")
	}
	h := ec.Response().Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	ctype := "application/octet-stream"
	switch path.Ext(p) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	case ".md", "":
		ctype = "text/plain; charset=utf-8"
	}
	return ec.Blob(http.StatusOK, ctype, b)
}

// securityHeaders are set on every page and redirect the console sends.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}

// plain wraps the handlers that need no session: the sign-in page.
func (c *Console) plain(h func(echo.Context) error) echo.HandlerFunc {
	return func(ec echo.Context) error {
		securityHeaders(ec.Response().Header())
		r := ec.Request()
		if r.Method != http.MethodGet {
			if !sameOrigin(r) {
				return c.fail(ec, nil, deviceupdate.Errorf(deviceupdate.EFORBIDDEN, "this form was sent from another site"))
			}
			r.Body = http.MaxBytesReader(ec.Response(), r.Body, maxForm)
		}
		return h(ec)
	}
}

// sameOrigin refuses a change whose Origin header names another site:
// with SameSite=Strict the session cookie is not sent then anyway, and
// the sign-in form, which has no session, is protected too.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o == "" || o == "https://"+r.Host
}

// pageHandler is a console page's handler, given the signed-in session.
type pageHandler func(ec echo.Context, s *deviceupdate.Session) error

const sessionKey = "console.session"

// signedIn wraps a handler that needs a session of at least role need:
// without one it sends the browser to /login, with a wrong role it
// answers 403, and a change without the session's CSRF token gets 403.
func (c *Console) signedIn(need deviceupdate.Role, h pageHandler) echo.HandlerFunc {
	return func(ec echo.Context) error {
		r := ec.Request()
		securityHeaders(ec.Response().Header())
		var s deviceupdate.Session
		var err error
		if ck, cerr := r.Cookie(CookieName); cerr == nil && ck.Value != "" {
			s, err = c.cfg.Sessions.Session(r.Context(), ck.Value)
		} else {
			err = deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "not signed in")
		}
		if err != nil {
			if deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
				return c.fail(ec, nil, err)
			}
			return c.toLogin(ec)
		}
		ec.Set(sessionKey, &s)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) {
				return c.fail(ec, &s, deviceupdate.Errorf(deviceupdate.EFORBIDDEN, "this form was sent from another site"))
			}
			// A multipart upload carries its token in a header (htmx) or
			// in its first part, which the handler checks before it reads
			// the file; every other change is a small form, read here.
			if !isMultipart(r) {
				r.Body = http.MaxBytesReader(ec.Response(), r.Body, maxForm)
				if err := r.ParseForm(); err != nil {
					return c.fail(ec, &s, deviceupdate.Errorf(deviceupdate.ETOOLARGE, "the form is not a form of the console (at most %d KiB of name=value pairs)", maxForm>>10))
				}
			}
			if !isMultipart(r) || r.Header.Get(CSRFHeader) != "" {
				if !validCSRF(&s, csrfOf(ec)) {
					return c.csrfRefused(ec, &s)
				}
			}
		}
		if !s.Admin.Role.Allows(need) {
			Logger(c, ec).Warn("console request refused: role", zap.String("admin", s.Admin.Name),
				zap.String("role", string(s.Admin.Role)), zap.String("need", string(need)))
			return c.fail(ec, &s, deviceupdate.Errorf(deviceupdate.EFORBIDDEN, "this needs the %s role; you are %s", need, s.Admin.Role))
		}
		return h(ec, &s)
	}
}

// Logger returns the request's logger, naming the console.
func Logger(c *Console, ec echo.Context) *zap.Logger {
	return c.log.With(zap.String("remote", ec.RealIP()), zap.String("path", ec.Request().URL.Path))
}

func isMultipart(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get(echo.HeaderContentType), echo.MIMEMultipartForm)
}

func csrfOf(ec echo.Context) string {
	if t := ec.Request().Header.Get(CSRFHeader); t != "" {
		return t
	}
	return ec.FormValue(CSRFField)
}

func validCSRF(s *deviceupdate.Session, token string) bool {
	return s.CSRF != "" && len(token) == len(s.CSRF) && constantEq(token, s.CSRF)
}

func constantEq(a, b string) bool {
	var d byte
	for i := 0; i < len(a); i++ {
		d |= a[i] ^ b[i]
	}
	return d == 0
}

func (c *Console) csrfRefused(ec echo.Context, s *deviceupdate.Session) error {
	Logger(c, ec).Warn("console change refused: missing or wrong CSRF token", zap.String("admin", s.Admin.Name))
	return c.fail(ec, s, deviceupdate.Errorf(deviceupdate.EFORBIDDEN, "this form has expired or was not sent from the console; reload the page and try again"))
}

// toLogin sends a browser without a live session to the sign-in page,
// remembering the page it asked for (a path of this site only).
func (c *Console) toLogin(ec echo.Context) error {
	r := ec.Request()
	target := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" && safeNext(r.URL.Path) {
		target += "?next=" + urlQueryEscape(r.URL.Path)
	}
	if ec.Request().Header.Get("HX-Request") != "" {
		ec.Response().Header().Set("HX-Redirect", target)
		return ec.NoContent(http.StatusUnauthorized)
	}
	return ec.Redirect(http.StatusSeeOther, target)
}

// safeNext reports whether p may be redirected to after sign-in: a path
// of this site, never another host ("//evil", "/\evil") or a scheme.
func safeNext(p string) bool {
	if len(p) == 0 || len(p) > 512 || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\x00\r\n\t?#") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return false
		}
	}
	return p != "/login" && p != "/logout"
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Session *deviceupdate.Session
	Notice  string // a success message
	Error   string // a refusal, shown at the top
	Data    any
	// Chart loads Chart.js, on the dashboard only.
	Chart bool
}

// Can reports whether the signed-in admin has at least role r; the
// templates show a button only to those who may use it.
func (p page) Can(r string) bool {
	return p.Session != nil && p.Session.Admin.Role.Allows(deviceupdate.Role(r))
}

// CSRF returns the session's CSRF token for forms.
func (p page) CSRF() string {
	if p.Session == nil {
		return ""
	}
	return p.Session.CSRF
}

// HXHeaders is the JSON htmx sends as headers with every request.
func (p page) HXHeaders() string {
	b, _ := json.Marshal(map[string]string{CSRFHeader: p.CSRF()})
	return string(b)
}

// HTMXConfig configures htmx without inline styles or eval, and lets it
// show the pages of refusals (4xx) too.
func (p page) HTMXConfig() string {
	return `{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true,` +
		`"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"401","swap":false},{"code":"[45]..","swap":true,"error":true}]}`
}

// render writes a page with status.
func (c *Console) render(ec echo.Context, status int, name string, p page) error {
	t, ok := c.pages[name]
	if !ok {
		return fmt.Errorf("console: no page %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return fmt.Errorf("console: render %s: %w", name, err)
	}
	return ec.HTMLBlob(status, buf.Bytes())
}

// fail renders a refusal or a fault as a page with its status; internal
// details only reach the log.
func (c *Console) fail(ec echo.Context, s *deviceupdate.Session, err error) error {
	code := deviceupdate.ErrorCode(err)
	if code == deviceupdate.EINTERNAL {
		Logger(c, ec).Error("console: internal error", zap.Error(err))
	}
	return c.render(ec, statusOf(code), "error", page{Title: "Refused", Session: s, Error: deviceupdate.ErrorMessage(err)})
}

// statusOf is the status of a page showing an error of code, as the
// admin API answers it.
func statusOf(code string) int { return handler.StatusOf(code) }

// sorted returns the keys of m in order.
func sorted[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
