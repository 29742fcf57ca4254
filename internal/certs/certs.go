// Package certs manages the service's TLS material in the --certs folder:
// a private CA, the server certificate it signs, and the admin token.
//
// Phones find the service as UCUpdates-R2 (Lync), so the server
// certificate carries that name, UCUpdates-R2.<domain>, the host name and
// the listen addresses. An operator who brings their own server.crt and
// server.key keeps them: Ensure only fills in what is missing.
//
// Keys are RSA 2048 and certificates are signed with SHA-256, the widest
// choice that Lync Phone Edition and later phones accept.
package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/fsutil"
)

// The files Ensure manages inside the certs folder.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
	TokenFile      = "admin.token"
	TrustedDir     = "trusted" // certificates of trusted package publishers (LoadTrust)
)

// DiscoveryName is the host name phones look up to find the service (Lync).
const DiscoveryName = "UCUpdates-R2"

// Sentinel errors; check them with errors.Is.
var (
	// ErrMismatch means a certificate and the key beside it are not a pair.
	ErrMismatch = errors.New("certificate does not match its key")
	// ErrIncomplete means one file of a pair is present without the other.
	ErrIncomplete = errors.New("certificate material is incomplete")
	// ErrBadPEM means a file does not hold the PEM block expected.
	ErrBadPEM = errors.New("not a PEM certificate or key")
)

// ServerValidity is how long a server certificate is valid, whether
// Ensure or Renew issues it (never past the CA, though): 27 months, the
// 825 days of the CA/Browser Forum's limit, the most phones accept.
const ServerValidity = 825 * 24 * time.Hour

const (
	keyBits    = 2048
	caValidity = 10 * 365 * 24 * time.Hour
	clockSkew  = time.Hour
)

// Options says which names the server certificate must carry.
type Options struct {
	Domain string   // DNS domain: adds UCUpdates-R2.<Domain> and <host>.<Domain>
	Hosts  []string // further DNS names, such as the host name
	IPs    []net.IP // the listen addresses
	Now    func() time.Time
}

// checkNames refuses a domain or host name that is not a DNS name, which
// no client could verify the certificate for.
func checkNames(domain string, hosts []string) error {
	if domain != "" {
		if err := deviceupdate.ValidateDNSName(domain); err != nil {
			return fmt.Errorf("domain %q is not a DNS domain: %s", domain, deviceupdate.ErrorMessage(err))
		}
	}
	for _, h := range hosts {
		if err := deviceupdate.ValidateDNSName(h); err != nil {
			return fmt.Errorf("host name %q is not a DNS name: %s", h, deviceupdate.ErrorMessage(err))
		}
	}
	return nil
}

// ServerNames returns the discovery names a server certificate must hold
// for the domain: UCUpdates-R2 and, when domain is set, UCUpdates-R2.domain.
func ServerNames(domain string) []string {
	names := []string{DiscoveryName}
	if domain != "" {
		names = append(names, DiscoveryName+"."+domain)
	}
	return names
}

// Check validates the material present in dir without writing anything:
// a server pair that belongs together, or else a usable CA to issue one,
// and a non-empty token. What is missing is not an error: Ensure makes it.
func Check(dir string) error {
	path := func(name string) string { return filepath.Join(dir, name) }
	haveServer, err := pairState(path(ServerCertFile), path(ServerKeyFile))
	if err != nil {
		return err
	}
	if haveServer {
		if _, _, err := loadPair(path(ServerCertFile), path(ServerKeyFile)); err != nil {
			return err
		}
	} else {
		haveCA, err := pairState(path(CACertFile), path(CAKeyFile))
		if err != nil {
			return fmt.Errorf("cannot issue a server certificate: %w", err)
		}
		if haveCA {
			if _, _, err := loadPair(path(CACertFile), path(CAKeyFile)); err != nil {
				return err
			}
		}
	}
	if _, err := ReadToken(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Ensure creates in dir whatever of the CA, the server certificate, the
// admin token and the trusted/ folder is missing, after checking what is
// there with Check; a refused folder is left as it was. It returns the
// paths of the files it created. A server pair that is present is used as
// is and the CA is then left alone.
func Ensure(dir string, opts Options) (created []string, err error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := checkNames(opts.Domain, opts.Hosts); err != nil {
		return nil, err
	}
	if err := Check(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create certs folder: %w", err)
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	if !exists(path(ServerCertFile)) {
		caCert, caKey, made, err := ensureCA(dir, opts)
		if err != nil {
			return nil, err
		}
		created = append(created, made...)
		names := dedupeFold(append(ServerNames(opts.Domain), opts.Hosts...))
		if _, err := issueServer(dir, caCert, caKey, names, opts.IPs, opts.Now()); err != nil {
			return created, err
		}
		created = append(created, path(ServerCertFile), path(ServerKeyFile))
	}
	if !exists(path(TokenFile)) {
		if err := writeToken(path(TokenFile)); err != nil {
			return created, err
		}
		created = append(created, path(TokenFile))
	}
	if err := os.MkdirAll(path(TrustedDir), 0o755); err != nil {
		return created, fmt.Errorf("create trusted folder: %w", err)
	}
	return created, nil
}

// pairState reports whether both files of a pair exist, and fails with
// ErrIncomplete when only one does.
func pairState(certPath, keyPath string) (bool, error) {
	c, k := exists(certPath), exists(keyPath)
	if c != k {
		have, missing := certPath, keyPath
		if k {
			have, missing = keyPath, certPath
		}
		return false, fmt.Errorf("%w: %s is present but %s is missing; restore it, or remove %s to have a new pair made",
			ErrIncomplete, have, missing, filepath.Base(have))
	}
	return c, nil
}

func ensureCA(dir string, opts Options) (*x509.Certificate, crypto.Signer, []string, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if exists(certPath) { // Check made sure the pair is whole and matches
		cert, key, err := loadPair(certPath, keyPath)
		return cert, key, nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := opts.Now()
	name := "deviceupdate CA"
	if opts.Domain != "" {
		name += " " + opts.Domain
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"deviceupdate"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	cert, err := create(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	// The key first: a ca.crt without its key would block the next start.
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, nil, err
	}
	if err := writeCert(certPath, cert.Raw); err != nil {
		_ = os.Remove(keyPath)
		return nil, nil, nil, err
	}
	return cert, key, []string{certPath, keyPath}, nil
}

// issueServer issues, with the CA, a server certificate for the names and
// addresses and a new key, and writes them to dir as server.crt and
// server.key together (fsutil.WriteFilesAtomic, the key first).
func issueServer(dir string, ca *x509.Certificate, caKey crypto.Signer, dnsNames []string, ips []net.IP, now time.Time) (*x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   randomSerial(),
		Subject:        pkix.Name{CommonName: commonName(dnsNames), Organization: []string{"deviceupdate"}},
		NotBefore:      now.Add(-clockSkew),
		NotAfter:       notAfter(now.Add(ServerValidity), ca),
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:       dnsNames,
		IPAddresses:    dedupeIPs(ips),
		SubjectKeyId:   keyID(&key.PublicKey),
		AuthorityKeyId: ca.SubjectKeyId,
	}
	cert, err := create(tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create server certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	err = fsutil.WriteFilesAtomic(
		fsutil.File{Path: filepath.Join(dir, ServerKeyFile), Data: keyPEM, Mode: 0o600},
		fsutil.File{Path: filepath.Join(dir, ServerCertFile), Data: encodeCert(cert.Raw), Mode: 0o644},
	)
	return cert, err
}

// create issues tmpl for pub, signed by parentKey (parent's), and parses
// the result.
func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// commonName returns the name a server certificate is known by: its
// UCUpdates-R2.<domain> name, else its first name.
func commonName(dnsNames []string) string {
	for _, n := range dnsNames {
		if hasPrefixFold(n, DiscoveryName+".") {
			return n
		}
	}
	if len(dnsNames) == 0 {
		return DiscoveryName
	}
	return dnsNames[0]
}

// notAfter returns end, or the CA's end when that comes first: a
// certificate is worth nothing past its issuer.
func notAfter(end time.Time, ca *x509.Certificate) time.Time {
	if end.After(ca.NotAfter) {
		return ca.NotAfter
	}
	return end
}

// LoadServer loads the server certificate and key for a TLS listener.
func LoadServer(dir string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile)
	if _, _, err := loadPair(certPath, keyPath); err != nil {
		return tls.Certificate{}, err
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load %s: %w", certPath, err)
	}
	return pair, nil
}

// LoadCAPool returns a pool holding ca.crt, for clients of the service.
func LoadCAPool(dir string) (*x509.CertPool, error) {
	path := filepath.Join(dir, CACertFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("load CA certificate %s: %w", path, ErrBadPEM)
	}
	return pool, nil
}

// ReadToken returns the admin token, without surrounding white space.
func ReadToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("read admin token %s: the file is empty; delete it to have a new token made", path)
	}
	return tok, nil
}

func writeToken(path string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("generate admin token: %w", err)
	}
	return fsutil.WriteFileAtomic(path, []byte(base64.RawURLEncoding.EncodeToString(b)+"\n"), 0o600)
}

// loadPair reads a PEM certificate and its PEM private key and checks that
// they belong together.
func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	cert, err := readCertFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("load key: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", keyPath, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s and %s: %w; put the matching key beside the certificate, or remove both to have a new pair made",
			certPath, keyPath, ErrMismatch)
	}
	return cert, key, nil
}

// readCertFile reads the first certificate of a PEM file.
func readCertFile(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("load %s: %w: want a CERTIFICATE block", path, ErrBadPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return cert, nil
}

// ReadServerCert returns the server certificate in dir (server.crt); an
// error wrapping fs.ErrNotExist when there is none.
func ReadServerCert(dir string) (*x509.Certificate, error) {
	return readCertFile(filepath.Join(dir, ServerCertFile))
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrBadPEM)
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%w: unexpected block %q", ErrBadPEM, block.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: key of type %T cannot sign", ErrBadPEM, key)
	}
	return signer, nil
}

func writeKey(path string, key crypto.Signer) error {
	data, err := encodeKey(key)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, data, 0o600)
}

func writeCert(path string, der []byte) error {
	return fsutil.WriteFileAtomic(path, encodeCert(der), 0o644)
}

// encodeKey returns key as a PEM PKCS #8 block.
func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // crypto/rand never fails on Linux
	}
	return n.Add(n, big.NewInt(1))
}

// keyID is the SHA-1 of the public key, as RFC 5280 4.2.1.2 suggests.
func keyID(pub *rsa.PublicKey) []byte {
	h := sha1.Sum(x509.MarshalPKCS1PublicKey(pub))
	return h[:]
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

func dedupeFold(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		k := strings.ToLower(n)
		if n == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, n)
	}
	return out
}

func dedupeIPs(ips []net.IP) []net.IP {
	var out []net.IP
	seen := map[string]bool{}
	for _, ip := range ips {
		if ip == nil || seen[ip.String()] {
			continue
		}
		seen[ip.String()] = true
		out = append(out, ip)
	}
	return out
}
