package updatepkg_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sassoftware/relic/v7/lib/certloader"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/cab"
	"github.com/deviceupdate/deviceupdate/internal/catalog"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/updatepkg"
)

// publisher returns a code-signing certificate of ca with its key, as
// pack loads them.
func publisher(t *testing.T, ca *testpki.Authority) *certloader.Certificate {
	t.Helper()
	cert, key := ca.Issue(t, "Polycom Firmware Signing", testpki.Options{})
	return &certloader.Certificate{Leaf: cert, Certificates: []*x509.Certificate{cert, ca.Cert}, PrivateKey: key}
}

// writeImages writes the images to files and returns their paths.
func writeImages(t *testing.T, images map[string][]byte) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for _, name := range slices.Sorted(maps.Keys(images)) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, images[name], 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// TestBuildStagesBack: what Build writes, Stage reads back as the same
// update, with the images' bytes, signed by the publisher.
func TestBuildStagesBack(t *testing.T) {
	ca := testpki.NewCA(t, "Polycom Root")
	signer := publisher(t, ca)
	key := deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}
	tests := []struct {
		name   string
		key    deviceupdate.RuleKey
		images map[string][]byte
		opts   updatepkg.BuildOptions
		comp   cab.Compression
	}{
		{"signed catalog, MSZIP", key, map[string][]byte{"CPE.nbt": testpkg.Image(3<<20, 1)}, updatepkg.BuildOptions{}, cab.CompressMSZIP},
		{"stored", key, map[string][]byte{"CPE.nbt": testpkg.Image(100000, 2)}, updatepkg.BuildOptions{Stored: true}, cab.CompressNone},
		{"cabinet signed too", key, map[string][]byte{"CPE.nbt": testpkg.Image(200000, 3)}, updatepkg.BuildOptions{SignCabinet: true}, cab.CompressMSZIP},
		{"two images, another identity",
			deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Contoso-Phones", Model: "X_1.5", Revision: "rev.2", Locale: "DEU", UpdateType: "UCD"},
			map[string][]byte{"a.nbt": testpkg.Image(70000, 4), "b.nbt": {}}, updatepkg.BuildOptions{}, cab.CompressMSZIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.RuleKey, o.Version, o.Signer = tt.key, deviceupdate.MustParseVersion("4.0.7577.4366"), signer
			o.Images = writeImages(t, tt.images)
			out := filepath.Join(t.TempDir(), "UCUpdates.cab")
			built, err := updatepkg.WriteFile(out, o)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(data); built.SHA256 != hex.EncodeToString(sum[:]) || built.Size != int64(len(data)) {
				t.Errorf("Built says %d bytes, sha256 %s; the file has %d, %x", built.Size, built.SHA256, len(data), sum)
			}
			if c := openCab(t, data).Folders[0].Compression; c != tt.comp {
				t.Errorf("compression %v, want %v", c, tt.comp)
			}

			pkg, _, err := stage(t, out, ca.Pool())
			if err != nil {
				t.Fatal(err)
			}
			if len(pkg.Updates) != 1 {
				t.Fatalf("%d updates, want 1", len(pkg.Updates))
			}
			s := pkg.Updates[0]
			names := slices.Sorted(maps.Keys(tt.images))
			if s.Update.RuleKey != tt.key || s.Update.Version != o.Version || !slices.Equal(s.Update.Files, names) {
				t.Errorf("staged %+v, want %v %v %v", s.Update, tt.key, o.Version, names)
			}
			if s.Update.RuleKey != built.Update.RuleKey || !slices.Equal(s.Update.Files, built.Update.Files) {
				t.Errorf("Built says %+v, Stage read %+v", built.Update, s.Update)
			}
			for i, f := range s.Images {
				sum := sha256.Sum256(tt.images[names[i]])
				if f.Name != names[i] || f.Size != int64(len(tt.images[names[i]])) || f.SHA256 != hex.EncodeToString(sum[:]) {
					t.Errorf("image %d = %+v, want %s of %d bytes", i, f, names[i], len(tt.images[names[i]]))
				}
			}
			if s.Signer != built.Signer || !strings.Contains(s.Signer, "Polycom Firmware Signing") {
				t.Errorf("Stage read the signer %q; Build says %q", s.Signer, built.Signer)
			}
			if signed := pkg.CabinetSigner != ""; signed != o.SignCabinet {
				t.Errorf("cabinet signer %q, want a signed cabinet: %v", pkg.CabinetSigner, o.SignCabinet)
			}
			wantCat := strings.Join([]string{tt.key.DeviceType, tt.key.Brand, tt.key.Model, tt.key.Revision, tt.key.Locale, "4.0.7577.4366", tt.key.UpdateType, tt.key.UpdateType + ".cat"}, "/")
			if built.Catalog != wantCat {
				t.Errorf("catalog at %s, want %s", built.Catalog, wantCat)
			}
		})
	}
}

// TestBuildUnsignedCatalog: an unsigned catalog lists the description and
// the images, and the package is refused until it is signed.
func TestBuildUnsignedCatalog(t *testing.T) {
	image := testpkg.Image(50000, 5)
	o := updatepkg.BuildOptions{
		RuleKey: deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"},
		Version: deviceupdate.MustParseVersion("4.0.7577.4400"),
		Images:  writeImages(t, map[string][]byte{"CPE.nbt": image}),
	}
	out := filepath.Join(t.TempDir(), "unsigned.cab")
	built, err := updatepkg.WriteFile(out, o)
	if err != nil {
		t.Fatal(err)
	}
	if built.Signer != "" {
		t.Errorf("signer %q, want none", built.Signer)
	}
	data, _ := os.ReadFile(out)
	members := readMembers(t, openCab(t, data))
	dir := "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4400/CPE/"
	u, err := updatepkg.ParseDescription(members[dir+"CPE.xml"])
	if err != nil {
		t.Fatal(err)
	}
	if u.RuleKey != o.RuleKey || u.Version != o.Version || !slices.Equal(u.Files, []string{"CPE.nbt"}) {
		t.Errorf("description reads back as %+v", u)
	}
	if !bytes.Equal(members[dir+"CPE.nbt"], image) {
		t.Error("the image differs from the file packed")
	}
	cat, err := catalog.Parse(members[built.Catalog])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"CPE.xml", "CPE.nbt"} {
		sum := sha256.Sum256(members[dir+name])
		if _, ok := cat.Lookup(sum[:]); !ok {
			t.Errorf("the catalog does not list %s", name)
		}
	}
	_, _, err = stage(t, out, x509.NewCertPool())
	if deviceupdate.ErrorCode(err) != deviceupdate.EFORBIDDEN {
		t.Errorf("staging the unsigned package: %v, want a refusal", err)
	}
}

// TestBuildRefuses: a bad identity, a missing image or a cabinet to sign
// without a signer write nothing.
func TestBuildRefuses(t *testing.T) {
	key := deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}
	v := deviceupdate.MustParseVersion("1.2.3.4")
	image := writeImages(t, map[string][]byte{"CPE.nbt": []byte("image")})
	bad := key
	bad.Model = "CX 600"
	tests := []struct {
		name     string
		opts     updatepkg.BuildOptions
		wantCode string
		wantText string
	}{
		{"bad model", updatepkg.BuildOptions{RuleKey: bad, Version: v, Images: image}, deviceupdate.EINVALID, `Model "CX 600"`},
		{"no image", updatepkg.BuildOptions{RuleKey: key, Version: v}, deviceupdate.EINVALID, "names no <File>"},
		{"bad image name", updatepkg.BuildOptions{RuleKey: key, Version: v, Images: []string{"/tmp/CPE image.nbt"}}, deviceupdate.EINVALID, "CPE image.nbt"},
		{"missing image", updatepkg.BuildOptions{RuleKey: key, Version: v, Images: []string{filepath.Join(t.TempDir(), "nope.nbt")}}, deviceupdate.EINTERNAL, "nope.nbt"},
		{"cabinet to sign, no signer", updatepkg.BuildOptions{RuleKey: key, Version: v, Images: image, SignCabinet: true}, deviceupdate.EINVALID, "needs a signed catalog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := updatepkg.WriteFile(filepath.Join(dir, "out.cab"), tt.opts)
			if err == nil || deviceupdate.ErrorCode(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("error %v (%s), want %s and %q", err, deviceupdate.ErrorCode(err), tt.wantCode, tt.wantText)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused build left %v", entries)
			}
		})
	}
}

func openCab(t *testing.T, data []byte) *cab.Reader {
	t.Helper()
	r, err := cab.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readMembers returns every member of r by its path with / separators.
func readMembers(t *testing.T, r *cab.Reader) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := r.Walk(func(f *cab.File, rd io.Reader) error {
		b, err := io.ReadAll(rd)
		out[strings.ReplaceAll(f.Name, `\`, "/")] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
