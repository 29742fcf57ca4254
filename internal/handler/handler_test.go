package handler

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/deviceupdate/deviceupdate"
)

const testToken = "s3cret-token"

type fakePinger struct{ err error }

func (p *fakePinger) Ping() error { return p.err }

func newTestServer(t *testing.T) (*Server, *fakePinger, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	store := &fakePinger{}
	s, err := New(Config{
		Logger:     zap.New(core),
		Registry:   prometheus.NewRegistry(),
		Store:      store,
		AdminToken: testToken,
		Info:       deviceupdate.ServerInfo{Version: "test", Domain: "contoso.com", SchemaVersion: 1, StartedAt: time.Unix(0, 0).UTC()},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, store, logs
}

func do(h http.Handler, method, path string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRoutes(t *testing.T) {
	s, _, _ := newTestServer(t)
	auth := map[string]string{"Authorization": "Bearer " + testToken}
	tests := []struct {
		name       string
		handler    http.Handler
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantBody   string // a substring of the body
	}{
		{"health over http", s.Internal(), "GET", "/healthz", nil, 200, "ok"},
		{"health over https", s.Secure(), "GET", "/healthz", nil, 200, "ok"},
		{"unknown path is plain text", s.Secure(), "GET", "/nope", nil, 404, "no such endpoint"},
		{"wrong method", s.Secure(), "POST", "/healthz", nil, 405, "method not allowed"},
		{"no metrics on http", s.Internal(), "GET", "/metrics", nil, 404, ""},
		{"no admin API on http", s.Internal(), "GET", AdminPrefix + "/server", auth, 404, ""},
		{"admin without token", s.Secure(), "GET", AdminPrefix + "/server", nil, 401, `"code":"unauthorized"`},
		{"admin with wrong token", s.Secure(), "GET", AdminPrefix + "/server", map[string]string{"Authorization": "Bearer nope"}, 401, "missing or invalid admin token"},
		{"admin with basic auth", s.Secure(), "GET", AdminPrefix + "/server", map[string]string{"Authorization": "Basic " + testToken}, 401, ""},
		{"admin with token", s.Secure(), "GET", AdminPrefix + "/server", auth, 200, `"domain":"contoso.com"`},
		{"bearer scheme in lower case", s.Secure(), "GET", AdminPrefix + "/server", map[string]string{"Authorization": "bearer " + testToken}, 200, `"domain":"contoso.com"`},
		{"bearer scheme in upper case", s.Secure(), "GET", AdminPrefix + "/server", map[string]string{"Authorization": "BEARER  " + testToken}, 200, `"domain":"contoso.com"`},
		{"bearer scheme alone", s.Secure(), "GET", AdminPrefix + "/server", map[string]string{"Authorization": "Bearer"}, 401, ""},
		{"metrics over https without token", s.Secure(), "GET", "/metrics", nil, 401, "missing or invalid admin token"},
		{"metrics over https with token", s.Secure(), "GET", "/metrics", auth, 200, "deviceupdate_http_requests_total"},
		{"metrics on its own listener", s.Metrics(), "GET", "/metrics", nil, 200, "deviceupdate_http_requests_total"},
		{"health on the metrics listener", s.Metrics(), "GET", "/healthz", nil, 200, "ok"},
		{"no admin API on the metrics listener", s.Metrics(), "GET", AdminPrefix + "/server", auth, 404, ""},
		{"health on the external listener", s.External(), "GET", "/healthz", nil, 200, "ok"},
		{"no admin API on the external listener", s.External(), "GET", AdminPrefix + "/server", auth, 404, ""},
		{"no metrics on the external listener", s.External(), "GET", "/metrics", auth, 404, ""},
		{"unknown admin path is a JSON error", s.Secure(), "GET", AdminPrefix + "/nope", auth, 404, `{"error":{"code":"not_found","message":"no such endpoint"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(tt.handler, tt.method, tt.path, tt.header)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %q", rec.Code, tt.wantStatus, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body %q lacks %q", rec.Body, tt.wantBody)
			}
			if rec.Header().Get(echo.HeaderXRequestID) == "" {
				t.Error("response has no X-Request-Id")
			}
		})
	}
}

func TestAdminUnauthorizedAsksForBearer(t *testing.T) {
	s, _, _ := newTestServer(t)
	rec := do(s.Secure(), "GET", AdminPrefix+"/server", nil)
	if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
	}
}

func TestHealthFailsWhenStoreDoes(t *testing.T) {
	s, store, logs := newTestServer(t)
	store.err = errors.New("disk on fire")
	rec := do(s.Internal(), "GET", "/healthz", nil)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "disk on fire") {
		t.Error("internal detail leaked into the response")
	}
	if logs.FilterField(zap.String("error", "store unavailable: disk on fire")).Len() != 1 {
		t.Errorf("the access log does not record the cause; logs: %v", logs.All())
	}
}

func TestInternalErrorsAreLoggedNotSent(t *testing.T) {
	s, _, logs := newTestServer(t)
	s.secure.GET("/boom", func(c echo.Context) error { return errors.New("select * from secrets failed") })
	s.secure.GET("/panic", func(c echo.Context) error { panic("nil map write") })
	for _, path := range []string{"/boom", "/panic"} {
		t.Run(path, func(t *testing.T) {
			rec := do(s.Secure(), "GET", path, nil)
			if rec.Code != http.StatusInternalServerError {
				t.Fatalf("status = %d, want 500", rec.Code)
			}
			if body := rec.Body.String(); strings.Contains(body, "secrets") || strings.Contains(body, "nil map") {
				t.Errorf("internal detail leaked: %q", body)
			}
			id := rec.Header().Get(echo.HeaderXRequestID)
			if logs.FilterMessage("internal error").FilterField(zap.String("request_id", id)).Len() != 1 {
				t.Errorf("no internal error log line with request_id %s", id)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	s, _, logs := newTestServer(t)
	tests := []struct {
		name     string
		sent     string
		wantSame bool
	}{
		{"client id kept", "abc-123_X.y", true},
		{"none sent", "", false},
		{"too long replaced", strings.Repeat("a", 65), false},
		{"unsafe characters replaced", "a b\"<script>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(s.Internal(), "GET", "/healthz", map[string]string{echo.HeaderXRequestID: tt.sent})
			got := rec.Header().Get(echo.HeaderXRequestID)
			if (got == tt.sent) != tt.wantSame || got == "" {
				t.Fatalf("X-Request-Id = %q (sent %q), want same=%v", got, tt.sent, tt.wantSame)
			}
			line := logs.FilterMessage("request").FilterField(zap.String("request_id", got))
			if line.Len() != 1 {
				t.Fatalf("access log lines with request_id %q: %d, want 1", got, line.Len())
			}
			fields := line.All()[0].ContextMap()
			if fields["status"] != int64(200) || fields["listener"] != "http" || fields["path"] != "/healthz" {
				t.Errorf("access log fields = %v", fields)
			}
		})
	}
}

func TestMetricsCountRequests(t *testing.T) {
	s, _, _ := newTestServer(t)
	for range 3 {
		do(s.Secure(), "GET", "/healthz", nil)
	}
	do(s.Internal(), "GET", "/nope", nil)
	rec := do(s.Secure(), "GET", "/metrics", map[string]string{"Authorization": "Bearer " + testToken})
	body := rec.Body.String()
	for _, want := range []string{
		`deviceupdate_http_requests_total{code="200",listener="https",method="GET",route="/healthz"} 3`,
		`deviceupdate_http_requests_total{code="404",listener="http",method="GET",route="unmatched"} 1`,
		`deviceupdate_http_request_duration_seconds_count{listener="https",route="/healthz"} 3`,
		`deviceupdate_http_requests_in_flight{listener="https"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestEveryCodeHasStatus: every application error code, read from the
// string constants E* of the root package's error.go, has its HTTP
// status, so that a code added there cannot be forgotten here.
func TestEveryCodeHasStatus(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "..", "error.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING && strings.HasPrefix(name.Name, "E") {
						code, _ := strconv.Unquote(lit.Value)
						codes = append(codes, code)
					}
				}
			}
		}
	}
	if len(codes) < len(statusOf) {
		t.Fatalf("error.go declares %d codes (%q), fewer than the %d statusOf maps; did the codes move?", len(codes), codes, len(statusOf))
	}
	for _, code := range codes {
		if _, ok := statusOf[code]; !ok {
			t.Errorf("code %q has no HTTP status", code)
		}
	}
}

func TestServerInfoJSON(t *testing.T) {
	s, _, _ := newTestServer(t)
	rec := do(s.Secure(), "GET", AdminPrefix+"/server", map[string]string{"Authorization": "Bearer " + testToken})
	var info deviceupdate.ServerInfo
	if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != "test" || info.SchemaVersion != 1 {
		t.Errorf("info = %+v", info)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
}
