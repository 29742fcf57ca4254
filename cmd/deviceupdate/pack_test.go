package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// publisherFiles writes a publisher's certificate chain and key for pack
// and osslsigncode, and returns their paths.
func publisherFiles(t *testing.T, ca *testpki.Authority) (certPath, keyPath string) {
	t.Helper()
	dir := t.TempDir()
	cert, key := ca.Issue(t, "Polycom Firmware Signing", testpki.Options{})
	certPath, keyPath = filepath.Join(dir, "publisher.pem"), filepath.Join(dir, "publisher.key")
	testpki.WriteCert(t, certPath, cert, ca.Cert)
	testpki.WriteKey(t, keyPath, key)
	return certPath, keyPath
}

func pack(t *testing.T, out, cert, key string, extra []string, images ...string) e2e.Result {
	t.Helper()
	args := append([]string{"pack", "--brand", "Polycom", "--model", "CX600", "--revision", "A", "--cert", cert, "--key", key, "-o", out}, extra...)
	return e2e.Run(t, "", nil, append(args, images...)...)
}

// TestPackagesFromIndependentTools: packages made by pack, by gcab with a
// catalog signed by osslsigncode, and cabinets signed by osslsigncode
// import; untrusted and tampered ones are refused.
func TestPackagesFromIndependentTools(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	cert, key := publisherFiles(t, ca)
	stranger, strangerKey := publisherFiles(t, testpki.NewCA(t, "Not Trusted"))
	osslsign := testpkg.NeedTool(t, "osslsigncode")
	work := t.TempDir()
	image := filepath.Join(work, "CPE.nbt")
	os.WriteFile(image, testpkg.Image(3<<20, 9), 0o644)
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	sign := func(in, out, c, k string) {
		t.Helper()
		if b, err := exec.Command(osslsign, "sign", "-certs", c, "-key", k, "-h", "sha256", "-in", in, "-out", out).CombinedOutput(); err != nil {
			t.Fatalf("osslsigncode sign: %v\n%s", err, b)
		}
	}

	// 1. pack, with an Authenticode-signed cabinet: osslsigncode verifies it.
	packed := filepath.Join(work, "packed.cab")
	if res := pack(t, packed, cert, key, []string{"--version", "4.0.7577.4366", "--sign-cabinet"}, image); res.Code != 0 {
		t.Fatalf("pack: %s", res.Stderr)
	}
	caPEM := filepath.Join(work, "ca.pem")
	testpki.WriteCert(t, caPEM, ca.Cert)
	if b, err := exec.Command(osslsign, "verify", "-CAfile", caPEM, "-ignore-crl", "-in", packed).CombinedOutput(); err != nil {
		t.Errorf("osslsigncode does not verify pack's signature: %v\n%s", err, b)
	}

	// 2. An unsigned catalog from pack, signed by osslsigncode, in a gcab cabinet.
	unsignedPkg := filepath.Join(work, "unsigned.cab")
	if res := pack(t, unsignedPkg, "", "", []string{"--version", "4.0.7577.4400", "--unsigned-catalog"}, image); res.Code != 0 {
		t.Fatalf("pack --unsigned-catalog: %s", res.Stderr)
	}
	tree := filepath.Join(work, "tree")
	if b, err := exec.Command("cabextract", "-q", "-d", tree, unsignedPkg).CombinedOutput(); err != nil {
		t.Fatalf("cabextract: %v %s", err, b)
	}
	catDir := filepath.Join(tree, "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4400/CPE")
	sign(filepath.Join(catDir, "CPE.cat"), filepath.Join(catDir, "CPE.signed"), cert, key)
	os.Rename(filepath.Join(catDir, "CPE.signed"), filepath.Join(catDir, "CPE.cat"))
	files := testpkg.Files{}
	for _, name := range []string{"CPE.xml", "CPE.nbt", "CPE.cat"} {
		b, _ := os.ReadFile(filepath.Join(catDir, name))
		files["UCPhone/Polycom/CX600/A/ENU/4.0.7577.4400/CPE/"+name] = b
	}
	gcabPkg := testpkg.MakeCab(t, files)

	// 3. That gcab cabinet, Authenticode-signed by osslsigncode, trusted and not.
	signedGcab := filepath.Join(work, "signed-gcab.cab")
	sign(gcabPkg, signedGcab, cert, key)
	strangerGcab := filepath.Join(work, "stranger.cab")
	sign(gcabPkg, strangerGcab, stranger, strangerKey)
	tampered := filepath.Join(work, "tampered.cab")
	data, _ := os.ReadFile(signedGcab)
	data = bytes.Clone(data)
	data[len(data)/2] ^= 0x01 // in the compressed image data
	os.WriteFile(tampered, data, 0o644)

	tests := []struct {
		name     string
		path     string
		wantCode int
		wantText string
	}{
		{"pack, cabinet signed", packed, 0, "now the pending version"},
		{"gcab, catalog signed by osslsigncode", gcabPkg, 0, "now the pending version"},
		{"gcab cabinet signed by osslsigncode", signedGcab, 0, "already the pending version"},
		{"cabinet signed by an untrusted publisher", strangerGcab, 1, "not a trusted publisher"},
		{"signed cabinet changed after signing", tampered, 1, "Authenticode signature does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e2e.Run(t, "", env, "import", tt.path)
			if res.Code != tt.wantCode || !strings.Contains(res.Stdout+res.Stderr, tt.wantText) {
				t.Fatalf("import: exit %d, want %d and %q\nstdout: %s\nstderr: %s", res.Code, tt.wantCode, tt.wantText, res.Stdout, res.Stderr)
			}
		})
	}
}

func TestPackRefuses(t *testing.T) {
	ca := testpki.NewCA(t, "Polycom Root")
	cert, key := publisherFiles(t, ca)
	work := t.TempDir()
	image := filepath.Join(work, "CPE.nbt")
	os.WriteFile(image, []byte("image"), 0o644)
	out := filepath.Join(work, "out.cab")
	webCerts := t.TempDir() // a server certificate: serverAuth, not code signing
	if _, err := certs.Ensure(webCerts, certs.Options{Domain: "contoso.com"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantText string
	}{
		{"bad version", []string{"--version", "4.0", image}, 1, "--version: version \"4.0\""},
		{"bad model", []string{"--version", "1.2.3.4", "--model", "CX 600", image}, 1, `Model "CX 600"`},
		{"missing image", []string{"--version", "1.2.3.4", filepath.Join(work, "nope.nbt")}, 1, "nope.nbt"},
		{"no image", []string{"--version", "1.2.3.4"}, 2, "at least one IMAGE"},
		{"wrong key", []string{"--version", "1.2.3.4", "--key", cert, image}, 1, "load --cert"},
		{"certificate not for code signing", []string{"--version", "1.2.3.4", "--cert", filepath.Join(webCerts, "server.crt"), "--key", filepath.Join(webCerts, "server.key"), image}, 1,
			"server.crt: CN=UCUpdates-R2.contoso.com,O=deviceupdate is not for code signing (its extended key usage is serverAuth), so every import would refuse the package; make a publisher with: deviceupdate certs publisher NAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := pack(t, out, cert, key, tt.args)
			if res.Code != tt.wantCode || !strings.Contains(res.Stderr, tt.wantText) || strings.Count(res.Stderr, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want %d and %q", res.Code, res.Stderr, tt.wantCode, tt.wantText)
			}
			if entries, _ := os.ReadDir(work); len(entries) != 1 {
				t.Errorf("a refused pack left files: %v", entries)
			}
		})
	}
}
