package catalog_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/catalog"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestCheckSigner: a chain Verify would refuse for its usage or its
// lifetime is refused before signing, naming the certificate at fault; a
// chain whose root is merely absent is not.
func TestCheckSigner(t *testing.T) {
	root := testpki.NewCA(t, "Polycom Root")
	good, _ := root.Issue(t, "Polycom Firmware Signing", testpki.Options{})
	web, _ := root.Issue(t, "UCUpdates-R2.contoso.com", testpki.Options{NoCodeSigning: true})
	expired, _ := root.Issue(t, "Old Signing", testpki.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	webCA := root.NewIntermediate(t, "Web Issuing CA", x509.ExtKeyUsageServerAuth)
	underWebCA, _ := webCA.Issue(t, "Signing under a web CA", testpki.Options{})
	tests := []struct {
		name  string
		chain []*x509.Certificate
		want  string // "" for nil
	}{
		{"code signing, with its root", []*x509.Certificate{good, root.Cert}, ""},
		{"code signing, root left out", []*x509.Certificate{good}, ""},
		{"server certificate", []*x509.Certificate{web, root.Cert}, "CN=UCUpdates-R2.contoso.com is not for code signing (its extended key usage is serverAuth)"},
		{"server certificate alone", []*x509.Certificate{web}, "its extended key usage is serverAuth"},
		{"expired", []*x509.Certificate{expired}, "CN=Old Signing expired on"},
		{"intermediate for web servers only", []*x509.Certificate{underWebCA, webCA.Cert, root.Cert}, "CN=Web Issuing CA is not for code signing (its extended key usage is serverAuth)"},
		{"no certificate", nil, "no signing certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := catalog.CheckSigner(tt.chain, time.Now())
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("CheckSigner = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestVerifyNamesTheUsage: a catalog signed with a certificate not for
// code signing is refused at import with the same reason pack gives.
func TestVerifyNamesTheUsage(t *testing.T) {
	root := testpki.NewCA(t, "Polycom Root")
	web, key := root.Issue(t, "UCUpdates-R2.contoso.com", testpki.Options{NoCodeSigning: true})
	ctl, err := catalog.Build([]catalog.Entry{{Name: "CPE.nbt"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	der, err := catalog.Sign(ctl, key, []*x509.Certificate{web})
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Verify(root.Pool())
	want := catalog.CheckSigner([]*x509.Certificate{web, root.Cert}, time.Now())
	if !errors.Is(err, catalog.ErrUntrusted) || want == nil || !strings.HasSuffix(err.Error(), ": "+want.Error()) {
		t.Errorf("Verify = %v, want ErrUntrusted with %q", err, want)
	}
}
