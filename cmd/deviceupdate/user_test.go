package main_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

const (
	extPoll = "/RequestHandlerExt/ucdevice.upx"
	extFile = "/DeviceUpdateFiles_Ext/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt"
)

// startWithApprovedUpdate starts a server holding an approved CX600
// update 4.0.7577.4366, with serve's further flags args, and returns it,
// the admin commands' environment and the image.
func startWithApprovedUpdate(t *testing.T, args ...string) (*e2e.Server, []string, []byte) {
	t.Helper()
	srv := e2e.Start(t, e2e.Options{Args: args})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	files := testpkg.Files{}
	image := testpkg.Image(200<<10, 9)
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", image, testpkg.NewSigner(t, ca, testpki.Options{}))
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	if res := e2e.Run(t, "", env, "import", testpkg.MakeCab(t, files)); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	if res := e2e.Run(t, "", env, "rule", "approve", "UCPhone/Polycom/CX600/A/ENU/CPE"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	return srv, env, image
}

// runStdin runs the binary with stdin as its standard input.
func runStdin(t *testing.T, env []string, stdin string, args ...string) e2e.Result {
	t.Helper()
	cmd := exec.Command(e2e.Binary(t), args...)
	cmd.Env = e2e.Env(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run deviceupdate %v: %v", args, err)
	}
	return e2e.Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// send makes a request and returns the status, the body and the headers.
func send(t *testing.T, c *http.Client, method, url, body string, header map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func basicAuth(name, password string) map[string]string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(name, password)
	return map[string]string{"Authorization": req.Header.Get("Authorization")}
}

// TestExternalUsersThroughCLI: external phones get 401 until a user is
// added with `user add`; then they poll and download exactly as internal
// phones do, are recorded under the user's name, and get 401 again with a
// wrong password or once the user is removed. No password or hash reaches
// the audit trail or the log.
func TestExternalUsersThroughCLI(t *testing.T) {
	srv, env, image := startWithApprovedUpdate(t)
	c := srv.Client("ucupdates-r2.contoso.com")
	const name, password = "phone.redmond@contoso.com", "a long phone password"
	const mac = "00-04-F2-00-00-21"
	body := pollBody(mac, "CX600", "4.0.7577.4100")

	code, text, h := send(t, c, "POST", srv.URL()+extPoll, body, nil)
	if code != 401 || text != "anonymous access is not supported\n" || h.Get("WWW-Authenticate") != `Basic realm="deviceupdate"` {
		t.Fatalf("anonymous external poll: %d %q %v", code, text, h)
	}
	if code, _, _ := send(t, c, "GET", srv.URL()+extFile, "", nil); code != 401 {
		t.Fatalf("anonymous external download: %d", code)
	}

	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantText string
	}{
		{"add", password + "\n", []string{"user", "add", name, "--password-stdin"}, 0, `added user "phone.redmond@contoso.com"`},
		{"taken in another case", password + "\r\n", []string{"user", "add", "PHONE.redmond@contoso.com", "--password-stdin"}, 1, "exists"},
		{"short password", "short\n", []string{"user", "add", "phone2", "--password-stdin"}, 1, "too short"},
		{"empty standard input", "", []string{"user", "add", "phone2", "--password-stdin"}, 1, "no password on standard input"},
		{"no terminal", "", []string{"user", "add", "phone2"}, 2, "pass --password-stdin"},
		{"bad name", password + "\n", []string{"user", "add", "../x", "--password-stdin"}, 1, `user name "../x"`},
		{"no name", "", []string{"user", "add"}, 2, "takes one NAME"},
	}
	for _, tt := range tests {
		res := runStdin(t, env, tt.stdin, tt.args...)
		if res.Code != tt.wantCode || !strings.Contains(res.Stdout+res.Stderr, tt.wantText) || strings.Count(res.Stderr, "\n") > 1 {
			t.Fatalf("%s: exit %d\nstdout %s\nstderr %s\nwant %d and %q", tt.name, res.Code, res.Stdout, res.Stderr, tt.wantCode, tt.wantText)
		}
	}

	// With the user's credentials, the external poll is the internal one.
	auth := basicAuth(name, password)
	_, internal, _ := send(t, c, "POST", srv.URL()+"/RequestHandler/ucdevice.upx", body, nil)
	code, ext, _ := send(t, c, "POST", srv.URL()+extPoll, body, auth) // the last poll: the inventory keeps its UserID
	if code != 200 || ext != internal || !strings.Contains(ext, "<Version>4.0.7577.4366</Version>") {
		t.Fatalf("external poll: %d\n%s\ninternal:\n%s", code, ext, internal)
	}
	rangeAuth := map[string]string{"Authorization": auth["Authorization"], "Range": "bytes=1000-1999"}
	if code, part, _ := send(t, c, "GET", srv.URL()+extFile, "", rangeAuth); code != 206 || part != string(image[1000:2000]) {
		t.Fatalf("external ranged download: %d, %d bytes", code, len(part))
	}
	if code, _, _ := send(t, c, "POST", srv.URL()+extPoll, body, basicAuth(name, password+"!")); code != 401 {
		t.Errorf("wrong password: %d", code)
	}

	res := e2e.Run(t, "", env, "user", "list", "--json")
	var users []deviceupdate.User
	if err := json.Unmarshal([]byte(res.Stdout), &users); err != nil || len(users) != 1 || users[0].Name != name || users[0].CreatedBy != "bootstrap" {
		t.Fatalf("user list: %v %s %s", err, res.Stdout, res.Stderr)
	}
	if strings.Contains(strings.ToLower(res.Stdout), "password") || strings.Contains(res.Stdout, "$2a$") {
		t.Errorf("user list shows a secret: %s", res.Stdout)
	}

	// The poll without <UserId> is recorded under the user's name (the
	// inventory is written every second).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var devices []deviceupdate.Device
		res := e2e.Run(t, "", env, "device", "list", "--json")
		_ = json.Unmarshal([]byte(res.Stdout), &devices)
		if len(devices) == 1 && devices[0].UserID == name {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inventory: %s %s", res.Stdout, res.Stderr)
		}
		time.Sleep(500 * time.Millisecond)
	}

	if res := e2e.Run(t, "", env, "user", "remove", strings.ToUpper(name)); res.Code != 0 || !strings.Contains(res.Stdout, "removed user") {
		t.Fatalf("user remove: %d %s %s", res.Code, res.Stdout, res.Stderr)
	}
	if code, _, _ := send(t, c, "POST", srv.URL()+extPoll, body, auth); code != 401 {
		t.Errorf("removed user: %d", code)
	}
	if res := e2e.Run(t, "", env, "user", "remove", name); res.Code != 1 || !strings.Contains(res.Stderr, "no user named") {
		t.Errorf("removing twice: %d %s", res.Code, res.Stderr)
	}

	var list deviceupdate.AuditList
	json.Unmarshal([]byte(e2e.Run(t, "", env, "audit", "list", "--action", "user.", "--json").Stdout), &list)
	entries := list.Entries
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action+" "+e.Target+" "+e.Result)
	}
	// The add, the refused add of the taken name, the removal and the
	// refused second removal; the other refusals never left the CLI.
	if len(entries) != 4 || entries[0].Action != "user.add" || entries[0].Result != "ok" || entries[2].Action != "user.remove" || entries[2].Result != "ok" {
		t.Errorf("audit entries: %q", actions)
	}

	if code := srv.Stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	trail, _ := os.ReadFile(filepath.Join(srv.Data, "Logs/Server/Audit/admin/audit.log"))
	if len(trail) == 0 {
		t.Error("no audit trail")
	}
	for what, data := range map[string]string{"audit trail": string(trail), "log": srv.Stderr()} {
		if strings.Contains(data, password) || strings.Contains(data, "$2a$") {
			t.Errorf("the %s holds the password or its hash", what)
		}
	}
	if !strings.Contains(srv.Stderr(), `"principal":"phone.redmond@contoso.com"`) {
		t.Error("no request log line names the principal")
	}
}

// TestExternalClientCertificate: a certificate from `certs client` lets an
// external phone poll and download without a password, but not reach the
// admin API; one from another CA is refused.
func TestExternalClientCertificate(t *testing.T) {
	srv, env, image := startWithApprovedUpdate(t)
	out := t.TempDir()
	res := e2e.Run(t, "", env, "certs", "client", "lab-phone", "-o", out)
	if res.Code != 0 || !strings.Contains(res.Stdout, filepath.Join(out, "lab-phone.crt")) {
		t.Fatalf("certs client: %d %s %s", res.Code, res.Stdout, res.Stderr)
	}
	certPath, keyPath := filepath.Join(out, "lab-phone.crt"), filepath.Join(out, "lab-phone.key")
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key: %v %v", fi, err)
	}
	before, _ := os.ReadFile(keyPath)
	if res := e2e.Run(t, "", env, "certs", "client", "lab-phone", "-o", out); res.Code != 1 || !strings.Contains(res.Stderr, "file exists") {
		t.Errorf("second certs client: %d %s", res.Code, res.Stderr)
	}
	if after, _ := os.ReadFile(keyPath); !bytes.Equal(before, after) {
		t.Error("the key was overwritten")
	}
	if res := e2e.Run(t, "", env, "certs", "client", "../lab", "-o", out); res.Code != 1 {
		t.Errorf("certs client ../lab: %d %s", res.Code, res.Stderr)
	}
	if res := e2e.Run(t, out, env, "certs", "client", "ecdsa-phone", "--key-type", "ecdsa"); res.Code != 0 {
		t.Fatalf("certs client --key-type ecdsa into the working folder: %d %s", res.Code, res.Stderr)
	}

	withCert := func(certPath, keyPath string) *http.Client {
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CAPool(), ServerName: "ucupdates-r2.contoso.com", Certificates: []tls.Certificate{pair}}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	body := pollBody("00-04-F2-00-00-31", "CX600", "4.0.7577.4100")
	for _, p := range []struct{ cert, key string }{{certPath, keyPath}, {filepath.Join(out, "ecdsa-phone.crt"), filepath.Join(out, "ecdsa-phone.key")}} {
		c := withCert(p.cert, p.key)
		if code, text, _ := send(t, c, "POST", srv.URL()+extPoll, body, nil); code != 200 || !strings.Contains(text, "<Version>4.0.7577.4366</Version>") {
			t.Fatalf("%s: external poll: %d %s", filepath.Base(p.cert), code, text)
		}
	}
	c := withCert(certPath, keyPath)
	if code, part, _ := send(t, c, "GET", srv.URL()+extFile, "", map[string]string{"Range": "bytes=0-4095"}); code != 206 || part != string(image[:4096]) {
		t.Fatalf("external ranged download: %d, %d bytes", code, len(part))
	}
	if code, _, h := send(t, c, "HEAD", srv.URL()+extFile, "", nil); code != 200 || h.Get("Content-Length") != "204800" {
		t.Errorf("HEAD: %d %v", code, h)
	}
	if code, _, _ := send(t, c, "GET", srv.URL()+"/admin/api/v1/users", "", nil); code != 401 {
		t.Errorf("the admin API with a client certificate and no token: %d", code)
	}

	// A certificate for client authentication from another CA, sent even
	// though the server names its CA as the one it accepts (Go's client
	// would otherwise send none; a phone might).
	foreignCert, foreignKey := foreignClientCert(t)
	if code, text, _ := send(t, withCert(foreignCert, foreignKey), "POST", srv.URL()+extPoll, body, nil); code != 401 || strings.Contains(text, "<Response>") {
		t.Errorf("foreign certificate, left unsent by the client: %d %s", code, text)
	}
	foreignPair, err := tls.LoadX509KeyPair(foreignCert, foreignKey)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CAPool(), ServerName: "ucupdates-r2.contoso.com",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreignPair, nil }}}
	t.Cleanup(tr.CloseIdleConnections)
	foreign := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	req, _ := http.NewRequest("POST", srv.URL()+extPoll, strings.NewReader(body))
	resp, err := foreign.Do(req)
	if err == nil {
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || strings.Contains(string(got), "<Response>") {
			t.Errorf("foreign certificate: %d %s", resp.StatusCode, got)
		}
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("foreign certificate: %v, want a handshake refusal or 401", err)
	} else {
		t.Logf("foreign certificate refused in the handshake: %v", err)
	}

	if code := srv.Stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	if !strings.Contains(srv.Stderr(), `"principal":"cert:lab-phone"`) || !strings.Contains(srv.Stderr(), `"principal":"cert:ecdsa-phone"`) {
		t.Error("no request log line names the certificates")
	}
}

// foreignClientCert writes a client certificate and key of a CA the server
// does not know, and returns their paths.
func foreignClientCert(t *testing.T) (certPath, keyPath string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Other CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "lab-phone"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "foreign.crt"), filepath.Join(dir, "foreign.key")
	testpki.WriteCert(t, certPath, leaf)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}
