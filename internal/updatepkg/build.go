package updatepkg

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sassoftware/relic/v7/lib/authenticode"
	"github.com/sassoftware/relic/v7/lib/binpatch"
	"github.com/sassoftware/relic/v7/lib/cabfile"
	"github.com/sassoftware/relic/v7/lib/certloader"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/cab"
	"github.com/deviceupdate/deviceupdate/internal/catalog"
)

// BuildOptions say what package Build writes: one update, its images and
// who signs it.
type BuildOptions struct {
	RuleKey deviceupdate.RuleKey
	Version deviceupdate.Version
	// Images are the paths of the image files, stored under their base
	// names in the order given.
	Images []string
	// Signer signs the catalog (and, with SignCabinet, the cabinet); nil
	// leaves the catalog unsigned, for an outside signer (signtool,
	// osslsigncode, an HSM) to sign before the package is packed by hand.
	// Build does not judge the certificate: catalog.CheckSigner does.
	Signer *certloader.Certificate
	// SignCabinet also signs the cabinet itself (Authenticode).
	SignCabinet bool
	// Stored stores the files uncompressed instead of MSZIP.
	Stored bool
	// Now dates the catalog and the members; zero means time.Now().
	Now time.Time
	// TempDir holds the unsigned cabinet while SignCabinet signs it;
	// empty means os.TempDir().
	TempDir string
}

// Update returns the update o describes, its files named after the
// images, and an EINVALID *deviceupdate.Error when it is not valid
// (deviceupdate.Update.Validate): a bad identity or image name.
func (o BuildOptions) Update() (deviceupdate.Update, error) {
	u := deviceupdate.Update{RuleKey: o.RuleKey, Version: o.Version}
	for _, img := range o.Images {
		u.Files = append(u.Files, filepath.Base(img))
	}
	return u, u.Validate()
}

// Built is what Build wrote.
type Built struct {
	Update deviceupdate.Update
	// Catalog is the catalog's path in the cabinet, such as
	// UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.cat.
	Catalog string
	// Signer is the catalog signer's subject; empty when the catalog is
	// unsigned.
	Signer string
	// Size and SHA256 (lowercase hex) are of the whole package; WriteFile
	// sets them, Build leaves them zero.
	Size   int64
	SHA256 string
}

// Build writes an update package (SPEC §3) to w, from its current
// position: the update's description <UpdateType>.xml, the images, and a
// security catalog <UpdateType>.cat listing the SHA-256 of each, in one
// cabinet laid out as the update store is
// (DeviceType/Brand/Model/Revision/Locale/Version/UpdateType/), with the
// informative updateInfo.xml at its root. What Stage reads, Build writes.
// A bad identity or image name is an EINVALID *deviceupdate.Error.
func Build(w io.WriteSeeker, o BuildOptions) (*Built, error) {
	u, err := o.Update()
	if err != nil {
		return nil, err
	}
	if o.SignCabinet && o.Signer == nil {
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "signing the cabinet needs a signed catalog")
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}

	// The description, then the catalog over it and the images.
	desc := formatDescription(u)
	dir := u.Folder() + "/"
	entries := []catalog.Entry{{Name: u.UpdateType + ".xml", SHA256: sha256.Sum256(desc)}}
	members := []cab.WriterFile{
		inMemory("updateInfo.xml", formatUpdateInfo(u), now),
		inMemory(dir+u.UpdateType+".xml", desc, now),
	}
	for i, img := range o.Images {
		sum, size, err := hashFile(img)
		if err != nil {
			return nil, err
		}
		entries = append(entries, catalog.Entry{Name: u.Files[i], SHA256: sum})
		members = append(members, cab.WriterFile{Name: dir + u.Files[i], Size: size, Modified: now,
			Open: func() (io.ReadCloser, error) { return os.Open(img) }})
	}
	ctl, err := catalog.Build(entries, now)
	if err != nil {
		return nil, err
	}
	var cat []byte
	if o.Signer != nil {
		cat, err = catalog.Sign(ctl, o.Signer.Signer(), o.Signer.Chain())
	} else {
		cat, err = catalog.Unsigned(ctl)
	}
	if err != nil {
		return nil, err
	}
	members = append(members, inMemory(dir+u.UpdateType+".cat", cat, now))

	built := &Built{Update: u, Catalog: dir + u.UpdateType + ".cat"}
	if o.Signer != nil {
		built.Signer = o.Signer.Leaf.Subject.String()
	}
	comp := cab.CompressMSZIP
	if o.Stored {
		comp = cab.CompressNone
	}
	if !o.SignCabinet {
		return built, cab.Write(w, members, comp)
	}
	return built, writeSigned(w, members, comp, o.Signer, o.TempDir)
}

// WriteFile builds the package at name: it writes it beside name, syncs
// it and renames it into place, so that a failure leaves no partial
// package, and returns what it wrote with its size and SHA-256.
func WriteFile(name string, o BuildOptions) (*Built, error) {
	if o.TempDir == "" {
		o.TempDir = filepath.Dir(name)
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o644); err != nil {
		return nil, err
	}
	built, err := Build(tmp, o)
	if err != nil {
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	h := sha256.New()
	if built.Size, err = io.Copy(h, tmp); err != nil {
		return nil, err
	}
	built.SHA256 = hex.EncodeToString(h.Sum(nil))
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	return built, os.Rename(tmp.Name(), name)
}

// writeSigned writes the cabinet of members to a file in tempDir, signs
// it (Authenticode) and copies it, signed, to w.
func writeSigned(w io.WriteSeeker, members []cab.WriterFile, comp cab.Compression, signer *certloader.Certificate, tempDir string) error {
	tmp, err := os.CreateTemp(tempDir, ".unsigned-*.cab")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := cab.Write(tmp, members, comp); err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	digest, err := cabfile.Digest(tmp, crypto.SHA256)
	if err != nil {
		return fmt.Errorf("sign cabinet: %w", err)
	}
	// No timestamp server is asked, so there is nothing to cancel.
	patch, _, err := authenticode.SignCabImprint(context.Background(), digest, signer, &authenticode.OpusParams{Description: "deviceupdate package"})
	if err != nil {
		return fmt.Errorf("sign cabinet: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := writePatched(w, tmp, patch); err != nil {
		return fmt.Errorf("sign cabinet: %w", err)
	}
	return nil
}

// writePatched copies r to w with p applied: each patch replaces the
// OldSize bytes at its Offset in r with its blob. The signature patches
// grow the header (its reserve) and append the signature.
func writePatched(w io.Writer, r io.Reader, p *binpatch.PatchSet) error {
	var pos int64
	for i, ph := range p.Patches {
		if ph.Offset < pos {
			return errors.New("the signature's patches overlap")
		}
		if _, err := io.CopyN(w, r, ph.Offset-pos); err != nil {
			return err
		}
		if _, err := io.CopyN(io.Discard, r, int64(ph.OldSize)); err != nil {
			return err
		}
		if _, err := w.Write(p.Blobs[i]); err != nil {
			return err
		}
		pos = ph.Offset + int64(ph.OldSize)
	}
	_, err := io.Copy(w, r)
	return err
}

func inMemory(name string, data []byte, mod time.Time) cab.WriterFile {
	return cab.WriterFile{Name: name, Size: int64(len(data)), Modified: mod,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

// hashFile returns the SHA-256 and the size of the file at path.
func hashFile(path string) ([32]byte, int64, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return sum, 0, fmt.Errorf("read %s: %w", path, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, n, nil
}
