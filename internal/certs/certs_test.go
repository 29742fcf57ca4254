package certs_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/fsutil"
)

var opts = certs.Options{
	Domain: "contoso.com",
	Hosts:  []string{"fe01", "fe01.contoso.com"},
	IPs:    []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("127.0.0.1")},
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// snapshot returns every file's content under dir, by relative path.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[rel] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestEnsureCreatesEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	created, err := certs.Ensure(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range created {
		names = append(names, filepath.Base(p))
	}
	sort.Strings(names)
	want := []string{"admin.token", "ca.crt", "ca.key", "server.crt", "server.key"}
	if !slices.Equal(names, want) {
		t.Fatalf("created %v, want %v", names, want)
	}
	for name, mode := range map[string]fs.FileMode{
		"ca.key": 0o600, "server.key": 0o600, "admin.token": 0o600, "ca.crt": 0o644, "server.crt": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode = %o, want %o", name, fi.Mode().Perm(), mode)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "trusted")); err != nil || !fi.IsDir() {
		t.Errorf("trusted/ folder missing: %v", err)
	}

	ca := readCert(t, filepath.Join(dir, "ca.crt"))
	srv := readCert(t, filepath.Join(dir, "server.crt"))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range []string{"ucupdates-r2.contoso.com", "UCUpdates-R2", "fe01", "fe01.contoso.com", "127.0.0.1", "::1"} {
		if _, err := srv.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("server certificate does not verify for %q: %v", name, err)
		}
	}
	if len(srv.IPAddresses) != 2 {
		t.Errorf("server certificate IPs = %v, want 127.0.0.1 and ::1 once each", srv.IPAddresses)
	}
	if srv.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("signature algorithm = %v, want SHA256-RSA", srv.SignatureAlgorithm)
	}
	if srv.Subject.CommonName != "UCUpdates-R2.contoso.com" {
		t.Errorf("common name = %q", srv.Subject.CommonName)
	}
	if _, err := certs.LoadServer(dir); err != nil {
		t.Errorf("LoadServer: %v", err)
	}
	if tok, err := certs.ReadToken(dir); err != nil || len(tok) < 40 {
		t.Errorf("ReadToken = %q, %v; want a long random token", tok, err)
	}
}

func TestEnsureKeepsWhatExists(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Ensure(dir, opts); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	created, err := certs.Ensure(dir, certs.Options{Domain: "other.example"})
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 0 {
		t.Errorf("second Ensure created %v, want nothing", created)
	}
	after := snapshot(t, dir)
	for name, data := range before {
		if !bytes.Equal(after[name], data) {
			t.Errorf("%s changed on the second Ensure", name)
		}
	}
}

func TestEnsureUsesOperatorPairAsIs(t *testing.T) {
	// An operator's pair, issued elsewhere (here: by another CA).
	other := t.TempDir()
	if _, err := certs.Ensure(other, certs.Options{Domain: "corp.example"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"server.crt", "server.key"} {
		copyFile(t, filepath.Join(other, name), filepath.Join(dir, name))
	}
	created, err := certs.Ensure(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 1 || filepath.Base(created[0]) != "admin.token" {
		t.Errorf("created %v, want only the admin token", created)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a CA was made beside an operator's server pair")
	}
	got := readCert(t, filepath.Join(dir, "server.crt"))
	want := readCert(t, filepath.Join(other, "server.crt"))
	if !got.Equal(want) {
		t.Error("the operator's server certificate was replaced")
	}
}

func TestEnsureRefusesBadMaterial(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir, other string) // other holds a complete, unrelated set
		want    error
	}{
		{"server certificate with a foreign key", func(t *testing.T, dir, other string) {
			copyFile(t, filepath.Join(other, "server.crt"), filepath.Join(dir, "server.crt"))
			copyFile(t, filepath.Join(other, "ca.key"), filepath.Join(dir, "server.key"))
		}, certs.ErrMismatch},
		{"server certificate without its key", func(t *testing.T, dir, other string) {
			copyFile(t, filepath.Join(other, "server.crt"), filepath.Join(dir, "server.crt"))
		}, certs.ErrIncomplete},
		{"server key without its certificate", func(t *testing.T, dir, other string) {
			copyFile(t, filepath.Join(other, "server.key"), filepath.Join(dir, "server.key"))
		}, certs.ErrIncomplete},
		{"CA certificate without its key", func(t *testing.T, dir, other string) {
			copyFile(t, filepath.Join(other, "ca.crt"), filepath.Join(dir, "ca.crt"))
		}, certs.ErrIncomplete},
		{"CA key of another CA", func(t *testing.T, dir, other string) {
			copyFile(t, filepath.Join(other, "ca.crt"), filepath.Join(dir, "ca.crt"))
			copyFile(t, filepath.Join(other, "server.key"), filepath.Join(dir, "ca.key"))
		}, certs.ErrMismatch},
		{"garbage certificate", func(t *testing.T, dir, other string) {
			writeFile(t, filepath.Join(dir, "server.crt"), "hello")
			copyFile(t, filepath.Join(other, "server.key"), filepath.Join(dir, "server.key"))
		}, certs.ErrBadPEM},
		{"garbage key", func(t *testing.T, dir, other string) {
			copyFile(t, filepath.Join(other, "server.crt"), filepath.Join(dir, "server.crt"))
			writeFile(t, filepath.Join(dir, "server.key"), "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
		}, certs.ErrBadPEM},
	}
	other := t.TempDir()
	if _, err := certs.Ensure(other, opts); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(t, dir, other)
			before := snapshot(t, dir)
			_, err := certs.Ensure(dir, opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Ensure error = %v, want %v", err, tt.want)
			}
			after := snapshot(t, dir)
			if len(after) != len(before) {
				t.Errorf("a refused Ensure left files: before %d, after %d", len(before), len(after))
			}
		})
	}
}

func TestReadTokenEmpty(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "admin.token"), "\n")
	if _, err := certs.ReadToken(dir); err == nil {
		t.Fatal("ReadToken accepted an empty token")
	}
	if _, err := certs.Ensure(dir, opts); err == nil {
		t.Fatal("Ensure accepted an empty token")
	}
}

func TestServerCertValidNow(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	dir := t.TempDir()
	o := opts
	o.Now = func() time.Time { return now }
	if _, err := certs.Ensure(dir, o); err != nil {
		t.Fatal(err)
	}
	srv := readCert(t, filepath.Join(dir, "server.crt"))
	if !srv.NotBefore.Before(now) || !srv.NotAfter.After(now.Add(365*24*time.Hour)) {
		t.Errorf("validity %v to %v does not cover a year from %v", srv.NotBefore, srv.NotAfter, now)
	}
}

// copyFile puts a copy of from in place of to, as a new file: a rewrite
// in place within one tick of the file system's clock, of the same size,
// would look unchanged to a Reloader.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsutil.WriteFileAtomic(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheckWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if err := certs.Check(dir); err != nil {
		t.Fatalf("Check on a missing folder: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check created %s", dir)
	}
}

// TestRefusesNamesThatAreNotDNSNames: a domain or host name no client
// could verify the certificate for is refused, naming it, and nothing is
// written.
func TestRefusesNamesThatAreNotDNSNames(t *testing.T) {
	renewed := t.TempDir()
	if _, err := certs.Ensure(renewed, opts); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func(dir string) error
		dir  string // the folder that must not change; empty: a new one
		want string
	}{
		{"domain with two dots", func(dir string) error {
			_, err := certs.Ensure(dir, certs.Options{Domain: "contoso..com"})
			return err
		}, "", `domain "contoso..com" is not a DNS domain: it has an empty label`},
		{"host with a space", func(dir string) error {
			_, err := certs.Ensure(dir, certs.Options{Domain: "contoso.com", Hosts: []string{"fe01", "bad host"}})
			return err
		}, "", `host name "bad host" is not a DNS name: its label "bad host" holds ' '`},
		{"host with an underscore", func(dir string) error {
			_, err := certs.Ensure(dir, certs.Options{Hosts: []string{"fe_01"}})
			return err
		}, "", `host name "fe_01" is not a DNS name`},
		{"renewal to a bad domain", func(dir string) error {
			_, err := certs.Renew(dir, certs.RenewOptions{Domain: "-fabrikam.com"})
			return err
		}, renewed, `domain "-fabrikam.com" is not a DNS domain: its label "-fabrikam" starts or ends with '-'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir
			if dir == "" {
				dir = t.TempDir()
			}
			before := snapshot(t, dir)
			err := tt.run(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			checkUnchanged(t, dir, before)
		})
	}
}

// checkUnchanged fails the test when the files of dir differ from before,
// its snapshot.
func checkUnchanged(t *testing.T, dir string, before map[string][]byte) {
	t.Helper()
	after := snapshot(t, dir)
	if len(after) != len(before) {
		t.Errorf("a refusal changed the files: %d before, %d after", len(before), len(after))
	}
	for name, data := range before {
		if !bytes.Equal(after[name], data) {
			t.Errorf("a refusal changed %s", name)
		}
	}
}
