package doctor

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// now is the fixed moment of the table tests.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Keys are made once: RSA generation is slow under the race detector.
var (
	keysOnce                 sync.Once
	rsa2048, rsa2048b, rsa1k *rsa.PrivateKey
	ecP256, ecP256b, ecP384  *ecdsa.PrivateKey
	edKey                    ed25519.PrivateKey
)

func keys(tb testing.TB) {
	tb.Helper()
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil && err == nil {
				err = e
			}
		}
		var e error
		rsa2048, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		rsa2048b, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		rsa1k, e = rsa.GenerateKey(rand.Reader, 1024)
		must(e)
		ecP256, e = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(e)
		ecP256b, e = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(e)
		ecP384, e = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(e)
		_, edKey, e = ed25519.GenerateKey(rand.Reader)
		must(e)
		if err != nil {
			panic(err)
		}
	})
}

// authority is a test CA.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newAuthority(tb testing.TB, name string, key crypto.Signer, parent *authority, notAfter time.Time) *authority {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-365 * 24 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &authority{cert: c, key: key}
}

// leafOpts shape a server certificate; zero values are a good one.
type leafOpts struct {
	names     []string
	key       crypto.Signer
	sig       x509.SignatureAlgorithm
	notBefore time.Time
	notAfter  time.Time
	eku       []x509.ExtKeyUsage
}

func (a *authority) issue(tb testing.TB, o leafOpts) *x509.Certificate {
	tb.Helper()
	if o.names == nil {
		o.names = []string{"UCUpdates-R2", "UCUpdates-R2.contoso.test"}
	}
	if o.key == nil {
		o.key = rsa2048b
	}
	if o.notBefore.IsZero() {
		o.notBefore = now.Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = now.Add(365 * 24 * time.Hour)
	}
	if o.eku == nil {
		o.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: o.names[0]},
		NotBefore: o.notBefore, NotAfter: o.notAfter, DNSNames: o.names,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: o.eku, SignatureAlgorithm: o.sig,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, o.key.Public(), a.key)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// checkResult compares a result with the wanted status and phrases.
func checkResult(t *testing.T, got Result, wantCheck string, want Status, phrases ...string) {
	t.Helper()
	if got.Check != wantCheck || got.Status != want {
		t.Fatalf("got %q, want check %s status %s", got, wantCheck, want)
	}
	if (got.Status == Fail) != (got.Fix != "") {
		t.Errorf("fix %q for status %s: a failure, and only a failure, says what to do", got.Fix, got.Status)
	}
	for _, p := range phrases {
		if !strings.Contains(got.String(), p) {
			t.Errorf("%q lacks %q", got, p)
		}
	}
}

var own = CertInfo{Dir: "/etc/deviceupdate/certs", OwnCA: true}

func TestSANs(t *testing.T) {
	keys(t)
	ca := newAuthority(t, "CA", rsa2048, nil, now.Add(10*365*24*time.Hour))
	tests := []struct {
		name    string
		names   []string
		ci      CertInfo
		want    Status
		phrases []string
	}{
		{"both names", nil, own, OK, []string{"holds UCUpdates-R2 and UCUpdates-R2.contoso.test"}},
		{"names in another case", []string{"ucupdates-r2", "ucupdates-r2.CONTOSO.test"}, own, OK, nil},
		{"a wildcard covers the qualified name", []string{"UCUpdates-R2", "*.contoso.test"}, own, OK, nil},
		{
			"lacks the qualified name", []string{"UCUpdates-R2", "UCUpdates-R2.fabrikam.test"}, own, Fail,
			[]string{"lacks UCUpdates-R2.contoso.test", "holds UCUpdates-R2 and UCUpdates-R2.fabrikam.test", "run: deviceupdate certs init --domain contoso.test --certs /etc/deviceupdate/certs"},
		},
		{
			"lacks both, operator's CA", []string{"fe01.contoso.test"}, CertInfo{Dir: "certs"}, Fail,
			[]string{"lacks UCUpdates-R2 and UCUpdates-R2.contoso.test", "have your CA issue"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := ca.issue(t, leafOpts{names: tt.names})
			checkResult(t, SANs(leaf, "contoso.test", tt.ci), CheckSANs, tt.want, tt.phrases...)
		})
	}
}

func TestChain(t *testing.T) {
	keys(t)
	ca := newAuthority(t, "deviceupdate CA", rsa2048, nil, now.Add(10*365*24*time.Hour))
	other := newAuthority(t, "Other CA", ecP256b, nil, now.Add(10*365*24*time.Hour))
	inter := newAuthority(t, "Issuing CA", ecP256, ca, now.Add(5*365*24*time.Hour))
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	tests := []struct {
		name    string
		chain   func(t *testing.T) []*x509.Certificate
		roots   *x509.CertPool
		want    Status
		phrases []string
	}{
		{"signed by the CA", func(t *testing.T) []*x509.Certificate { return []*x509.Certificate{ca.issue(t, leafOpts{})} }, pool, OK,
			[]string{`chains to /etc/deviceupdate/certs/ca.crt ("deviceupdate CA")`}},
		{"through an intermediate the server sends", func(t *testing.T) []*x509.Certificate {
			return []*x509.Certificate{inter.issue(t, leafOpts{}), inter.cert}
		}, pool, OK, nil},
		{"expired, which cert-validity reports", func(t *testing.T) []*x509.Certificate {
			return []*x509.Certificate{ca.issue(t, leafOpts{notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-24 * time.Hour)})}
		}, pool, OK, nil},
		{"another CA", func(t *testing.T) []*x509.Certificate { return []*x509.Certificate{other.issue(t, leafOpts{})} }, pool, Fail,
			[]string{`issued by "Other CA"`, "does not chain to /etc/deviceupdate/certs/ca.crt", "point --certs"}},
		{"intermediate missing", func(t *testing.T) []*x509.Certificate { return []*x509.Certificate{inter.issue(t, leafOpts{})} }, pool, Fail,
			[]string{"does not chain"}},
		{"not for server authentication", func(t *testing.T) []*x509.Certificate {
			return []*x509.Certificate{ca.issue(t, leafOpts{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})}
		}, pool, Fail, []string{"does not verify against"}},
		{"no ca.crt", func(t *testing.T) []*x509.Certificate { return []*x509.Certificate{ca.issue(t, leafOpts{})} }, nil, Fail,
			[]string{"no CA certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, Chain(tt.chain(t), tt.roots, own, "contoso.test", now), CheckChain, tt.want, tt.phrases...)
		})
	}
}

func TestValidity(t *testing.T) {
	keys(t)
	ca := newAuthority(t, "CA", rsa2048, nil, now.Add(10*365*24*time.Hour))
	dying := newAuthority(t, "CA", rsa2048, nil, now.Add(10*24*time.Hour))
	day := 24 * time.Hour
	tests := []struct {
		name     string
		from, to time.Time
		ca       *authority
		want     Status
		phrases  []string
	}{
		{"a year left", now.Add(-day), now.Add(365 * day), ca, OK, []string{"valid until 2027-03-01 (365 days), the CA until 2036"}},
		{"31 days left", now.Add(-day), now.Add(31 * day), ca, OK, nil},
		{"29 days left", now.Add(-day), now.Add(29 * day), ca, Fail, []string{"expires on 2026-03-30, in 29 days", "certs init"}},
		{"expired", now.Add(-10 * day), now.Add(-day), ca, Fail, []string{"the server certificate expired on 2026-02-28"}},
		{"not yet valid", now.Add(day), now.Add(365 * day), ca, Fail, []string{"not valid before 2026-03-02", "clock"}},
		{"both expire soon: the server certificate is named", now.Add(-day), now.Add(5 * day), dying, Fail, []string{"server certificate expires"}},
		{"the CA itself expires soon", now.Add(-day), now.Add(365 * day), dying, Fail, []string{"the CA certificate expires on", "give phones the new ca.crt"}},
		{"no ca.crt to check", now.Add(-day), now.Add(365 * day), nil, OK, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := tt.ca
			if issuer == nil {
				issuer = ca
			}
			leaf := issuer.issue(t, leafOpts{notBefore: tt.from, notAfter: tt.to})
			var caCert *x509.Certificate
			if tt.ca != nil {
				caCert = tt.ca.cert
			}
			checkResult(t, Validity(leaf, caCert, own, "contoso.test", now), CheckValidity, tt.want, tt.phrases...)
		})
	}
}

func TestKey(t *testing.T) {
	keys(t)
	rsaCA := newAuthority(t, "RSA CA", rsa2048, nil, now.Add(10*365*24*time.Hour))
	ecCA := newAuthority(t, "EC CA", ecP256, nil, now.Add(10*365*24*time.Hour))
	tests := []struct {
		name    string
		ca      *authority
		o       leafOpts
		want    Status
		phrases []string
	}{
		{"RSA 2048, SHA-256", rsaCA, leafOpts{}, OK, []string{"RSA 2048 key, SHA256-RSA signature"}},
		{"ECDSA P-256, SHA-256", ecCA, leafOpts{key: ecP256b}, OK, []string{"ECDSA P-256 key, ECDSA-SHA256 signature"}},
		{"RSA 1024", rsaCA, leafOpts{key: rsa1k}, Fail, []string{"key is RSA 1024", "RSA 2048"}},
		{"ECDSA P-384", rsaCA, leafOpts{key: ecP384}, Fail, []string{"key is ECDSA P-384"}},
		{"Ed25519", rsaCA, leafOpts{key: edKey}, Fail, []string{"key is Ed25519"}},
		{"SHA-384", rsaCA, leafOpts{sig: x509.SHA384WithRSA}, Fail, []string{"signed with SHA384-RSA", "need SHA-256"}},
		{"RSA-PSS", rsaCA, leafOpts{sig: x509.SHA256WithRSAPSS}, Fail, []string{"signed with SHA256-RSAPSS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := tt.ca.issue(t, tt.o)
			checkResult(t, Key(leaf, own, "contoso.test"), CheckKey, tt.want, tt.phrases...)
		})
	}
}

func TestClock(t *testing.T) {
	tests := []struct {
		name          string
		local, server time.Time
		want          Status
		phrases       []string
	}{
		{"same", now, now, OK, []string{"within 1s"}},
		{"4 minutes ahead", now.Add(4 * time.Minute), now, OK, []string{"within 4m0s"}},
		{"6 minutes behind", now.Add(-6 * time.Minute), now, Fail, []string{"6m0s off the server's", "NTP"}},
		{"reset to 1970", time.Unix(0, 0), now, Fail, []string{"clock says 1970-01-01"}},
		{"no Date header", now, time.Time{}, Skip, []string{"no Date header"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, Clock(tt.local, tt.server), CheckClock, tt.want, tt.phrases...)
		})
	}
}

func TestDisk(t *testing.T) {
	tests := []struct {
		name        string
		free, total uint64
		err         error
		want        Status
		phrases     []string
	}{
		{"plenty", 77 << 30, 252 << 30, nil, OK, []string{"/srv/data has 77.0 GiB free of 252.0 GiB"}},
		{"just enough", MinFreeBytes, 2 << 30, nil, OK, nil},
		{"too little", 100 << 20, 252 << 30, nil, Fail, []string{"100.0 MiB free", "files clear"}},
		{"unreadable", 0, 0, errors.New("permission denied"), Fail, []string{"permission denied", "--data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, Disk("/srv/data", tt.free, tt.total, tt.err), CheckDisk, tt.want, tt.phrases...)
		})
	}
}

func TestResultString(t *testing.T) {
	for _, tt := range []struct {
		r    Result
		want string
	}{
		{ok(CheckDNS, "ucupdates-r2.contoso.com resolves to 127.0.0.1"), "ok    dns: ucupdates-r2.contoso.com resolves to 127.0.0.1"},
		{fail(CheckSANs, "run: x", "lacks y"), "FAIL  cert-sans: lacks y; run: x"},
		{skip(CheckDisk, "not checked"), "skip  disk: not checked"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("String = %q, want %q", got, tt.want)
		}
	}
	if n := Failed([]Result{ok("a", ""), fail("b", "x", ""), skip("c", ""), fail("d", "x", "")}); n != 2 {
		t.Errorf("Failed = %d, want 2", n)
	}
}
