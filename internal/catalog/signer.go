package catalog

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SignerUsage is the extended key usage a catalog signer's chain must
// allow: Verify requires it at import and on the phone.
const SignerUsage = x509.ExtKeyUsageCodeSigning

// CheckSigner checks, before anything is signed with it, what a signer's
// chain (leaf first, as pack loads it) tells of Verify's rule on its own:
// the chain must allow SignerUsage and be valid at now, as catalogs carry
// no timestamp. Its top certificate stands in for the root; whether a
// server trusts that root is for the import to say. It returns nil when
// the chain passes or when only the trust in its top is in question.
func CheckSigner(chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no signing certificate")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{SignerUsage},
	})
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && (invalid.Reason == x509.IncompatibleUsage || invalid.Reason == x509.Expired) {
		return signerError(chain, err, now)
	}
	return nil
}

// signerError says why a chain (leaf first) failed verification for
// SignerUsage, naming the certificate at fault and its usages when the
// usage is the reason; other errors are returned as they are.
func signerError(chain []*x509.Certificate, err error, now time.Time) error {
	var invalid x509.CertificateInvalidError
	if !errors.As(err, &invalid) {
		return err
	}
	switch invalid.Reason {
	case x509.IncompatibleUsage:
		for _, c := range chain {
			if !allowsSigning(c) {
				return fmt.Errorf("%s is not for code signing (its extended key usage is %s)", c.Subject, usageNames(c))
			}
		}
		return fmt.Errorf("%s: its chain does not allow code signing", chain[0].Subject)
	case x509.Expired:
		c := invalid.Cert
		if c == nil {
			c = chain[0]
		}
		if now.Before(c.NotBefore) {
			return fmt.Errorf("%s is not valid before %s", c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
		}
		return fmt.Errorf("%s expired on %s", c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return err
}

// allowsSigning reports whether a certificate's extended key usage allows
// code signing, as crypto/x509 reads it: no extended key usage at all
// allows any.
func allowsSigning(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == SignerUsage || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

var usageName = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageIPSECEndSystem:  "ipsecEndSystem",
	x509.ExtKeyUsageIPSECTunnel:     "ipsecTunnel",
	x509.ExtKeyUsageIPSECUser:       "ipsecUser",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

// usageNames lists a certificate's extended key usages as OpenSSL names
// them, unknown ones by object identifier.
func usageNames(c *x509.Certificate) string {
	var names []string
	for _, u := range c.ExtKeyUsage {
		if n, ok := usageName[u]; ok {
			names = append(names, n)
		} else {
			names = append(names, fmt.Sprintf("usage %d", u))
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		names = append(names, oid.String())
	}
	return strings.Join(names, ", ")
}
