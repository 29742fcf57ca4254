package main_test

import (
	"crypto/tls"
	"crypto/x509"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
)

// wantOneLine fails unless a failed command printed one deviceupdate: line
// holding each of want.
func wantOneLine(t *testing.T, res e2e.Result, code int, want ...string) {
	t.Helper()
	if res.Code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", res.Code, code, res.Stdout, res.Stderr)
	}
	if lines := strings.Split(strings.TrimRight(res.Stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "deviceupdate: ") {
		t.Errorf("stderr is not one deviceupdate: line:\n%s", res.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("stderr %q lacks %q", res.Stderr, w)
		}
	}
}

// readFiles returns the content of every file under dir, by path.
func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range listFiles(t, dir) {
		if data, err := os.ReadFile(p); err == nil {
			out[p] = string(data)
		}
	}
	return out
}

// TestCertsInitRefusesAnotherDomain (issue 13, rough edge 1): certs init
// for a domain the existing certificate lacks fails and says how to fix
// it; for the same domain, or none, nothing is created, as before.
func TestCertsInitRefusesAnotherDomain(t *testing.T) {
	dir := t.TempDir()
	certsDir := filepath.Join(dir, "certs")
	if res := e2e.Run(t, dir, nil, "certs", "init", "--domain", "contoso.com", "--certs", certsDir, "--ip", "127.0.0.1"); res.Code != 0 {
		t.Fatalf("certs init: %d %s", res.Code, res.Stderr)
	}
	before := readFiles(t, certsDir)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"same domain", []string{"--domain", "contoso.com"}, 0, "nothing created"},
		{"no domain", nil, 0, "nothing created"},
		{"another domain", []string{"--domain", "fabrikam.com"}, 1,
			"server.crt lacks UCUpdates-R2.fabrikam.com (it holds UCUpdates-R2, UCUpdates-R2.contoso.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e2e.Run(t, dir, nil, append([]string{"certs", "init", "--certs", certsDir}, tt.args...)...)
			if tt.wantCode == 0 {
				if res.Code != 0 || !strings.Contains(res.Stdout, tt.want) {
					t.Errorf("exit %d, stdout %q, stderr %q; want 0 and %q", res.Code, res.Stdout, res.Stderr, tt.want)
				}
			} else {
				wantOneLine(t, res, tt.wantCode, tt.want, "; reissue it with: deviceupdate certs renew --domain fabrikam.com --certs "+certsDir)
			}
			if after := readFiles(t, certsDir); !maps.Equal(after, before) {
				t.Error("certs init changed the folder")
			}
		})
	}
}

// TestCertsRenewWhileServing (issue 13, rough edges 1 and 10): serve for
// a domain its certificate lacks names the fix in its warning; running it
// reissues the certificate, and the running server presents the new one
// without a restart.
func TestCertsRenewWhileServing(t *testing.T) {
	dir := t.TempDir()
	certsDir := filepath.Join(dir, "certs")
	if res := e2e.Run(t, dir, nil, "certs", "init", "--domain", "fabrikam.com", "--certs", certsDir, "--ip", "127.0.0.1"); res.Code != 0 {
		t.Fatalf("certs init: %d %s", res.Code, res.Stderr)
	}
	srv := e2e.Start(t, e2e.Options{Certs: certsDir, Domain: "contoso.com"})
	defer srv.Stop()
	fix := "reissue it with: deviceupdate certs renew --domain contoso.com --certs " + certsDir
	w := srv.FindLog("server certificate lacks a discovery name; phones finding the service by DNS will refuse it")
	if w == nil || w["fix"] != fix || !slices.Equal(w["missing"].([]any), []any{"UCUpdates-R2.contoso.com"}) {
		t.Fatalf("warning = %v, want UCUpdates-R2.contoso.com missing and the fix %q", w, fix)
	}
	old := presented(t, srv.HTTPSAddr)

	res := e2e.Run(t, dir, nil, strings.Fields(strings.TrimPrefix(fix, "reissue it with: deviceupdate "))...)
	if res.Code != 0 || !strings.Contains(res.Stdout, "renewed "+filepath.Join(certsDir, "server.crt")) {
		t.Fatalf("%s: exit %d\n%s%s", fix, res.Code, res.Stdout, res.Stderr)
	}
	deadline := time.Now().Add(30 * time.Second)
	cur := old
	for cur.SerialNumber.Cmp(old.SerialNumber) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		cur = presented(t, srv.HTTPSAddr)
	}
	if cur.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatal("the running server still presents the old certificate")
	}
	if !slices.Contains(cur.DNSNames, "UCUpdates-R2.contoso.com") || slices.Contains(cur.DNSNames, "UCUpdates-R2.fabrikam.com") {
		t.Errorf("renewed names %v, want UCUpdates-R2.contoso.com instead of UCUpdates-R2.fabrikam.com", cur.DNSNames)
	}
	if code, _ := get(t, srv.Client("ucupdates-r2.contoso.com"), srv.URL()+"/healthz"); code != 200 {
		t.Errorf("/healthz verified as ucupdates-r2.contoso.com = %d", code)
	}
	for time.Now().Before(deadline) && srv.FindLog("server certificate reloaded") == nil {
		time.Sleep(100 * time.Millisecond) // the log is flushed every second
	}
	if l := srv.FindLog("server certificate reloaded"); l == nil || l["serial"] != cur.SerialNumber.Text(16) {
		t.Errorf("reload log line = %v", l)
	}
}

// presented returns the certificate the server at addr presents now, on a
// new connection.
func presented(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // inspected, not trusted
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func TestCertsRenewRefuses(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(certsDir string)
		want    []string
	}{
		{"empty folder", func(string) {}, []string{"there is no server certificate to renew", "deviceupdate certs init --certs"}},
		{"CA key moved offline", func(certsDir string) {
			e2e.Run(t, "", nil, "certs", "init", "--certs", certsDir, "--ip", "127.0.0.1")
			os.Remove(filepath.Join(certsDir, "ca.key"))
		}, []string{"ca.key is missing", "put ca.key back"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certsDir := filepath.Join(t.TempDir(), "certs")
			tt.prepare(certsDir)
			before := readFiles(t, filepath.Dir(certsDir))
			wantOneLine(t, e2e.Run(t, "", nil, "certs", "renew", "--certs", certsDir), 1, tt.want...)
			if after := readFiles(t, filepath.Dir(certsDir)); !maps.Equal(after, before) {
				t.Error("a refused renewal changed files")
			}
		})
	}
}

// TestPublisherPackTrustImport (issue 13, rough edges 1 and 7): a
// publisher from certs publisher signs with pack, and its packages import
// once its certificate, PEM or DER as Windows exports it, is in trusted/;
// a publisher not trusted is refused, and a file of trusted/ that is not a
// certificate is named.
func TestPublisherPackTrustImport(t *testing.T) {
	openssl := testpkg.NeedTool(t, "openssl")
	srv := e2e.Start(t, e2e.Options{})
	work := t.TempDir()
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	image := filepath.Join(work, "CPE.nbt")
	os.WriteFile(image, testpkg.Image(1<<20, 11), 0o644)
	trusted := filepath.Join(srv.Certs, "trusted")
	packWith := func(name, version string) string {
		t.Helper()
		res := e2e.Run(t, work, env, "certs", "publisher", name, "-o", work)
		if res.Code != 0 || !strings.Contains(res.Stdout, "next: trust it on the server (cp "+filepath.Join(work, name+".crt")+" "+trusted+"/)") {
			t.Fatalf("certs publisher %s: exit %d\n%s%s", name, res.Code, res.Stdout, res.Stderr)
		}
		out := filepath.Join(work, name+".cab")
		if res := pack(t, out, filepath.Join(work, name+".crt"), filepath.Join(work, name+".key"), []string{"--version", version}, image); res.Code != 0 {
			t.Fatalf("pack with %s: %s", name, res.Stderr)
		}
		return out
	}
	lab := packWith("lab", "4.0.7577.4366")
	partner := packWith("partner", "4.0.7577.4400")
	stranger := packWith("stranger", "4.0.7577.4500")

	wantOneLine(t, e2e.Run(t, work, env, "import", lab), 1, "no trusted publishers")
	copyFile(t, filepath.Join(work, "lab.crt"), filepath.Join(trusted, "lab.crt"))
	if out, err := exec.Command(openssl, "x509", "-in", filepath.Join(work, "partner.crt"), "-outform", "der", "-out", filepath.Join(trusted, "partner.cer")).CombinedOutput(); err != nil {
		t.Fatalf("openssl x509 -outform der: %v\n%s", err, out)
	}
	junk := filepath.Join(trusted, "notes.cer")
	os.WriteFile(junk, []byte("call the vendor\n"), 0o644)
	for _, pkg := range []string{lab, partner} {
		if res := e2e.Run(t, work, env, "import", pkg); res.Code != 0 || !strings.Contains(res.Stdout, "now the pending version") {
			t.Errorf("import %s: exit %d\n%s%s", filepath.Base(pkg), res.Code, res.Stdout, res.Stderr)
		}
	}
	wantOneLine(t, e2e.Run(t, work, env, "import", stranger), 1, "catalog signer is not trusted: CN=stranger",
		"skipped as unusable: "+junk+": neither a PEM nor a DER certificate")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && srv.FindLog("a file in the trusted publishers folder is not usable") == nil {
		time.Sleep(100 * time.Millisecond) // the log is flushed every second
	}
	if l := srv.FindLog("a file in the trusted publishers folder is not usable"); l == nil || l["file"] != junk {
		t.Errorf("warning = %v, want it to name %s", l, junk)
	}
}
