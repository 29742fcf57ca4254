package updatepkg_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/catalog"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/updatepkg"
)

func stage(t *testing.T, cabPath string, trust *x509.CertPool) (*updatepkg.Package, string, error) {
	t.Helper()
	f, err := os.Open(cabPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	dir := filepath.Join(t.TempDir(), "staging")
	pkg, err := updatepkg.Stage(f, fi.Size(), updatepkg.Options{Trust: trust, StagingDir: dir})
	return pkg, dir, err
}

func TestStageValidPackage(t *testing.T) {
	ca := testpki.NewCA(t, "Polycom Root")
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	image := bytes.Repeat([]byte("firmware"), 100000)
	files := testpkg.Files{"updateInfo.xml": []byte("<Updates><Updates/></Updates>")}
	testpkg.AddUpdate(t, files, "CX600/", "4.0.7577.4366", image, sign)
	testpkg.AddUpdate(t, files, "CX700/", "4.0.7577.4400", []byte("another image"), sign)

	pkg, _, err := stage(t, testpkg.MakeCab(t, files), ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Updates) != 2 {
		t.Fatalf("%d updates, want 2", len(pkg.Updates))
	}
	s := pkg.Updates[0]
	if s.Update.Version.String() != "4.0.7577.4366" || s.Update.Model != "CX600" {
		t.Errorf("first update = %+v", s.Update)
	}
	if u := pkg.Updates[1].Update; u.Model != "CX700" || u.Version.String() != "4.0.7577.4400" {
		t.Errorf("second update = %+v", u)
	}
	sum := sha256.Sum256(image)
	if len(s.Images) != 1 || s.Images[0].Name != "CPE.nbt" || s.Images[0].SHA256 != hex.EncodeToString(sum[:]) || s.Images[0].Size != int64(len(image)) {
		t.Errorf("images = %+v", s.Images)
	}
	if !strings.Contains(s.Signer, "Polycom Firmware Signing") {
		t.Errorf("signer = %q", s.Signer)
	}
	for _, name := range []string{"CPE.nbt", "CPE.cat", "CPE.xml"} {
		data, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if want := files["CX600/"+name]; !bytes.Equal(data, want) {
			t.Errorf("staged %s differs from the package's", name)
		}
	}
}

func TestStageRefusesBadPackages(t *testing.T) {
	ca := testpki.NewCA(t, "Polycom Root")
	other := testpki.NewCA(t, "Somebody Else")
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	image := bytes.Repeat([]byte{0xA5, 0x5A}, 50000)
	good := func(t *testing.T) testpkg.Files {
		f := testpkg.Files{}
		testpkg.AddUpdate(t, f, "", "4.0.7577.4366", image, sign)
		return f
	}
	tests := []struct {
		name     string
		files    func(t *testing.T) testpkg.Files
		trust    *x509.CertPool
		wantCode string
		wantText string
	}{
		{"untrusted publisher", good, other.Pool(), deviceupdate.EFORBIDDEN, "CPE.cat: catalog signer is not trusted"},
		{"expired signing certificate", func(t *testing.T) testpkg.Files {
			f := testpkg.Files{}
			testpkg.AddUpdate(t, f, "", "4.0.7577.4366", image, testpkg.NewSigner(t, ca, testpki.Options{NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}))
			return f
		}, ca.Pool(), deviceupdate.EFORBIDDEN, "expired"},
		{"image changed after signing", func(t *testing.T) testpkg.Files {
			f := good(t)
			f["CPE.nbt"] = append(bytes.Clone(image), 0)
			return f
		}, ca.Pool(), deviceupdate.EFORBIDDEN, "CPE.nbt: its hash is not in CPE.cat"},
		{"description changed after signing", func(t *testing.T) testpkg.Files {
			f := good(t)
			f["CPE.xml"] = bytes.Replace(f["CPE.xml"], []byte("4366"), []byte("4367"), 1)
			return f
		}, ca.Pool(), deviceupdate.EFORBIDDEN, "CPE.xml: its hash is not in CPE.cat"},
		{"catalog signature damaged", func(t *testing.T) testpkg.Files {
			f := good(t)
			cat := bytes.Clone(f["CPE.cat"])
			cat[len(cat)-10] ^= 0xff // inside the signature value
			f["CPE.cat"] = cat
			return f
		}, ca.Pool(), deviceupdate.EFORBIDDEN, "CPE.cat"},
		{"unsigned catalog", func(t *testing.T) testpkg.Files {
			f := good(t)
			ctl, err := catalog.Build([]catalog.Entry{
				{Name: "CPE.xml", SHA256: sha256.Sum256(f["CPE.xml"])},
				{Name: "CPE.nbt", SHA256: sha256.Sum256(f["CPE.nbt"])},
			}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if f["CPE.cat"], err = catalog.Unsigned(ctl); err != nil {
				t.Fatal(err)
			}
			return f
		}, ca.Pool(), deviceupdate.EFORBIDDEN, "catalog is not signed"},
		{"unsigned makecat catalog", func(t *testing.T) testpkg.Files {
			f := good(t)
			f["CPE.cat"] = testpkg.Makecat(t)
			return f
		}, ca.Pool(), deviceupdate.EFORBIDDEN, "catalog is not signed"},
		{"catalog missing", func(t *testing.T) testpkg.Files {
			f := good(t)
			delete(f, "CPE.cat")
			return f
		}, ca.Pool(), deviceupdate.EINVALID, "lacks the catalog CPE.cat"},
		{"image missing", func(t *testing.T) testpkg.Files {
			f := good(t)
			delete(f, "CPE.nbt")
			return f
		}, ca.Pool(), deviceupdate.EINVALID, "CPE.xml names CPE.nbt, which the package lacks"},
		{"catalog is not a catalog", func(t *testing.T) testpkg.Files {
			f := good(t)
			f["CPE.cat"] = []byte("not DER")
			return f
		}, ca.Pool(), deviceupdate.EINVALID, "CPE.cat: not a valid security catalog"},
		{"invalid version", func(t *testing.T) testpkg.Files {
			f := testpkg.Files{}
			testpkg.AddUpdate(t, f, "", "4.0.7577", image, sign)
			return f
		}, ca.Pool(), deviceupdate.EINVALID, `CPE.xml: version "4.0.7577"`},
		{"no description", func(t *testing.T) testpkg.Files {
			return testpkg.Files{"CPE.nbt": image}
		}, ca.Pool(), deviceupdate.EINVALID, "holds no update description"},
		{"two updates for one version", func(t *testing.T) testpkg.Files {
			f := good(t)
			testpkg.AddUpdate(t, f, "again/", "4.0.7577.4366", image, sign)
			return f
		}, ca.Pool(), deviceupdate.EINVALID, "two updates for UCPhone/Polycom/CX600/A/ENU/CPE version 4.0.7577.4366"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir, err := stage(t, testpkg.MakeCab(t, tt.files(t)), tt.trust)
			if err == nil {
				t.Fatal("Stage accepted the package")
			}
			if deviceupdate.ErrorCode(err) != tt.wantCode || !strings.Contains(deviceupdate.ErrorMessage(err), tt.wantText) {
				t.Fatalf("error %s %q, want %s containing %q", deviceupdate.ErrorCode(err), deviceupdate.ErrorMessage(err), tt.wantCode, tt.wantText)
			}
			var written []string
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					written = append(written, p)
				}
				return nil
			})
			// Only an image's own content can show it changed: it must be
			// copied first. Every other reason is found before.
			if tt.name != "image changed after signing" && len(written) > 0 {
				t.Errorf("the refused package was written to staging: %v", written)
			}
		})
	}
	t.Run("truncated cabinet", func(t *testing.T) {
		p := testpkg.MakeCab(t, good(t))
		data, _ := os.ReadFile(p)
		os.WriteFile(p, data[:len(data)*2/3], 0o644)
		_, _, err := stage(t, p, ca.Pool())
		if deviceupdate.ErrorCode(err) != deviceupdate.EINVALID || !strings.Contains(err.Error(), "cabinet") {
			t.Fatalf("error = %v", err)
		}
	})
}

// TestStageFindsTheCabinet: a package may be a program with the cabinet
// inside, as a vendor's self-extracting UCUpdates.exe is; it must hold
// exactly one cabinet.
func TestStageFindsTheCabinet(t *testing.T) {
	ca := testpki.NewCA(t, "Polycom Root")
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", testpkg.Image(100000, 1), testpkg.NewSigner(t, ca, testpki.Options{}))
	pkg, err := os.ReadFile(testpkg.MakeCab(t, files))
	if err != nil {
		t.Fatal(err)
	}
	stub := append([]byte("MZ\x90\x00 a program's code and data, then MSCF as a string; "), testpkg.Image(3000, 9)...)
	tests := []struct {
		name     string
		data     []byte
		wantText string // "" for success
	}{
		{"cabinet inside a program", bytes.Join([][]byte{stub, pkg, stub}, nil), ""},
		{"two cabinets", bytes.Join([][]byte{pkg, stub, pkg}, nil),
			"the file holds 2 cabinets, at offsets 0, " + fmt.Sprint(len(pkg)+len(stub)) + "; an update package is one cabinet"},
		{"no cabinet", stub, "no cabinet found in the file; an update package is a cabinet, or a program with one inside"},
		{"a damaged cabinet inside a program", append(bytes.Clone(stub), pkg[:len(pkg)/2]...), "no cabinet found in the file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "UCUpdates.exe")
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			staged, _, err := stage(t, path, ca.Pool())
			if tt.wantText == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(staged.Updates) != 1 || staged.Updates[0].Update.Version.String() != "4.0.7577.4366" {
					t.Errorf("updates = %+v", staged.Updates)
				}
				return
			}
			if deviceupdate.ErrorCode(err) != deviceupdate.EINVALID || !strings.Contains(deviceupdate.ErrorMessage(err), tt.wantText) {
				t.Fatalf("error %s %q, want EINVALID containing %q", deviceupdate.ErrorCode(err), deviceupdate.ErrorMessage(err), tt.wantText)
			}
		})
	}
}

// TestStageSharedImage: two descriptions in one folder may name the same
// image; each update gets it.
func TestStageSharedImage(t *testing.T) {
	ca := testpki.NewCA(t, "Polycom Root")
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	image := testpkg.Image(50000, 3)
	files := testpkg.Files{"CPE.nbt": image}
	for base, version := range map[string]string{"a": "4.0.7577.4366", "b": "4.0.7577.4400"} {
		desc := testpkg.Description("", version)
		ctl, err := catalog.Build([]catalog.Entry{
			{Name: base + ".xml", SHA256: sha256.Sum256(desc)},
			{Name: "CPE.nbt", SHA256: sha256.Sum256(image)},
		}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		files[base+".xml"], files[base+".cat"] = desc, sign(ctl)
	}
	pkg, _, err := stage(t, testpkg.MakeCab(t, files), ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Updates) != 2 {
		t.Fatalf("%d updates, want 2", len(pkg.Updates))
	}
	for _, s := range pkg.Updates {
		if got, err := os.ReadFile(filepath.Join(s.Dir, "CPE.nbt")); err != nil || !bytes.Equal(got, image) {
			t.Errorf("update %s: its image %v", s.Update.Version, err)
		}
	}
}
