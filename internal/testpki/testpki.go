// Package testpki makes certificate authorities and certificates for
// tests: publishers that sign update packages, and the CAs they chain to.
package testpki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"testing"
	"time"
)

// Authority is a CA that issues test certificates.
type Authority struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Options shape an issued certificate. The zero value is a code-signing
// certificate valid from an hour ago for a year.
type Options struct {
	NotBefore, NotAfter time.Time
	NoCodeSigning       bool // leave out the code-signing extended key usage
}

func newKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	return n
}

// NewCA returns a self-signed CA named name.
func NewCA(tb testing.TB, name string) *Authority {
	tb.Helper()
	key := newKey(tb)
	tmpl := caTemplate(name, 10*365*24*time.Hour)
	return &Authority{Cert: create(tb, tmpl, tmpl, key, key), Key: key}
}

func caTemplate(name string, validity time.Duration) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// NewIntermediate returns a CA named name that a issues, limited to the
// extended key usages given (none: any).
func (a *Authority) NewIntermediate(tb testing.TB, name string, usages ...x509.ExtKeyUsage) *Authority {
	tb.Helper()
	key := newKey(tb)
	tmpl := caTemplate(name, 5*365*24*time.Hour)
	tmpl.ExtKeyUsage = usages
	return &Authority{Cert: create(tb, tmpl, a.Cert, key, a.Key), Key: key}
}

// create issues tmpl for key, signed by parentKey (parent's).
func create(tb testing.TB, tmpl, parent *x509.Certificate, key *rsa.PrivateKey, parentKey crypto.Signer) *x509.Certificate {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

// Issue returns a certificate for name signed by the CA, and its key.
func (a *Authority) Issue(tb testing.TB, name string, o Options) (*x509.Certificate, crypto.Signer) {
	tb.Helper()
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if !o.NoCodeSigning {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	return create(tb, tmpl, a.Cert, key, a.Key), key
}

// Pool returns a pool holding the CA's certificate.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}

// WriteCert writes certs as PEM to path.
func WriteCert(tb testing.TB, path string, certs ...*x509.Certificate) {
	tb.Helper()
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// WriteKey writes key as PKCS#8 PEM to path.
func WriteKey(tb testing.TB, path string, key crypto.Signer) {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}
