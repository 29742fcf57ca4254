package handler

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/deviceupdate/deviceupdate"
)

// TestRefusedAdminCredentialsAreLogged: each refused admin request leaves
// one warn line with the source address and why, never the token sent; an
// admitted one leaves none.
func TestRefusedAdminCredentialsAreLogged(t *testing.T) {
	tests := []struct {
		name       string
		auth       string
		wantReason string // "" when admitted
	}{
		{"no header", "", "no Authorization header"},
		{"basic", "Basic " + testToken, "not a bearer token"},
		{"wrong token", "Bearer guessed-token-123", "wrong admin token"},
		{"admitted", "Bearer " + testToken, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, logs := newTestServer(t)
			req := httptest.NewRequest(http.MethodGet, AdminPrefix+"/server", nil)
			req.RemoteAddr = "198.51.100.7:50123"
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			s.Secure().ServeHTTP(httptest.NewRecorder(), req)
			var want map[string]string
			if tt.wantReason != "" {
				want = map[string]string{"remote": "198.51.100.7", "reason": tt.wantReason}
			}
			checkRefusal(t, logs, "admin credentials refused", want)
			for _, e := range logs.All() {
				if strings.Contains(e.Message+fmt.Sprint(e.ContextMap()), "guessed") {
					t.Errorf("the token sent is in the log: %v", e)
				}
			}
		})
	}
}

// TestRefusedImportsAreLogged: a package refused (untrusted, conflicting,
// too large) leaves a warn line with the source address, the package and
// the reason; an accepted one leaves none.
func TestRefusedImportsAreLogged(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		err        error
		wantReason string // "" when accepted
	}{
		{"accepted", "cabinet", nil, ""},
		{"untrusted", "cabinet", deviceupdate.Errorf(deviceupdate.EFORBIDDEN, "pkg.cab: CPE.cat: catalog signer is not trusted"), "pkg.cab: CPE.cat: catalog signer is not trusted"},
		{"conflict", "cabinet", deviceupdate.Errorf(deviceupdate.ECONFLICT, "4.0.7577.4366 was imported before with other content"), "4.0.7577.4366 was imported before with other content"},
		{"too large", strings.Repeat("x", 100), nil, "pkg.cab: 100 bytes is more than the 64 a package may have"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			s, err := New(Config{Logger: zap.New(core), Registry: prometheus.NewRegistry(), Store: &fakePinger{}, AdminToken: testToken,
				Packages: &recordingPackages{err: tt.err}, MaxPackageSize: 64})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, AdminPrefix+"/packages?name=pkg.cab", strings.NewReader(tt.body))
			req.RemoteAddr = "[2001:db8::5]:443"
			req.Header.Set("Authorization", "Bearer "+testToken)
			s.Secure().ServeHTTP(httptest.NewRecorder(), req)
			var want map[string]string
			if tt.wantReason != "" {
				want = map[string]string{"remote": "2001:db8::5", "package": "pkg.cab", "reason": tt.wantReason}
			}
			checkRefusal(t, logs, "import refused", want)
		})
	}
}

// checkRefusal checks the lines logged with msg: none when want is nil,
// else one at warn level carrying want's fields and the request ID.
func checkRefusal(t *testing.T, logs *observer.ObservedLogs, msg string, want map[string]string) {
	t.Helper()
	refused := logs.FilterMessage(msg).All()
	if want == nil {
		if len(refused) != 0 {
			t.Errorf("logged as refused: %v", refused)
		}
		return
	}
	if len(refused) != 1 {
		t.Fatalf("%d %q lines, want 1; logs: %v", len(refused), msg, logs.All())
	}
	e := refused[0]
	if e.Level != zapcore.WarnLevel {
		t.Errorf("level %s, want warn", e.Level)
	}
	got := e.ContextMap()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %q (line %v)", k, got[k], v, got)
		}
	}
	if got["request_id"] == nil {
		t.Errorf("no request_id on the line: %v", got)
	}
}
