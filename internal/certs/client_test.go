package certs_test

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/certs"
)

func TestIssueClient(t *testing.T) {
	caDir := t.TempDir()
	if _, err := certs.Ensure(caDir, opts); err != nil {
		t.Fatal(err)
	}
	pool, err := certs.LoadCAPool(caDir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name, keyType string
		checkKey      func(any) bool
	}{
		{"phone1", "", func(k any) bool { r, ok := k.(*rsa.PublicKey); return ok && r.N.BitLen() == 2048 }},
		{"lab-phone.2@contoso.com", certs.KeyECDSA, func(k any) bool { _, ok := k.(*ecdsa.PublicKey); return ok }},
	}
	out := filepath.Join(t.TempDir(), "out")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPath, keyPath, err := certs.IssueClient(caDir, out, tt.name, certs.ClientOptions{KeyType: tt.keyType, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if certPath != filepath.Join(out, tt.name+".crt") || keyPath != filepath.Join(out, tt.name+".key") {
				t.Errorf("paths %s %s", certPath, keyPath)
			}
			if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key mode: %v %v", fi.Mode(), err)
			}
			pair, err := tls.LoadX509KeyPair(certPath, keyPath)
			if err != nil {
				t.Fatalf("the certificate and key are not a pair: %v", err)
			}
			cert := readCert(t, certPath)
			if cert.Subject.CommonName != tt.name || !tt.checkKey(cert.PublicKey) || pair.Leaf == nil {
				t.Errorf("certificate %v, key %T", cert.Subject, cert.PublicKey)
			}
			if d := cert.NotAfter.Sub(now); d < 729*24*time.Hour || d > 731*24*time.Hour {
				t.Errorf("valid for %v, want two years", d)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("does not verify for client authentication: %v", err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
				t.Error("verifies as a server certificate")
			}

			before := snapshot(t, out)
			if _, _, err := certs.IssueClient(caDir, out, tt.name, certs.ClientOptions{}); !errors.Is(err, certs.ErrExists) {
				t.Errorf("second issue = %v, want ErrExists", err)
			}
			if after := snapshot(t, out); len(after) != len(before) || string(after[tt.name+".key"]) != string(before[tt.name+".key"]) {
				t.Error("a refused issue changed the files")
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		empty := t.TempDir()
		for _, c := range []struct{ ca, name, keyType string }{
			{empty, "phone", ""},    // no CA
			{caDir, "../phone", ""}, // not a file name
			{caDir, "..", ""},       // not a file name
			{caDir, "phone", "dsa"}, // unknown key type
		} {
			if _, _, err := certs.IssueClient(c.ca, empty, c.name, certs.ClientOptions{KeyType: c.keyType}); err == nil {
				t.Errorf("IssueClient(%s, %q, %q) succeeded", c.ca, c.name, c.keyType)
			}
		}
		if files := snapshot(t, empty); len(files) != 0 {
			t.Errorf("refusals wrote %v", files)
		}
	})
}
