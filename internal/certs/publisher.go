package certs

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"
)

// PublisherValidity is how long a publisher certificate is valid. A
// catalog carries no timestamp, so its signature is checked at import and
// on the phone against the current time: packages stop importing, and
// phones stop accepting their files, once the signer has expired. Five
// years outlasts a firmware line.
const PublisherValidity = 5 * 365 * 24 * time.Hour

// Publisher is a publisher certificate IssuePublisher made.
type Publisher struct {
	Cert              *x509.Certificate
	CertPath, KeyPath string
}

// IssuePublisher makes a publisher of update packages for labs and
// in-house firmware: a self-signed certificate for code signing whose
// common name is name, valid for PublisherValidity, with a new RSA 2048
// key (what every phone verifies), written as PEM to <outDir>/<name>.crt
// (mode 0644) and <outDir>/<name>.key (mode 0600). `pack --cert --key`
// signs with the pair; a server imports what it signed once the
// certificate is in <certs>/trusted/, its own root. It refuses, writing
// nothing, when either file exists (ErrExists). name must be safe as a
// file name; the caller validates it.
func IssuePublisher(outDir, name string, now time.Time) (*Publisher, error) {
	certPath, keyPath, err := newPairPaths(outDir, name)
	if err != nil {
		return nil, fmt.Errorf("make publisher: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("make publisher: generate key: %w", err)
	}
	id := keyID(&key.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(PublisherValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		SubjectKeyId:          id,
		AuthorityKeyId:        id,
	}
	cert, err := create(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("make publisher: %w", err)
	}
	if err := writeNewPair(certPath, keyPath, cert.Raw, key); err != nil {
		return nil, fmt.Errorf("make publisher: %w", err)
	}
	return &Publisher{Cert: cert, CertPath: certPath, KeyPath: keyPath}, nil
}
