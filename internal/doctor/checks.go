package doctor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/certs"
)

// Thresholds of the checks.
const (
	// ExpiryMargin is how long before its end a certificate is reported,
	// so that it is renewed before phones refuse it.
	ExpiryMargin = 30 * 24 * time.Hour
	// MaxClockSkew is the largest difference allowed between this host's
	// clock and the server's.
	MaxClockSkew = 5 * time.Minute
	// MinFreeBytes is the least free space the data folder's file system
	// must have: an import spools, stages and moves a package.
	MinFreeBytes = 1 << 30
	// MinRSABits is the smallest RSA key accepted.
	MinRSABits = 2048
)

// saneSince is a date every working clock is past: a clock before it was
// reset (no battery, no NTP), and every certificate looks not yet valid.
var saneSince = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// CertInfo says where the certificate material lives, for the fixes.
type CertInfo struct {
	Dir   string // the --certs folder
	OwnCA bool   // the folder holds ca.key: the service issues its own certificates
}

// reissue says how to get a new server certificate.
func (ci CertInfo) reissue(domain string) string {
	if !ci.OwnCA {
		return fmt.Sprintf("have your CA issue a new server certificate with the DNS names %s, and put it in %s as server.crt and server.key",
			joinAnd(certs.ServerNames(domain)), ci.Dir)
	}
	return fmt.Sprintf("move server.crt and server.key out of %s and run: deviceupdate certs init --domain %s --certs %s (or restart serve --domain %s), which issues a new one",
		ci.Dir, domain, ci.Dir, domain)
}

// SANs checks that the served certificate holds the discovery names
// UCUpdates-R2 and UCUpdates-R2.<domain>, as phones verify them.
func SANs(leaf *x509.Certificate, domain string, ci CertInfo) Result {
	var missing []string
	for _, name := range certs.ServerNames(domain) {
		if leaf.VerifyHostname(name) != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fail(CheckSANs, ci.reissue(domain), "the server certificate lacks %s (it holds %s)", joinAnd(missing), joinAnd(leaf.DNSNames))
	}
	return ok(CheckSANs, "the server certificate holds %s", joinAnd(certs.ServerNames(domain)))
}

// Chain checks that the served chain leads to a root in roots (ca.crt),
// for server authentication. It verifies at a moment within the leaf's
// lifetime: an expired certificate is Validity's to report.
func Chain(chain []*x509.Certificate, roots *x509.CertPool, ci CertInfo, domain string, now time.Time) Result {
	caFile := filepath.Join(ci.Dir, certs.CACertFile)
	if roots == nil {
		return fail(CheckChain, fmt.Sprintf("point --certs at the server's certs folder, which holds %s", certs.CACertFile),
			"no CA certificate to check against (%s)", caFile)
	}
	leaf := chain[0]
	at := now
	if at.Before(leaf.NotBefore) || at.After(leaf.NotAfter) {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknown):
		return fail(CheckChain, fmt.Sprintf("point --certs at the server's certs folder, or %s", ci.reissue(domain)),
			"the server certificate (issued by %q) does not chain to %s", leaf.Issuer.CommonName, caFile)
	case err != nil:
		return fail(CheckChain, ci.reissue(domain), "the server certificate does not verify against %s: %v", caFile, err)
	}
	return ok(CheckChain, "the server certificate chains to %s (%q)", caFile, leaf.Issuer.CommonName)
}

// Validity checks that the server certificate, and the CA when given, are
// valid now and for ExpiryMargin more.
func Validity(leaf, ca *x509.Certificate, ci CertInfo, domain string, now time.Time) Result {
	if r, bad := lifetime("server certificate", leaf, now, ci.reissue(domain)); bad {
		return r
	}
	msg := fmt.Sprintf("the server certificate is valid until %s (%s)", leaf.NotAfter.UTC().Format(time.DateOnly), days(leaf.NotAfter.Sub(now)))
	if ca != nil {
		fix := fmt.Sprintf("make a new CA: move ca.crt, ca.key, server.crt and server.key out of %s, run: deviceupdate certs init --domain %s --certs %s, and give phones the new ca.crt",
			ci.Dir, domain, ci.Dir)
		if r, bad := lifetime("CA certificate", ca, now, fix); bad {
			return r
		}
		msg += fmt.Sprintf(", the CA until %s", ca.NotAfter.UTC().Format(time.DateOnly))
	}
	return ok(CheckValidity, "%s", msg)
}

// lifetime reports a certificate that is not yet valid, expired, or
// expiring within ExpiryMargin.
func lifetime(what string, c *x509.Certificate, now time.Time, fix string) (Result, bool) {
	switch {
	case now.Before(c.NotBefore):
		return fail(CheckValidity, "check this host's clock and the server's (NTP); "+fix,
			"the %s is not valid before %s, and the clock says %s", what, c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)), true
	case !now.Before(c.NotAfter):
		return fail(CheckValidity, fix, "the %s expired on %s", what, c.NotAfter.UTC().Format(time.RFC3339)), true
	case c.NotAfter.Sub(now) < ExpiryMargin:
		return fail(CheckValidity, fix, "the %s expires on %s, in %s", what, c.NotAfter.UTC().Format(time.DateOnly), days(c.NotAfter.Sub(now))), true
	}
	return Result{}, false
}

func days(d time.Duration) string {
	n := int(math.Floor(d.Hours() / 24))
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// Key checks the server certificate's key and signature: RSA of at least
// MinRSABits or ECDSA P-256, signed with SHA-256, which Lync Phone Edition
// and later phones support.
func Key(leaf *x509.Certificate, ci CertInfo, domain string) Result {
	var key string
	good := false
	switch k := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		key = fmt.Sprintf("RSA %d", k.N.BitLen())
		good = k.N.BitLen() >= MinRSABits
	case *ecdsa.PublicKey:
		key = "ECDSA " + k.Curve.Params().Name
		good = k.Curve == elliptic.P256()
	default:
		key = leaf.PublicKeyAlgorithm.String()
	}
	sig := leaf.SignatureAlgorithm
	fix := "reissue it with an RSA 2048 (or larger) or ECDSA P-256 key, signed with SHA-256; " + ci.reissue(domain)
	if !good {
		return fail(CheckKey, fix, "the server certificate's key is %s; phones need RSA %d or more, or ECDSA P-256", key, MinRSABits)
	}
	if sig != x509.SHA256WithRSA && sig != x509.ECDSAWithSHA256 {
		return fail(CheckKey, fix, "the server certificate is signed with %s; phones need SHA-256 (SHA256-RSA or ECDSA-SHA256)", sig)
	}
	return ok(CheckKey, "%s key, %s signature", key, sig)
}

// Clock checks this host's clock: past a sane date, and within
// MaxClockSkew of the server's (its HTTP Date header; zero when unknown).
func Clock(local, server time.Time) Result {
	const fix = "set the clock with NTP (timedatectl set-ntp true; chronyc tracking shows it): phones check certificates against their NTP-set clocks too"
	if local.Before(saneSince) {
		return fail(CheckClock, fix, "this host's clock says %s", local.UTC().Format(time.RFC3339))
	}
	if server.IsZero() {
		return skip(CheckClock, "the server sent no Date header to compare with; this host's clock says %s", local.UTC().Format(time.RFC3339))
	}
	skew := local.Sub(server)
	if skew.Abs() > MaxClockSkew {
		return fail(CheckClock, fix, "this host's clock is %s off the server's (%s here, %s there)",
			skew.Abs().Round(time.Second), local.UTC().Format(time.RFC3339), server.UTC().Format(time.RFC3339))
	}
	return ok(CheckClock, "this host's clock is within %s of the server's", max(skew.Abs().Round(time.Second), time.Second))
}

// Disk checks the free space of the data folder's file system.
func Disk(dir string, free, total uint64, err error) Result {
	if err != nil {
		return fail(CheckDisk, "point --data at the server's data folder (serve's --data)", "cannot read the free space of %s: %v", dir, err)
	}
	if free < MinFreeBytes {
		return fail(CheckDisk, "free space there; deviceupdate files clear deletes the stored versions no rule references",
			"%s has %s free of %s; imports need at least %s", dir, bytesString(free), bytesString(total), bytesString(MinFreeBytes))
	}
	return ok(CheckDisk, "%s has %s free of %s", dir, bytesString(free), bytesString(total))
}

func bytesString(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
