package certs_test

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/certs"
)

// TestRenew: the reissued certificate comes from the same CA with a new
// key, for 27 months, with the same names or those of the new domain.
func TestRenew(t *testing.T) {
	now := time.Now().Add(400 * 24 * time.Hour) // past a year: the old one is half-spent
	tests := []struct {
		name      string
		domain    string
		wantNames []string
	}{
		{"same names", "", []string{"UCUpdates-R2", "UCUpdates-R2.contoso.com", "fe01", "fe01.contoso.com", "127.0.0.1", "::1"}},
		{"same domain", "contoso.com", []string{"UCUpdates-R2", "UCUpdates-R2.contoso.com", "fe01", "fe01.contoso.com", "127.0.0.1", "::1"}},
		{"new domain", "fabrikam.com", []string{"UCUpdates-R2", "UCUpdates-R2.fabrikam.com", "fe01", "fe01.fabrikam.com", "127.0.0.1", "::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := certs.Ensure(dir, opts); err != nil {
				t.Fatal(err)
			}
			oldKey, _ := os.ReadFile(filepath.Join(dir, "server.key"))
			oldCA := snapshot(t, dir)["ca.crt"]
			r, err := certs.Renew(dir, certs.RenewOptions{Domain: tt.domain, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			got := readCert(t, filepath.Join(dir, "server.crt"))
			if !got.Equal(r.New) || r.Old.SerialNumber.Cmp(got.SerialNumber) == 0 {
				t.Errorf("server.crt is not the new certificate with a new serial (old %x, new %x)", r.Old.SerialNumber, got.SerialNumber)
			}
			if names := certs.CertNames(got); !slices.Equal(names, tt.wantNames) {
				t.Errorf("names = %v, want %v", names, tt.wantNames)
			}
			if want := now.Add(certs.ServerValidity); got.NotAfter.Sub(want).Abs() > time.Second {
				t.Errorf("valid until %v, want %v (27 months from the renewal)", got.NotAfter, want)
			}
			newKey, _ := os.ReadFile(filepath.Join(dir, "server.key"))
			if bytes.Equal(oldKey, newKey) {
				t.Error("the key was kept; renew makes a new one")
			}
			if fi, err := os.Stat(filepath.Join(dir, "server.key")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("server.key: %v, mode %v; want 0600", err, fi.Mode().Perm())
			}
			if _, err := certs.LoadServer(dir); err != nil {
				t.Errorf("the new pair does not load: %v", err)
			}
			if !bytes.Equal(snapshot(t, dir)["ca.crt"], oldCA) {
				t.Error("renew changed the CA")
			}
			pool, _ := certs.LoadCAPool(dir)
			if _, err := got.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("the new certificate does not chain to ca.crt: %v", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 6 {
				t.Errorf("the folder holds %d entries, want the 5 files and trusted/ (no staging files left)", len(entries))
			}
		})
	}
}

// TestRenewNeverOutlivesTheCA: a server certificate renewed near the CA's
// end ends with it.
func TestRenewNeverOutlivesTheCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Ensure(dir, opts); err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, filepath.Join(dir, "ca.crt"))
	late := ca.NotAfter.Add(-100 * 24 * time.Hour)
	r, err := certs.Renew(dir, certs.RenewOptions{Now: func() time.Time { return late }})
	if err != nil {
		t.Fatal(err)
	}
	if !r.New.NotAfter.Equal(ca.NotAfter) {
		t.Errorf("renewed certificate valid until %v, past or before the CA's %v", r.New.NotAfter, ca.NotAfter)
	}
}

// TestRenewRefuses: each refusal names the fix and changes nothing.
func TestRenewRefuses(t *testing.T) {
	other := t.TempDir()
	if _, err := certs.Ensure(other, opts); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		prepare  func(t *testing.T, dir string)
		now      time.Time
		wantText []string
	}{
		{"no server certificate", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "server.crt"))
			os.Remove(filepath.Join(dir, "server.key"))
		}, time.Time{}, []string{"no server certificate to renew", "deviceupdate certs init --certs"}},
		{"CA key moved offline", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "ca.key"))
		}, time.Time{}, []string{"ca.key is missing", "put ca.key back", `have that CA ("deviceupdate CA contoso.com")`}},
		{"CA certificate missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "ca.crt"))
		}, time.Time{}, []string{"ca.crt is missing"}},
		{"CA key of another CA", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(other, "ca.key"), filepath.Join(dir, "ca.key"))
		}, time.Time{}, []string{"certificate does not match its key"}},
		{"server certificate from another CA", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(other, "server.crt"), filepath.Join(dir, "server.crt"))
			copyFile(t, filepath.Join(other, "server.key"), filepath.Join(dir, "server.key"))
		}, time.Time{}, []string{"was not issued by", "move server.crt and server.key aside"}},
		{"expired CA", func(t *testing.T, dir string) {}, time.Now().Add(11 * 365 * 24 * time.Hour), []string{"ca.crt expired on", "give phones and admin clients the new ca.crt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := certs.Ensure(dir, opts); err != nil {
				t.Fatal(err)
			}
			tt.prepare(t, dir)
			before := snapshot(t, dir)
			o := certs.RenewOptions{Domain: "fabrikam.com"}
			if !tt.now.IsZero() {
				o.Now = func() time.Time { return tt.now }
			}
			_, err := certs.Renew(dir, o)
			if err == nil {
				t.Fatal("Renew succeeded")
			}
			for _, want := range tt.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			checkUnchanged(t, dir, before)
		})
	}
}

// TestCheckNames: a certificate without the domain's discovery name is
// reported with the fix that fits the folder.
func TestCheckNames(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Ensure(dir, opts); err != nil {
		t.Fatal(err)
	}
	leaf := readCert(t, filepath.Join(dir, "server.crt"))
	if err := certs.CheckNames(leaf, dir, "contoso.com"); err != nil {
		t.Errorf("CheckNames for the certificate's own domain: %v", err)
	}
	if err := certs.CheckNames(leaf, dir, ""); err != nil {
		t.Errorf("CheckNames without a domain: %v", err)
	}
	err := certs.CheckNames(leaf, dir, "fabrikam.com")
	want := filepath.Join(dir, "server.crt") + " lacks UCUpdates-R2.fabrikam.com (it holds UCUpdates-R2, UCUpdates-R2.contoso.com, fe01, fe01.contoso.com); reissue it with: deviceupdate certs renew --domain fabrikam.com --certs " + dir
	if err == nil || err.Error() != want {
		t.Errorf("CheckNames = %v\nwant %s", err, want)
	}
	os.Remove(filepath.Join(dir, "ca.key")) // an operator's certificate: no CA here to renew it
	err = certs.CheckNames(leaf, dir, "fabrikam.com")
	if err == nil || !strings.Contains(err.Error(), `have the CA that issued it ("deviceupdate CA contoso.com") reissue it with UCUpdates-R2 and UCUpdates-R2.fabrikam.com`) {
		t.Errorf("CheckNames without ca.key = %v", err)
	}
}
