package certs_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
)

// publisher makes a publisher with IssuePublisher and returns its
// certificate and the path of its PEM file.
func publisher(t *testing.T, name string) (*x509.Certificate, string) {
	t.Helper()
	p, err := certs.IssuePublisher(t.TempDir(), name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p.Cert, p.CertPath
}

// TestLoadTrust: PEM and DER files of any name are trusted; hidden files
// and folders are passed over; a file that cannot be used is named, and
// the others still count.
func TestLoadTrust(t *testing.T) {
	openssl := testpkg.NeedTool(t, "openssl")
	pemCert, pemPath := publisher(t, "pem-publisher")
	derCert, derSource := publisher(t, "der-publisher")
	bundleA, pathA := publisher(t, "bundle-a")
	bundleB, pathB := publisher(t, "bundle-b")
	derFile := filepath.Join(t.TempDir(), "der.cer")
	if out, err := exec.Command(openssl, "x509", "-in", derSource, "-outform", "der", "-out", derFile).CombinedOutput(); err != nil {
		t.Fatalf("openssl x509 -outform der: %v\n%s", err, out)
	}
	read := func(p string) []byte {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not a key")})
	badBlock := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")})

	tests := []struct {
		name         string
		files        map[string][]byte // "" content: a folder
		wantCerts    []*x509.Certificate
		wantProblems map[string]string // file name → text of its problem
	}{
		{"PEM, any name", map[string][]byte{"publisher.pem": read(pemPath), "README": read(pemPath)},
			[]*x509.Certificate{pemCert, pemCert}, nil},
		{"DER .cer from openssl", map[string][]byte{"publisher.cer": read(derFile)}, []*x509.Certificate{derCert}, nil},
		{"DER named .crt", map[string][]byte{"publisher.crt": read(derFile)}, []*x509.Certificate{derCert}, nil},
		{"PEM bundle", map[string][]byte{"bundle.pem": append(append(read(pathA), keyPEM...), read(pathB)...)},
			[]*x509.Certificate{bundleA, bundleB}, nil},
		{"hidden files and folders", map[string][]byte{".staging.pem": []byte("junk"), "sub": nil, "ok.pem": read(pemPath)},
			[]*x509.Certificate{pemCert}, nil},
		{"junk beside a good file", map[string][]byte{"junk.cer": []byte("hello"), "ok.cer": read(derFile)},
			[]*x509.Certificate{derCert}, map[string]string{"junk.cer": "neither a PEM nor a DER certificate"}},
		{"only a key", map[string][]byte{"publisher.key": keyPEM}, nil,
			map[string]string{"publisher.key": "holds no certificate, only PEM PRIVATE KEY"}},
		{"a bad certificate among good ones", map[string][]byte{"mixed.pem": append(append(read(pathA), badBlock...), read(pathB)...)},
			[]*x509.Certificate{bundleA, bundleB}, map[string]string{"mixed.pem": "PEM block 2:"}},
		{"too large", map[string][]byte{"huge.pem": bytes.Repeat([]byte("A"), certs.MaxTrustFileSize+1)}, nil,
			map[string]string{"huge.pem": "more than the 1048576 bytes"}},
		{"empty", map[string][]byte{"empty.cer": {}}, nil, map[string]string{"empty.cer": "neither a PEM nor a DER certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tt.files {
				p := filepath.Join(dir, name)
				if data == nil {
					os.Mkdir(p, 0o755)
					os.WriteFile(filepath.Join(p, "inside.pem"), read(pathB), 0o644)
					continue
				}
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := certs.LoadTrust(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Certs) != len(tt.wantCerts) {
				t.Fatalf("%d certificates, want %d", len(got.Certs), len(tt.wantCerts))
			}
			for _, want := range tt.wantCerts {
				if _, err := want.Verify(x509.VerifyOptions{Roots: got.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
					t.Errorf("%s is not trusted: %v", want.Subject, err)
				}
			}
			if len(got.Problems) != len(tt.wantProblems) {
				t.Errorf("problems %v, want %d", got.Problems, len(tt.wantProblems))
			}
			for _, p := range got.Problems {
				want, ok := tt.wantProblems[filepath.Base(p.Path)]
				if !ok || !strings.Contains(p.Error(), want) || !strings.HasPrefix(p.Error(), filepath.Join(dir, filepath.Base(p.Path))+": ") {
					t.Errorf("problem %q, want one naming the file and %q", p, want)
				}
			}
		})
	}
}

func TestLoadTrustPaths(t *testing.T) {
	_, pemPath := publisher(t, "lab")
	if got, err := certs.LoadTrust(pemPath); err != nil || len(got.Certs) != 1 {
		t.Errorf("LoadTrust of one file = %v, %v; want its certificate", got, err)
	}
	if _, err := certs.LoadTrust(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadTrust of a missing folder = %v, want fs.ErrNotExist", err)
	}
	dir := t.TempDir()
	os.Symlink(filepath.Join(dir, "gone.pem"), filepath.Join(dir, "dangling.pem"))
	got, err := certs.LoadTrust(dir)
	if err != nil || len(got.Problems) != 1 || !strings.Contains(got.Problems[0].Error(), "dangling.pem: open") {
		t.Errorf("LoadTrust with a file that cannot be read = %v, %v; want it named", got.Problems, err)
	}
}

// TestIssuePublisher: a self-signed code-signing certificate whose key is
// private and whose files are never overwritten.
func TestIssuePublisher(t *testing.T) {
	now := time.Now()
	out := filepath.Join(t.TempDir(), "out")
	p, err := certs.IssuePublisher(out, "lab", now)
	if err != nil {
		t.Fatal(err)
	}
	if p.CertPath != filepath.Join(out, "lab.crt") || p.KeyPath != filepath.Join(out, "lab.key") {
		t.Errorf("paths %s, %s", p.CertPath, p.KeyPath)
	}
	c := readCert(t, p.CertPath)
	if c.Subject.CommonName != "lab" || c.IsCA || len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageCodeSigning {
		t.Errorf("certificate %s, CA %v, usages %v; want CN=lab, not a CA, code signing only", c.Subject, c.IsCA, c.ExtKeyUsage)
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil || !bytes.Equal(c.RawIssuer, c.RawSubject) {
		t.Errorf("not self-signed: %v", err)
	}
	if want := now.Add(certs.PublisherValidity); c.NotAfter.Sub(want).Abs() > time.Second {
		t.Errorf("valid until %v, want %v", c.NotAfter, want)
	}
	for path, mode := range map[string]fs.FileMode{p.CertPath: 0o644, p.KeyPath: 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, want mode %o", path, err, mode)
		}
	}
	before := snapshot(t, out)
	if _, err := certs.IssuePublisher(out, "lab", now); !errors.Is(err, certs.ErrExists) {
		t.Errorf("a second lab = %v, want ErrExists", err)
	}
	os.Remove(p.CertPath) // the key alone still blocks
	if _, err := certs.IssuePublisher(out, "lab", now); !errors.Is(err, certs.ErrExists) {
		t.Errorf("lab beside its key = %v, want ErrExists", err)
	}
	if after := snapshot(t, out); !bytes.Equal(after["lab.key"], before["lab.key"]) || len(after) != 1 {
		t.Error("a refused publisher changed the folder")
	}
}
