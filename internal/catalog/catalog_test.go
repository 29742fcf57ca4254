package catalog_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/catalog"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestParseMakecat reads a catalog made by Microsoft's makecat, with SHA-1
// and SHA-256 members and a catalog-level extension block.
func TestParseMakecat(t *testing.T) {
	c, err := catalog.Parse(testpkg.Makecat(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Members) != 14 {
		t.Fatalf("%d members, want 14", len(c.Members))
	}
	wantPrefixes := []string{"07C7AB90", "0BA7A1E0", "1500FA50", "21119DB9", "298A5B53", "2D2C7B38", "3B8B000E",
		"6E0933E8", "802FC5BA", "8628450F", "99D91EB0", "C79A8085", "D22360CE", "FDBE6BF9"}
	sha256Tags := map[string]bool{"21119DB9": true, "298A5B53": true, "2D2C7B38": true, "3B8B000E": true, "6E0933E8": true, "D22360CE": true, "FDBE6BF9": true}
	for i, m := range c.Members {
		prefix := strings.ToUpper(hex.EncodeToString(m.Tag[:4]))
		if prefix != wantPrefixes[i] {
			t.Errorf("member %d tag %s…, want %s…", i, prefix, wantPrefixes[i])
		}
		wantLen := 20
		if sha256Tags[prefix] {
			wantLen = 32
		}
		if len(m.Tag) != wantLen {
			t.Errorf("member %d (%s…): tag of %d bytes, want %d", i, prefix, len(m.Tag), wantLen)
		}
	}
	// The SHA-1 of osslsigncode's unsigned.js, hashed whole (fixture README).
	sum, _ := hex.DecodeString("8628450f400345209379d8d8c8493f217aa9b61c")
	if _, ok := c.Lookup(sum); !ok {
		t.Error("Lookup does not find the SHA-1 member of unsigned.js")
	}
	// A SHA-256 member repeats its digest in its indirect data, with a File name.
	m := c.Members[3]
	if m.Hash != crypto.SHA256 || !bytes.Equal(m.Digest, m.Tag) {
		t.Errorf("member 3: hash %v, digest %x, tag %x", m.Hash, m.Digest, m.Tag)
	}
	if name, ok := m.Attribute("file"); !ok || name != "unsigned.mof" {
		t.Errorf("member 3 File attribute = %q, %v; want unsigned.mof", name, ok)
	}
	if _, err := c.Verify(x509.NewCertPool()); !errors.Is(err, catalog.ErrUnsigned) {
		t.Errorf("Verify of the unsigned fixture = %v, want ErrUnsigned", err)
	}
}

type pki struct {
	ca, other          *testpki.Authority
	dir                string
	good, expired, tls string // folders holding cert.pem and key.pem
}

func newPKI(t *testing.T) pki {
	t.Helper()
	p := pki{ca: testpki.NewCA(t, "Publisher Root"), other: testpki.NewCA(t, "Somebody Else"), dir: t.TempDir()}
	write := func(name string, a *testpki.Authority, o testpki.Options) string {
		d := filepath.Join(p.dir, name)
		os.Mkdir(d, 0o755)
		cert, key := a.Issue(t, "Polycom Firmware "+name, o)
		testpki.WriteCert(t, filepath.Join(d, "cert.pem"), cert, a.Cert)
		testpki.WriteKey(t, filepath.Join(d, "key.pem"), key)
		return d
	}
	p.good = write("good", p.ca, testpki.Options{})
	p.expired = write("expired", p.ca, testpki.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	p.tls = write("tls", p.ca, testpki.Options{NoCodeSigning: true})
	return p
}

// osslsign signs in with the certificate and key in dir.
func osslsign(t *testing.T, dir string, in []byte) []byte {
	t.Helper()
	tool := testpkg.NeedTool(t, "osslsigncode")
	src, dst := filepath.Join(t.TempDir(), "in.cat"), filepath.Join(t.TempDir(), "out.cat")
	os.WriteFile(src, in, 0o644)
	out, err := exec.Command(tool, "sign", "-certs", filepath.Join(dir, "cert.pem"), "-key", filepath.Join(dir, "key.pem"),
		"-h", "sha256", "-in", src, "-out", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("osslsigncode sign: %v\n%s", err, out)
	}
	data, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestVerifyCatalogSignedByOsslsigncode: an unsigned catalog, ours or one
// made by makecat, signed by an independent tool verifies against its
// publisher's CA and nothing else.
func TestVerifyCatalogSignedByOsslsigncode(t *testing.T) {
	p := newPKI(t)
	sources := []struct {
		name     string
		unsigned func(t testing.TB) []byte
	}{
		{"built", func(t testing.TB) []byte {
			der, err := catalog.Unsigned(oneMemberList(t))
			if err != nil {
				t.Fatal(err)
			}
			return der
		}},
		{"makecat", testpkg.Makecat},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			unsigned := src.unsigned(t)
			first, err := catalog.Parse(unsigned)
			if err != nil {
				t.Fatal(err)
			}
			signed := osslsign(t, p.good, unsigned)
			tamperedContent := bytes.Clone(signed)
			i := bytes.Index(tamperedContent, first.Members[0].Tag)
			tamperedContent[i] ^= 0xff

			tests := []struct {
				name  string
				data  []byte
				roots *x509.CertPool
				want  error
			}{
				{"trusted publisher", signed, p.ca.Pool(), nil},
				{"unknown publisher", signed, p.other.Pool(), catalog.ErrUntrusted},
				{"expired signing certificate", osslsign(t, p.expired, unsigned), p.ca.Pool(), catalog.ErrUntrusted},
				{"certificate not for code signing", osslsign(t, p.tls, unsigned), p.ca.Pool(), catalog.ErrUntrusted},
				{"member changed after signing", tamperedContent, p.ca.Pool(), catalog.ErrSignature},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c, err := catalog.Parse(tt.data)
					if err != nil {
						t.Fatal(err)
					}
					signer, err := c.Verify(tt.roots)
					if !errors.Is(err, tt.want) {
						t.Fatalf("Verify = %v, want %v", err, tt.want)
					}
					if tt.want == nil && !strings.HasPrefix(signer.Subject.CommonName, "Polycom Firmware") {
						t.Errorf("signer = %s", signer.Subject)
					}
				})
			}
		})
	}
}

// TestBuildAndSign: a catalog we build lists each file by its SHA-256,
// verifies here, and verifies with osslsigncode.
func TestBuildAndSign(t *testing.T) {
	p := newPKI(t)
	files := map[string][]byte{"CPE.nbt": bytes.Repeat([]byte{0xA5}, 100000), "CPE.xml": []byte(`<Update/>`)}
	var entries []catalog.Entry
	for name, data := range files {
		entries = append(entries, catalog.Entry{Name: name, SHA256: sha256.Sum256(data)})
	}
	ctl, err := catalog.Build(entries, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, key := p.ca.Issue(t, "Polycom Firmware", testpki.Options{})
	der, err := catalog.Sign(ctl, key, []*x509.Certificate{cert, p.ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(p.ca.Pool()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for name, data := range files {
		sum := sha256.Sum256(data)
		m, ok := c.Lookup(sum[:])
		if !ok {
			t.Fatalf("%s is not listed", name)
		}
		if got, _ := m.Attribute("File"); got != name || m.Hash != crypto.SHA256 {
			t.Errorf("%s: File attribute %q, hash %v", name, got, m.Hash)
		}
	}
	if _, ok := c.Lookup(make([]byte, 32)); ok {
		t.Error("Lookup found a hash that is not listed")
	}

	tool := testpkg.NeedTool(t, "osslsigncode")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pkg.cat"), der, 0o644)
	testpki.WriteCert(t, filepath.Join(dir, "ca.pem"), p.ca.Cert)
	out, err := exec.Command(tool, "verify", "-CAfile", filepath.Join(dir, "ca.pem"), "-ignore-crl", "-in", filepath.Join(dir, "pkg.cat")).CombinedOutput()
	if err != nil {
		t.Fatalf("osslsigncode verify rejects our catalog: %v\n%s", err, out)
	}
}

// oneMemberList returns a trust list made by Build of one member.
func oneMemberList(t testing.TB) []byte {
	t.Helper()
	ctl, err := catalog.Build([]catalog.Entry{{Name: "CPE.nbt", SHA256: sha256.Sum256([]byte("image"))}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ctl
}

// builtCatalog returns a catalog of one member made by Build and signed by
// a throwaway publisher.
func builtCatalog(t testing.TB) []byte {
	t.Helper()
	return testpkg.NewSigner(t, testpki.NewCA(t, "Publisher Root"), testpki.Options{})(oneMemberList(t))
}

func TestParseRejects(t *testing.T) {
	built := builtCatalog(t)
	tests := []struct {
		name string
		data func(t *testing.T) []byte
	}{
		{"empty", func(*testing.T) []byte { return nil }},
		{"not DER", func(*testing.T) []byte { return []byte("hello") }},
		{"truncated", func(*testing.T) []byte { return built[:len(built)/2] }},
		{"last byte cut", func(*testing.T) []byte { return built[:len(built)-1] }},
		{"truncated makecat catalog", func(t *testing.T) []byte {
			fixture := testpkg.Makecat(t)
			return fixture[:len(fixture)/2]
		}},
		{"too large", func(*testing.T) []byte { return make([]byte, catalog.MaxSize+1) }},
		{"bytes after the trust list", func(t *testing.T) []byte {
			data, err := os.ReadFile("testdata/fuzz/FuzzParse/ctl-trailing-bytes")
			if err != nil {
				t.Fatal(err)
			}
			return fuzzBytes(t, data)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := catalog.Parse(tt.data(t))
			if !errors.Is(err, catalog.ErrFormat) {
				t.Fatalf("Parse = %v, want ErrFormat", err)
			}
			// The message is what an admin reads: it says what is wrong,
			// never a Go nil.
			if strings.Contains(err.Error(), "<nil>") || strings.Contains(err.Error(), "%!") {
				t.Errorf("Parse error %q does not say what is wrong", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	if data, err := testpkg.ReadMakecat(); err == nil {
		f.Add(data)
	}
	f.Add(builtCatalog(f))
	f.Add([]byte{0x30, 0x03, 0x06, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := catalog.Parse(data)
		if err != nil {
			if !errors.Is(err, catalog.ErrFormat) {
				t.Fatalf("Parse error %v does not wrap ErrFormat", err)
			}
			return
		}
		for _, m := range c.Members {
			c.Lookup(m.Tag)
			for _, a := range m.Attributes {
				_ = a.Text()
			}
		}
		_, _ = c.Verify(x509.NewCertPool())
	})
}

// TestUnsignedCatalogSignedOutside: a catalog we leave unsigned is signed
// by an outside tool, and then verifies like one we sign.
func TestUnsignedCatalogSignedOutside(t *testing.T) {
	p := newPKI(t)
	sum := sha256.Sum256([]byte("image"))
	ctl, err := catalog.Build([]catalog.Entry{{Name: "CPE.nbt", SHA256: sum}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	unsigned, err := catalog.Unsigned(ctl)
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Parse(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(p.ca.Pool()); !errors.Is(err, catalog.ErrUnsigned) {
		t.Fatalf("Verify of the unsigned catalog = %v, want ErrUnsigned", err)
	}
	c, err = catalog.Parse(osslsign(t, p.good, unsigned))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(p.ca.Pool()); err != nil {
		t.Fatalf("Verify after osslsigncode signed it: %v", err)
	}
	if _, ok := c.Lookup(sum[:]); !ok {
		t.Error("the member was lost in signing")
	}
}

// fuzzBytes reads the one []byte value of a corpus file in Go's fuzz
// format ("go test fuzz v1" then []byte("...")).
func fuzzBytes(t *testing.T, file []byte) []byte {
	t.Helper()
	_, val, ok := strings.Cut(string(file), "\n")
	val = strings.TrimSpace(val)
	if !ok || !strings.HasPrefix(val, "[]byte(") || !strings.HasSuffix(val, ")") {
		t.Fatalf("not a []byte corpus file: %.40q", file)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(val, "[]byte("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}
