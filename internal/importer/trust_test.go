package importer_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestImportTrustsDERAndNamesUnusableFiles: a publisher exported as DER
// (openssl x509 -outform der, as Windows exports a .cer) is trusted; a file
// of trusted/ that is not a certificate is named in the log at each
// import, and in a refusal, where it may be the reason.
func TestImportTrustsDERAndNamesUnusableFiles(t *testing.T) {
	openssl := testpkg.NeedTool(t, "openssl")
	e := newEnv(t)
	core, logs := observer.New(zapcore.WarnLevel)
	e.im.Logger = zap.New(core)
	trusted := filepath.Join(e.certs, "trusted")
	pemFile := filepath.Join(trusted, "polycom.pem")
	if out, err := exec.Command(openssl, "x509", "-in", pemFile, "-outform", "der", "-out", filepath.Join(trusted, "polycom.cer")).CombinedOutput(); err != nil {
		t.Fatalf("openssl x509 -outform der: %v\n%s", err, out)
	}
	os.Remove(pemFile)
	junk := filepath.Join(trusted, "partner.cer")
	os.WriteFile(junk, []byte("not a certificate\n"), 0o644)

	good := testpkg.Files{}
	testpkg.AddUpdate(t, good, "", "4.0.7577.4366", testpkg.Image(100000, 4), e.sign)
	res, err := e.importFile(t, testpkg.MakeCab(t, good))
	if err != nil || len(res.Updates) != 1 || res.Updates[0].Status != deviceupdate.ImportAdded {
		t.Fatalf("import signed by the DER-trusted publisher = %+v, %v", res, err)
	}
	warned := logs.FilterMessage("a file in the trusted publishers folder is not usable").FilterField(zap.String("file", junk)).All()
	if len(warned) != 1 {
		t.Errorf("%d warnings naming %s, want 1; log: %v", len(warned), junk, logs.All())
	}

	stranger := testpkg.Files{}
	testpkg.AddUpdate(t, stranger, "", "4.0.7577.4400", testpkg.Image(100000, 5), testpkg.NewSigner(t, testpki.NewCA(t, "Partner"), testpki.Options{}))
	_, err = e.importFile(t, testpkg.MakeCab(t, stranger))
	if msg := deviceupdate.ErrorMessage(err); deviceupdate.ErrorCode(err) != deviceupdate.EFORBIDDEN ||
		!strings.Contains(msg, "catalog signer is not trusted") || !strings.Contains(msg, "skipped as unusable: "+junk+": neither a PEM nor a DER certificate") {
		t.Errorf("refusal = %v, want it to name %s", err, junk)
	}
}
