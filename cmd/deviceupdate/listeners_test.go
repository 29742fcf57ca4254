package main_test

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

// hsts is the Strict-Transport-Security every HTTPS answer carries.
const hsts = "max-age=31536000"

// TestListenerRoutes: each endpoint answers on the listeners SPEC §5 and
// §7 give it, and nowhere else. The --external listener, meant to be
// published to the internet, serves the external endpoints and /healthz
// only: no internal endpoint, admin API or metrics. /metrics needs the
// admin token on HTTPS and none on its own --metrics listener. HTTPS
// answers carry HSTS; the bearer scheme is read in any case (RFC 7235).
func TestListenerRoutes(t *testing.T) {
	srv, env, _ := startWithApprovedUpdate(t, "--external", "127.0.0.1:0", "--metrics", "127.0.0.1:0")
	if srv.ExternalAddr == "" || srv.MetricsAddr == "" {
		t.Fatalf("no external or metrics listener logged:\n%s", srv.Stderr())
	}
	const user, password = "phone.routes", "a long phone password"
	if res := runStdin(t, env, password+"\n", "user", "add", user, "--password-stdin"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	tlsClient := srv.Client("ucupdates-r2.contoso.com")
	plain := &http.Client{Timeout: 30 * time.Second}
	clients := map[string]*http.Client{"https": tlsClient, "external": tlsClient, "http": plain, "metrics": plain}
	bases := map[string]string{"https": srv.URL(), "external": srv.ExternalURL(), "http": srv.InternalURL(), "metrics": srv.MetricsURL()}

	token := srv.Token()
	admin := map[string]string{"Authorization": "Bearer " + token}
	signedIn := basicAuth(user, password)
	poll := pollBody("00-04-F2-00-00-31", "CX600", "4.0.7577.4100")
	const intFile = "/DeviceUpdateFiles_Int/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt"
	const upload = "/Files?DeviceType=UCPhone&MacAddress=00-04-F2-00-00-31&LogType=CELog&FileName=routes.clg"

	type statuses struct{ https, http, external, metrics int }
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		want                     statuses
	}{
		{"healthz", "GET", "/healthz", "", nil, statuses{200, 200, 200, 200}},
		{"internal poll", "POST", "/RequestHandler/ucdevice.upx", poll, nil, statuses{200, 200, 404, 404}},
		{"internal file", "GET", intFile, "", nil, statuses{200, 200, 404, 404}},
		{"internal file HEAD", "HEAD", intFile, "", nil, statuses{200, 200, 404, 404}},
		{"internal log upload", "POST", "/RequestHandler" + upload, "celog", nil, statuses{200, 200, 404, 404}},
		{"external poll, anonymous", "POST", extPoll, poll, nil, statuses{401, 404, 401, 404}},
		{"external poll, signed in", "POST", extPoll, poll, signedIn, statuses{200, 404, 200, 404}},
		{"external file, anonymous", "GET", extFile, "", nil, statuses{401, 404, 401, 404}},
		{"external file, signed in", "GET", extFile, "", signedIn, statuses{200, 404, 200, 404}},
		{"external file HEAD, signed in", "HEAD", extFile, "", signedIn, statuses{200, 404, 200, 404}},
		{"external log upload, signed in", "POST", "/RequestHandlerExt" + upload, "celog", signedIn, statuses{200, 404, 200, 404}},
		{"metrics, no token", "GET", "/metrics", "", nil, statuses{401, 404, 404, 200}},
		{"metrics, admin token", "GET", "/metrics", "", admin, statuses{200, 404, 404, 200}},
		{"metrics, a user's password", "GET", "/metrics", "", signedIn, statuses{401, 404, 404, 200}},
		{"admin API", "GET", "/admin/api/v1/server", "", admin, statuses{200, 404, 404, 404}},
		{"admin API, no token", "GET", "/admin/api/v1/rules", "", nil, statuses{401, 404, 404, 404}},
		{"admin API, bearer in lower case", "GET", "/admin/api/v1/server", "", map[string]string{"Authorization": "bearer " + token}, statuses{200, 404, 404, 404}},
		{"admin API, bearer in upper case", "GET", "/admin/api/v1/server", "", map[string]string{"Authorization": "BEARER " + token}, statuses{200, 404, 404, 404}},
		{"admin API, basic scheme", "GET", "/admin/api/v1/server", "", map[string]string{"Authorization": "Basic " + token}, statuses{401, 404, 404, 404}},
		{"admin API, wrong token", "GET", "/admin/api/v1/server", "", map[string]string{"Authorization": "Bearer x" + token}, statuses{401, 404, 404, 404}},
	}
	for _, tt := range tests {
		for _, l := range []struct {
			name string
			want int
		}{{"https", tt.want.https}, {"http", tt.want.http}, {"external", tt.want.external}, {"metrics", tt.want.metrics}} {
			t.Run(tt.name+"/"+l.name, func(t *testing.T) {
				code, body, h := send(t, clients[l.name], tt.method, bases[l.name]+tt.path, tt.body, tt.header)
				if code != l.want {
					t.Errorf("%s %s on %s: %d, want %d: %.200s", tt.method, tt.path, l.name, code, l.want, body)
				}
				wantHSTS := ""
				if strings.HasPrefix(bases[l.name], "https:") {
					wantHSTS = hsts
				}
				if got := h.Get("Strict-Transport-Security"); got != wantHSTS {
					t.Errorf("Strict-Transport-Security on %s: %q, want %q", l.name, got, wantHSTS)
				}
			})
		}
	}

	// The admin API lists the listeners, the external one among them, and
	// the TLS floor.
	var info struct {
		Listeners map[string]string `json:"listeners"`
		TLSMin    string            `json:"tlsMin"`
	}
	res := e2e.Run(t, "", env, "doctor", "--domain", "contoso.com", "--server", srv.URL(), "--json")
	if !strings.Contains(res.Stdout, `"check":"external"`) || !strings.Contains(res.Stdout, srv.ExternalAddr) {
		t.Errorf("doctor does not check the external listener:\n%s", res.Stdout)
	}
	if code, body, _ := send(t, tlsClient, "GET", srv.URL()+"/admin/api/v1/server", "", admin); code != 200 || decodeJSON(body, &info) != nil ||
		info.Listeners["external"] != srv.ExternalAddr || info.Listeners["metrics"] != srv.MetricsAddr || info.TLSMin != "1.2" {
		t.Errorf("server info: %d %s", code, body)
	}
}

// TestTLSPolicy: by default only TLS 1.2 with AEAD suites (and TLS 1.3)
// is accepted, on the HTTPS and the external listener alike; --tls-min 1.0
// lowers the floor for Lync Phone Edition phones, with a warning at start
// and the floor in the admin API's server information.
func TestTLSPolicy(t *testing.T) {
	def := e2e.Start(t, e2e.Options{Args: []string{"--external", "127.0.0.1:0"}})
	low := e2e.Start(t, e2e.Options{Args: []string{"--tls-min", "1.0"}})
	if def.FindLog("tls versions below 1.2 accepted") != nil {
		t.Error("the default server warns of a lowered TLS floor")
	}
	if w := low.FindLog("tls versions below 1.2 accepted"); w == nil || w["level"] != "warn" {
		t.Errorf("no warning at start for --tls-min 1.0:\n%s", low.Stderr())
	}

	cbc := []uint16{
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	}
	clients := []struct {
		name     string
		min, max uint16
		suites   []uint16
		byDef    bool // accepted by a default server
		byLow    bool // accepted with --tls-min 1.0
	}{
		{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, nil, false, true},
		{"TLS 1.1", tls.VersionTLS10, tls.VersionTLS11, nil, false, true},
		{"TLS 1.2 with CBC suites only", tls.VersionTLS12, tls.VersionTLS12, cbc, false, true},
		{"TLS 1.2 with AES-GCM", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, true, true},
		{"TLS 1.2 with ChaCha20-Poly1305", tls.VersionTLS12, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}, true, true},
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, nil, true, true},
	}
	servers := []struct {
		name, addr string
		srv        *e2e.Server
		lowered    bool
	}{
		{"https", def.HTTPSAddr, def, false},
		{"external", def.ExternalAddr, def, false},
		{"https with --tls-min 1.0", low.HTTPSAddr, low, true},
	}
	for _, s := range servers {
		for _, c := range clients {
			t.Run(s.name+"/"+c.name, func(t *testing.T) {
				want := c.byDef
				if s.lowered {
					want = c.byLow
				}
				conn, err := tls.Dial("tcp", s.addr, &tls.Config{
					RootCAs: s.srv.CAPool(), ServerName: "ucupdates-r2.contoso.com",
					MinVersion: c.min, MaxVersion: c.max, CipherSuites: c.suites,
				})
				if err == nil {
					conn.Close()
				}
				if (err == nil) != want {
					t.Errorf("handshake: %v; want accepted=%v", err, want)
				}
			})
		}
	}

	var info struct {
		TLSMin string `json:"tlsMin"`
	}
	code, body, _ := send(t, low.Client("ucupdates-r2.contoso.com"), "GET", low.URL()+"/admin/api/v1/server", "", map[string]string{"Authorization": "Bearer " + low.Token()})
	if code != 200 || decodeJSON(body, &info) != nil || info.TLSMin != "1.0" {
		t.Errorf("server info of --tls-min 1.0: %d %s", code, body)
	}
	env := []string{"DEVICEUPDATE_CERTS=" + low.Certs}
	res := e2e.Run(t, "", env, "doctor", "--domain", "contoso.com", "--server", low.URL())
	if !strings.Contains(res.Stdout, "tls-min: ") || !strings.Contains(res.Stdout, "TLS 1.0") {
		t.Errorf("doctor does not report the lowered TLS floor:\n%s", res.Stdout)
	}
}

// decodeJSON reads one JSON document.
func decodeJSON(s string, v any) error { return json.Unmarshal([]byte(s), v) }
