package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/fsutil"
)

// Key types of a client certificate.
const (
	KeyRSA   = "rsa"   // RSA 2048, which every phone that does TLS accepts
	KeyECDSA = "ecdsa" // ECDSA P-256, smaller and faster where phones support it
)

// ClientValidity is how long a client certificate is valid (never past
// the CA, though).
const ClientValidity = 2 * 365 * 24 * time.Hour

// ErrExists means a file IssueClient would write is already there.
var ErrExists = errors.New("file exists")

// ClientOptions shape a client certificate.
type ClientOptions struct {
	KeyType string // KeyRSA (the default) or KeyECDSA
	Now     func() time.Time
}

// IssueClient issues, with the CA in caDir (ca.crt and ca.key), a
// certificate for TLS client authentication whose common name is name,
// and writes it and its key as PEM to <outDir>/<name>.crt (mode 0644) and
// <outDir>/<name>.key (mode 0600). It refuses, writing nothing, when
// either file exists (ErrExists). name must be safe as a file name; the
// caller validates it. It returns the two paths.
func IssueClient(caDir, outDir, name string, opts ClientOptions) (certPath, keyPath string, err error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if certPath, keyPath, err = newPairPaths(outDir, name); err != nil {
		return "", "", fmt.Errorf("issue client certificate: %w", err)
	}
	caCert, caKey, err := loadPair(filepath.Join(caDir, CACertFile), filepath.Join(caDir, CAKeyFile))
	if err != nil {
		return "", "", fmt.Errorf("issue client certificate: the service CA in %s: %w", caDir, err)
	}
	var key crypto.Signer
	keyUsage := x509.KeyUsageDigitalSignature
	switch opts.KeyType {
	case KeyRSA, "":
		key, err = rsa.GenerateKey(rand.Reader, keyBits)
		keyUsage |= x509.KeyUsageKeyEncipherment
	case KeyECDSA:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return "", "", fmt.Errorf("issue client certificate: key type %q: want %s or %s", opts.KeyType, KeyRSA, KeyECDSA)
	}
	if err != nil {
		return "", "", fmt.Errorf("issue client certificate: generate key: %w", err)
	}
	now := opts.Now()
	tmpl := &x509.Certificate{
		SerialNumber:   randomSerial(),
		Subject:        pkix.Name{CommonName: name, Organization: []string{"deviceupdate"}},
		NotBefore:      now.Add(-clockSkew),
		NotAfter:       notAfter(now.Add(ClientValidity), caCert),
		KeyUsage:       keyUsage,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		AuthorityKeyId: caCert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return "", "", fmt.Errorf("issue client certificate: %w", err)
	}
	if err := writeNewPair(certPath, keyPath, der, key); err != nil {
		return "", "", fmt.Errorf("issue client certificate: %w", err)
	}
	return certPath, keyPath, nil
}

// newPairPaths returns <outDir>/<name>.crt and <outDir>/<name>.key, and
// fails with ErrExists when either is there.
func newPairPaths(outDir, name string) (certPath, keyPath string, err error) {
	if name == "" || filepath.Base(name) != name || name == "." || name == ".." {
		return "", "", fmt.Errorf("name %q cannot be a file name", name)
	}
	certPath, keyPath = filepath.Join(outDir, name+".crt"), filepath.Join(outDir, name+".key")
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s: %w; remove it or choose another name or folder", p, ErrExists)
		}
	}
	return certPath, keyPath, nil
}

// writeNewPair creates outDir if need be and writes a certificate and its
// key as new files, the key first (mode 0600) so that a certificate is
// never left without it.
func writeNewPair(certPath, keyPath string, der []byte, key crypto.Signer) error {
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o755); err != nil {
		return err
	}
	if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(certPath, encodeCert(der), 0o644); err != nil {
		_ = os.Remove(keyPath)
		return err
	}
	return nil
}

// writeNew creates path with data and mode, failing with ErrExists when
// it exists, and syncs it and its folder.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("write %s: %w", path, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return fsutil.SyncDir(filepath.Dir(path))
}
