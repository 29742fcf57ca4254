// Package testpkg builds update packages for tests: descriptions, images
// and catalogs signed by a test publisher, put in a cabinet by gcab.
package testpkg

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/catalog"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// NeedTool returns the path of a third-party tool, skipping the test when
// it is missing outside CI (CI installs it, so there it is a failure).
func NeedTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s is not installed; .ci/run installs it", name)
		}
		tb.Skipf("%s is not installed (apt-get install %s)", name, name)
	}
	return p
}

// MakecatPath is where the tests look for a catalog made by Microsoft's
// makecat, relative to the repository's root: beside the repository, since
// its GPL-3.0 licence keeps it out (see its README there).
const MakecatPath = "../shared/testdata/cat/makecat-unsigned.cat"

// Makecat returns the makecat catalog at [MakecatPath], skipping the test
// when it is absent, as it is in a plain clone.
func Makecat(tb testing.TB) []byte {
	tb.Helper()
	data, err := ReadMakecat()
	if errors.Is(err, fs.ErrNotExist) {
		tb.Skipf("%s is absent: the makecat catalog is GPL-3.0, so it is kept beside the repository, not in it", MakecatPath)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// ReadMakecat reads the makecat catalog at [MakecatPath]; the error wraps
// fs.ErrNotExist when it is absent. It is the only test data read from
// outside the repository.
func ReadMakecat() ([]byte, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return os.ReadFile(filepath.Join(dir, filepath.FromSlash(MakecatPath)))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, errors.New("testpkg: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Signer signs catalogs.
type Signer func(ctl []byte) []byte

// NewSigner returns a Signer for a publisher whose certificate ca issues
// with the given options.
func NewSigner(tb testing.TB, ca *testpki.Authority, o testpki.Options) Signer {
	tb.Helper()
	cert, key := ca.Issue(tb, "Polycom Firmware Signing", o)
	return func(ctl []byte) []byte {
		der, err := catalog.Sign(ctl, key, []*x509.Certificate{cert, ca.Cert})
		if err != nil {
			tb.Fatal(err)
		}
		return der
	}
}

// Files is a package's content before it goes into a cabinet: relative
// path → bytes.
type Files map[string][]byte

// Description returns a CX600 CPE update description for version, with
// model replaced when not empty.
func Description(model, version string) []byte {
	if model == "" {
		model = "CX600"
	}
	return []byte(`<Update DeviceType="UCPhone" Brand="Polycom" Model="` + model + `" Revision="A" Locale="ENU" UpdateType="CPE" Version="` +
		version + `"><File Name="CPE.nbt"/></Update>`)
}

// AddUpdate adds dir/CPE.xml, dir/CPE.nbt and dir/CPE.cat signed by sign.
// The model is CX600 unless dir starts with another one ("CX700/").
func AddUpdate(tb testing.TB, files Files, dir, version string, image []byte, sign Signer) {
	tb.Helper()
	model := ""
	if m, _, ok := strings.Cut(dir, "/"); ok && strings.HasPrefix(m, "CX") {
		model = m
	}
	desc := Description(model, version)
	ctl, err := catalog.Build([]catalog.Entry{
		{Name: "CPE.xml", SHA256: sha256.Sum256(desc)},
		{Name: "CPE.nbt", SHA256: sha256.Sum256(image)},
	}, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	files[dir+"CPE.xml"] = desc
	files[dir+"CPE.nbt"] = image
	files[dir+"CPE.cat"] = sign(ctl)
}

// MakeCab puts files into an MSZIP cabinet with gcab and returns its path.
func MakeCab(tb testing.TB, files Files) string {
	tb.Helper()
	src := tb.TempDir()
	var names []string
	for name, data := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			tb.Fatal(err)
		}
		names = append(names, name)
	}
	out := filepath.Join(tb.TempDir(), "package.cab")
	cmd := exec.Command(NeedTool(tb, "gcab"), append([]string{"-c", "-z", out}, names...)...)
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("gcab: %v\n%s", err, b)
	}
	return out
}

// Image returns n bytes of firmware-like content: compressible, not trivially.
func Image(n int, seed byte) []byte {
	b := bytes.Repeat([]byte("firmware block "), n/15+1)[:n]
	for i := range b {
		b[i] ^= byte(i/4096) + seed
	}
	return b
}
