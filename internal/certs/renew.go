package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// RenewOptions shape a renewal.
type RenewOptions struct {
	// Domain, when set, moves the certificate's names to this domain
	// (UCUpdates-R2.<Domain>, <host>.<Domain>); empty keeps them.
	Domain string
	Now    func() time.Time
}

// Renewal is what Renew replaced, and with what.
type Renewal struct {
	Old, New          *x509.Certificate
	CertPath, KeyPath string
}

// Renew reissues the server certificate of the certs folder dir from the
// CA there (ca.crt and ca.key), with a new key, valid for ServerValidity
// (never past the CA): the same names and addresses as the current one,
// or its names moved to opts.Domain, and always the discovery names. The
// new server.crt and server.key replace the old ones together
// (fsutil.WriteFilesAtomic). It refuses, changing nothing, when there is
// no server certificate, when the CA key is missing or does not match
// ca.crt, when ca.crt did not issue the current certificate (clients
// trusting another CA would refuse the new one), or when the CA has
// expired.
func Renew(dir string, opts RenewOptions) (*Renewal, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := checkNames(opts.Domain, nil); err != nil {
		return nil, err
	}
	r := &Renewal{CertPath: filepath.Join(dir, ServerCertFile), KeyPath: filepath.Join(dir, ServerKeyFile)}
	old, err := ReadServerCert(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: there is no server certificate to renew; make one with: deviceupdate certs init --certs %s", r.CertPath, dir)
	}
	if err != nil {
		return nil, err
	}
	r.Old = old
	caCert, caKey := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	for _, p := range []string{caCert, caKey} {
		if !exists(p) {
			return nil, fmt.Errorf("%s is missing, and only the CA that issued %s can reissue it: put %s back (if it was moved offline), or have that CA (%q) issue a new server.crt and server.key",
				p, ServerCertFile, filepath.Base(p), old.Issuer.CommonName)
		}
	}
	ca, signer, err := loadPair(caCert, caKey)
	if err != nil {
		return nil, fmt.Errorf("the CA in %s: %w", dir, err)
	}
	if err := old.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("%s was not issued by %s (its issuer is %q, the CA's subject %q), so clients that trust its issuer would refuse a certificate from this CA: have %q reissue it, or move server.crt and server.key aside and run: deviceupdate certs init --certs %s",
			r.CertPath, caCert, old.Issuer.CommonName, ca.Subject.CommonName, old.Issuer.CommonName, dir)
	}
	now := opts.Now()
	if !now.Before(ca.NotAfter) {
		return nil, fmt.Errorf("%s expired on %s: make a new CA (move ca.crt, ca.key, server.crt and server.key out of %s and run: deviceupdate certs init --certs %s) and give phones and admin clients the new ca.crt",
			caCert, ca.NotAfter.UTC().Format(time.DateOnly), dir, dir)
	}
	r.New, err = issueServer(dir, ca, signer, renewedNames(old.DNSNames, opts.Domain), old.IPAddresses, now)
	if err != nil {
		return nil, err
	}
	return r, nil
}
