package handler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/deviceupdate/deviceupdate"
)

// fakeUsers is a UserService over a map of passwords.
type fakeUsers struct {
	mu        sync.Mutex
	passwords map[string]string
	fail      error // returned by Authenticate when set
	added     []string
}

func (f *fakeUsers) Users(context.Context) ([]deviceupdate.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []deviceupdate.User
	for n := range f.passwords {
		out = append(out, deviceupdate.User{Name: n})
	}
	return out, nil
}

// Remembered: the fake remembers nothing (see checkedUsers).
func (f *fakeUsers) Remembered(string, string) (deviceupdate.User, bool) {
	return deviceupdate.User{}, false
}

func (f *fakeUsers) AddUser(_ context.Context, name, password, actor string) (deviceupdate.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := deviceupdate.ValidatePassword(name, password); err != nil {
		return deviceupdate.User{}, err
	}
	if _, ok := f.passwords[name]; ok {
		return deviceupdate.User{}, deviceupdate.Errorf(deviceupdate.ECONFLICT, "a user named %q exists", name)
	}
	f.passwords[name] = password
	f.added = append(f.added, name+" by "+actor)
	return deviceupdate.User{Name: name, CreatedBy: actor}, nil
}

func (f *fakeUsers) RemoveUser(_ context.Context, name, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.passwords[name]; !ok {
		return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no user named %q", name)
	}
	delete(f.passwords, name)
	return nil
}

func (f *fakeUsers) Authenticate(_ context.Context, name, password string) (deviceupdate.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return deviceupdate.User{}, f.fail
	}
	if pw, ok := f.passwords[name]; !ok || pw != password {
		return deviceupdate.User{}, deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "wrong user name or password")
	}
	return deviceupdate.User{Name: name}, nil
}

// recordingPolls offers one update to every poll and keeps the requests;
// its files are in dir, at path below it.
type recordingPolls struct {
	mu       sync.Mutex
	requests []deviceupdate.PollRequest
	update   *deviceupdate.StoredUpdate
	dir      string
	path     string
}

func (p *recordingPolls) Poll(_ context.Context, req deviceupdate.PollRequest, _ string) (*deviceupdate.PollAnswer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, req)
	return &deviceupdate.PollAnswer{Update: p.update, Path: p.path, Files: deviceupdate.OfferFiles(p.update), PollInterval: 86400}, nil
}

func (p *recordingPolls) OpenFile(_ context.Context, path string) (*deviceupdate.Download, error) {
	if path != p.path+"/CPE.nbt" {
		return nil, deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no such update file")
	}
	f, err := os.Open(filepath.Join(p.dir, path))
	if err != nil {
		return nil, err
	}
	return &deviceupdate.Download{File: p.update.Images[0], Content: f}, nil
}

func (p *recordingPolls) ChunkList(context.Context, string) (*deviceupdate.ChunkList, error) {
	return nil, deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no such update file")
}

func (p *recordingPolls) last() deviceupdate.PollRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[len(p.requests)-1]
}

const testPassword = "open sesame 1234"

var testImage = []byte(strings.Repeat("0123456789", 100))

func newExternalServer(t *testing.T) (*Server, *fakeUsers, *recordingPolls, *observer.ObservedLogs) {
	t.Helper()
	dir := t.TempDir()
	fileDir := filepath.Join(dir, "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE")
	if err := os.MkdirAll(fileDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fileDir, "CPE.nbt"), testImage, 0o644); err != nil {
		t.Fatal(err)
	}
	key := deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}
	polls := &recordingPolls{dir: dir, path: "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE", update: &deviceupdate.StoredUpdate{RuleKey: key, Version: deviceupdate.MustParseVersion("4.0.7577.4366"),
		Images:  []deviceupdate.UpdateFile{{Name: "CPE.nbt", Size: int64(len(testImage)), SHA256: "aa"}},
		Catalog: deviceupdate.UpdateFile{Name: "CPE.cat", Size: 1, SHA256: "bb"}}}
	users := &fakeUsers{passwords: map[string]string{"phone1": testPassword}}
	core, logs := observer.New(zapcore.InfoLevel)
	s, err := New(Config{Logger: zap.New(core), Registry: prometheus.NewRegistry(), Store: &fakePinger{}, AdminToken: testToken,
		Polls: polls, Users: users, HTTPPort: "80", HTTPSPort: "443"})
	if err != nil {
		t.Fatal(err)
	}
	return s, users, polls, logs
}

func basic(name, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(name+":"+password))
}

// clientCert returns a TLS state as the handshake leaves it for a client
// certificate that verified (or not) and names the given usages.
func clientCert(cn string, verified bool, usages ...x509.ExtKeyUsage) *tls.ConnectionState {
	leaf := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, SerialNumber: big.NewInt(0x1f), ExtKeyUsage: usages}
	st := &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{leaf}}
	if verified {
		st.VerifiedChains = [][]*x509.Certificate{{leaf, {Subject: pkix.Name{CommonName: "deviceupdate CA"}}}}
	}
	return st
}

func TestExternalEndpoints(t *testing.T) {
	s, users, polls, logs := newExternalServer(t)
	const poll = "/RequestHandlerExt/ucdevice.upx"
	const file = "/DeviceUpdateFiles_Ext/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt"
	withUserID := strings.Replace(pollXML, "</Locale>", "</Locale><UserId>sip:alice@contoso.com</UserId>", 1)
	tests := []struct {
		name          string
		method, path  string
		body          string
		auth          string
		tls           *tls.ConnectionState
		wantStatus    int
		wantPrincipal string // "" when refused
		wantUserID    string // recorded for a poll
		wantReason    string // the failure metric's label when refused
	}{
		{"poll without credentials", "POST", poll, pollXML, "", nil, 401, "", "", authNoCredentials},
		{"download without credentials", "GET", file, "", "", nil, 401, "", "", authNoCredentials},
		{"HEAD without credentials", "HEAD", file, "", "", nil, 401, "", "", authNoCredentials},
		{"poll with a user", "POST", poll, pollXML, basic("phone1", testPassword), nil, 200, "phone1", "phone1", ""},
		{"the body's UserId is kept", "POST", poll, withUserID, basic("phone1", testPassword), nil, 200, "phone1", "sip:alice@contoso.com", ""},
		{"download with a user", "GET", file, "", basic("phone1", testPassword), nil, 200, "phone1", "", ""},
		{"HEAD with a user", "HEAD", file, "", basic("phone1", testPassword), nil, 200, "phone1", "", ""},
		{"wrong password", "POST", poll, pollXML, basic("phone1", testPassword+"x"), nil, 401, "", "", authBadCredentials},
		{"unknown user", "GET", file, "", basic("mallory", testPassword), nil, 401, "", "", authBadCredentials},
		{"bearer token", "POST", poll, pollXML, "Bearer " + testToken, nil, 401, "", "", authUnsupportedScheme},
		{"malformed basic", "POST", poll, pollXML, "Basic !!!", nil, 401, "", "", authUnsupportedScheme},
		{"client certificate", "POST", poll, pollXML, "", clientCert("lab-phone", true, x509.ExtKeyUsageClientAuth), 200, "cert:lab-phone", "cert:lab-phone", ""},
		{"client certificate download", "GET", file, "", "", clientCert("lab-phone", true, x509.ExtKeyUsageClientAuth), 200, "cert:lab-phone", "", ""},
		{"certificate for any usage", "POST", poll, pollXML, "", clientCert("", true, x509.ExtKeyUsageAny), 200, "cert:serial:1f", "cert:serial:1f", ""},
		{"server certificate", "POST", poll, pollXML, "", clientCert("UCUpdates-R2", true, x509.ExtKeyUsageServerAuth), 401, "", "", authBadCertificate},
		{"certificate without usages", "POST", poll, pollXML, "", clientCert("lab-phone", true), 401, "", "", authBadCertificate},
		{"unverified certificate", "POST", poll, pollXML, "", clientCert("lab-phone", false, x509.ExtKeyUsageClientAuth), 401, "", "", authBadCertificate},
		{"bad certificate, good user", "POST", poll, pollXML, basic("phone1", testPassword), clientCert("x", false, x509.ExtKeyUsageClientAuth), 200, "phone1", "phone1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.TLS = tt.tls
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			s.Secure().ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", rec.Code, tt.wantStatus, rec.Body)
			}
			line := logs.FilterMessage("request").FilterField(zap.String("request_id", rec.Header().Get("X-Request-Id"))).All()
			if len(line) != 1 {
				t.Fatalf("%d access log lines", len(line))
			}
			fields := line[0].ContextMap()
			if got, _ := fields["principal"].(string); got != tt.wantPrincipal {
				t.Errorf("logged principal %q, want %q", got, tt.wantPrincipal)
			}
			for _, v := range fields {
				if s, ok := v.(string); ok && strings.Contains(s, testPassword) {
					t.Errorf("the log holds the password: %v", fields)
				}
			}
			if tt.wantStatus == 401 {
				if got := rec.Header().Get("WWW-Authenticate"); got != `Basic realm="deviceupdate"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if tt.method != "HEAD" && rec.Body.String() != "anonymous access is not supported\n" {
					t.Errorf("body = %q", rec.Body)
				}
				if got := fields["error"]; got != "anonymous access is not supported: "+tt.wantReason {
					t.Errorf("logged error %q, want the reason %s", got, tt.wantReason)
				}
				return
			}
			if tt.wantUserID != "" {
				if got := polls.last().UserID; got != tt.wantUserID {
					t.Errorf("recorded UserID %q, want %q", got, tt.wantUserID)
				}
			}
		})
	}

	// The failures are counted by reason.
	rec := do(s.Metrics(), "GET", "/metrics", nil)
	for _, want := range []string{
		`deviceupdate_external_auth_failures_total{reason="no_credentials"} 3`,
		`deviceupdate_external_auth_failures_total{reason="bad_credentials"} 2`,
		`deviceupdate_external_auth_failures_total{reason="unsupported_scheme"} 2`,
		`deviceupdate_external_auth_failures_total{reason="bad_certificate"} 3`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// A failing store is a 500, not a 401.
	users.fail = errors.New("disk on fire")
	req := httptest.NewRequest("POST", poll, strings.NewReader(pollXML))
	req.Header.Set("Authorization", basic("phone1", testPassword))
	rec = httptest.NewRecorder()
	s.Secure().ServeHTTP(rec, req)
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "disk") {
		t.Errorf("store failure: %d %q", rec.Code, rec.Body)
	}
}

// TestExternalMatchesInternal: with credentials, the external endpoints
// answer what the internal ones do, byte for byte, Range included.
func TestExternalMatchesInternal(t *testing.T) {
	s, _, _, _ := newExternalServer(t)
	send := func(method, path, body string, header map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Host = "ucupdates-r2.contoso.com"
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		s.Secure().ServeHTTP(rec, req)
		return rec
	}
	auth := map[string]string{"Authorization": basic("phone1", testPassword)}
	in := send("POST", "/RequestHandler/ucdevice.upx", pollXML, nil)
	ext := send("POST", "/RequestHandlerExt/ucdevice.upx", pollXML, auth)
	if in.Code != 200 || ext.Code != 200 || in.Body.String() != ext.Body.String() {
		t.Fatalf("internal %d %s\nexternal %d %s", in.Code, in.Body, ext.Code, ext.Body)
	}
	if !strings.Contains(ext.Body.String(), "<ExternalBaseURL>https://ucupdates-r2.contoso.com/DeviceUpdateFiles_Ext/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE</ExternalBaseURL>") {
		t.Errorf("answer: %s", ext.Body)
	}
	rangeAuth := map[string]string{"Authorization": basic("phone1", testPassword), "Range": "bytes=100-199"}
	part := send("GET", "/DeviceUpdateFiles_Ext/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt", "", rangeAuth)
	if part.Code != 206 || part.Body.String() != string(testImage[100:200]) || part.Header().Get("ETag") != `"aa"` {
		t.Fatalf("range: %d %q %v", part.Code, part.Body, part.Header())
	}
	if rec := send("GET", "/DeviceUpdateFiles_Ext/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.xml", "", auth); rec.Code != 404 {
		t.Errorf("a file of no update: %d", rec.Code)
	}
	// Plain HTTP has no external endpoints at all.
	req := httptest.NewRequest("POST", "/RequestHandlerExt/ucdevice.upx", strings.NewReader(pollXML))
	req.Header.Set("Authorization", basic("phone1", testPassword))
	rec := httptest.NewRecorder()
	s.Internal().ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Errorf("external poll over plain HTTP: %d", rec.Code)
	}
}

// TestExternalPollsHaveTheirOwnLimit: internal and external polls take
// slots of separate pools: with every internal slot held an external poll
// is served, and past the external limit it gets 503 while internal ones
// are unaffected.
func TestExternalPollsHaveTheirOwnLimit(t *testing.T) {
	polls := &blockingPolls{entered: make(chan struct{}, 2), release: make(chan struct{})}
	users := &fakeUsers{passwords: map[string]string{"phone1": testPassword}}
	s, err := New(Config{Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Store: &fakePinger{}, Polls: polls, Users: users, PollLimit: 1, ExternalPollLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	poll := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, strings.NewReader(pollXML))
		req.Header.Set("Authorization", basic("phone1", testPassword))
		rec := httptest.NewRecorder()
		s.Secure().ServeHTTP(rec, req)
		return rec
	}
	var wg sync.WaitGroup
	held := make([]*httptest.ResponseRecorder, 2)
	for i, path := range []string{"/RequestHandler/ucdevice.upx", "/RequestHandlerExt/ucdevice.upx"} {
		wg.Add(1)
		go func() { defer wg.Done(); held[i] = poll(path) }()
		<-polls.entered // an internal poll holds the only internal slot; an external one is still served
	}
	for _, path := range []string{"/RequestHandler/ucdevice.upx", "/RequestHandlerExt/ucdevice.upx"} {
		if rec := poll(path); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "30" {
			t.Errorf("%s past its limit: %d, Retry-After %q", path, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	close(polls.release)
	wg.Wait()
	for i, rec := range held {
		if rec.Code != http.StatusOK {
			t.Errorf("held poll %d: %d %s", i, rec.Code, rec.Body)
		}
	}
}

func TestUsersAdminAPI(t *testing.T) {
	s, users, _, _ := newExternalServer(t)
	token := map[string]string{"Authorization": "Bearer " + testToken}
	send := func(method, path, body string, header map[string]string, st *tls.ConnectionState) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.TLS = st
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		s.Secure().ServeHTTP(rec, req)
		return rec
	}
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		tls                      *tls.ConnectionState
		wantStatus               int
		wantBody                 string
	}{
		{"add", "POST", AdminPrefix + "/users", `{"name":"phone2","password":"another password"}`, token, nil, 201, `"name":"phone2"`},
		{"add taken", "POST", AdminPrefix + "/users", `{"name":"phone2","password":"another password"}`, token, nil, 409, `"code":"conflict"`},
		{"add short password", "POST", AdminPrefix + "/users", `{"name":"phone3","password":"short"}`, token, nil, 400, "too short"},
		{"add unknown field", "POST", AdminPrefix + "/users", `{"name":"phone3","passwd":"another password"}`, token, nil, 400, `"code":"invalid"`},
		{"list", "GET", AdminPrefix + "/users", "", token, nil, 200, `"name":"phone2"`},
		{"remove", "DELETE", AdminPrefix + "/users/phone2", "", token, nil, 204, ""},
		{"remove unknown", "DELETE", AdminPrefix + "/users/phone2", "", token, nil, 404, `"code":"not_found"`},
		{"no token", "GET", AdminPrefix + "/users", "", nil, nil, 401, `"code":"unauthorized"`},
		{"a user is not an admin", "GET", AdminPrefix + "/users", "", map[string]string{"Authorization": basic("phone1", testPassword)}, nil, 401, ""},
		{"a client certificate is not an admin", "GET", AdminPrefix + "/users", "", nil, clientCert("lab-phone", true, x509.ExtKeyUsageClientAuth), 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := send(tt.method, tt.path, tt.body, tt.header, tt.tls)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("%d %s, want %d with %q", rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
			if strings.Contains(rec.Body.String(), "password\"") || strings.Contains(rec.Body.String(), "another password") {
				t.Errorf("the answer holds a password: %s", rec.Body)
			}
		})
	}
	if len(users.added) != 1 || users.added[0] != "phone2 by bootstrap" {
		t.Errorf("added %q", users.added)
	}
}
