package updatepkg

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sassoftware/relic/v7/lib/authenticode"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/cab"
	"github.com/deviceupdate/deviceupdate/internal/catalog"
)

// Options configure Stage.
type Options struct {
	// Trust holds the certificates of the publishers whose packages may be
	// imported (the PEM files in <certs>/trusted/).
	Trust *x509.CertPool
	// Limits bound the cabinet; the zero value means cab.DefaultLimits.
	Limits cab.Limits
	// StagingDir is an empty folder on the same file system as the store,
	// where Stage writes the verified files.
	StagingDir string
}

// File is one verified file of an update.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lowercase hex
}

// Staged is one verified update whose files wait in Dir.
type Staged struct {
	Update      deviceupdate.Update
	Description File   // <base>.xml
	Images      []File // in the order the description names them
	Catalog     File   // <base>.cat
	Signer      string // the catalog signer's subject
	Dir         string // holds the description, the images and the catalog
}

// Package is the result of staging a cabinet.
type Package struct {
	SHA256        string // of the whole cabinet
	CabinetSigner string // the Authenticode signer, when the cabinet is signed
	Updates       []Staged
}

// member is a cabinet member an update may use, as Stage saw it.
type member struct {
	f      *cab.File
	clean  string // safe path with / separators
	staged string // path of the staged copy
	data   []byte // content, for descriptions and catalogs
	size   int64
	sha256 []byte
	moved  bool // staged is in an update's folder
}

const maxKeptInMemory = catalog.MaxSize

// maxKeptTotal bounds the descriptions and catalogs of one package, all
// held in memory while they are verified.
const maxKeptTotal = 64 << 20

// errAllRead stops the walk that reads descriptions and catalogs once it
// has them all.
var errAllRead = errors.New("all descriptions and catalogs read")

// Stage verifies an update package and copies the files of its updates to
// o.StagingDir; nothing else is written. It writes no image before every
// update's catalog verifies against o.Trust and its description is read,
// nor before the images' declared sizes are checked against the limits
// and the free space: an untrusted or oversized package is refused having
// written nothing. Every error is an *deviceupdate.Error naming the file
// and the reason (EINVALID for a bad package, EFORBIDDEN for an untrusted
// or broken signature, EUNAVAILABLE when the disk lacks the room).
func Stage(r io.ReaderAt, size int64, o Options) (*Package, error) {
	lim := o.Limits
	if lim == (cab.Limits{}) {
		lim = cab.DefaultLimits()
	}
	cr, err := findCabinet(r, size, lim)
	if err != nil {
		return nil, err
	}
	pkg := &Package{}
	if len(cr.HeaderReserve) > 0 {
		signer, err := verifyCabinetSignature(signedCabinet(r, size, cr), o.Trust)
		if err != nil {
			return nil, err
		}
		pkg.CabinetSigner = signer
	}

	// Plan from the file table before decoding anything: which members are
	// descriptions, and which folders of the cabinet hold updates.
	members := map[string]*member{} // by lower-case clean path
	descriptions := map[string]*member{}
	updateDirs := map[string]bool{}
	for _, f := range cr.Files {
		clean, err := cab.SafePath(f.Name)
		if err != nil {
			return nil, invalid(err, "%v", err)
		}
		key := strings.ToLower(clean)
		if _, dup := members[key]; dup {
			return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "%s: the package holds this name twice", clean)
		}
		m := &member{f: f, clean: clean}
		members[key] = m
		dir, base := path.Split(clean)
		if strings.EqualFold(path.Ext(base), ".xml") && !(dir == "" && strings.EqualFold(base, "updateInfo.xml")) {
			descriptions[key] = m
			updateDirs[strings.ToLower(dir)] = true
		}
	}
	if len(descriptions) == 0 {
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "the package holds no update description (<base>.xml beside its .nbt images and <base>.cat)")
	}
	if err := readMetadata(cr, members, updateDirs); err != nil {
		return nil, err
	}

	// Verify every update's description and catalog, and check what its
	// images declare, before writing any of them.
	keys := make([]string, 0, len(descriptions))
	for k := range descriptions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	plans := make([]*plan, len(keys))
	images := map[*member]bool{}
	var need int64
	for i, k := range keys {
		p, err := verifyUpdate(descriptions[k], members, o.Trust, lim)
		if err != nil {
			return nil, err
		}
		plans[i] = p
		for _, m := range p.images {
			if !images[m] {
				images[m] = true
				need += m.f.Size
			}
		}
	}
	staged := make([]Staged, len(plans))
	for i, p := range plans {
		staged[i] = p.s
	}
	if err := checkDistinct(staged); err != nil {
		return nil, err
	}
	if need > lim.MaxTotalSize {
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "the package's images declare %d bytes in all, more than the %d limit", need, lim.MaxTotalSize)
	}
	if err := os.MkdirAll(o.StagingDir, 0o750); err != nil {
		return nil, fmt.Errorf("stage package: %w", err)
	}
	if err := checkRoom(o.StagingDir, need); err != nil {
		return nil, err
	}

	// Then copy the images the verified descriptions name, and no other
	// member, each stopped at its declared size.
	buf := make([]byte, 1<<20)
	err = cr.Walk(func(f *cab.File, rd io.Reader) error {
		clean, _ := cab.SafePath(f.Name)
		m := members[strings.ToLower(clean)]
		if !images[m] {
			return nil
		}
		staged := filepath.Join(o.StagingDir, "files", filepath.FromSlash(clean))
		n, sum, err := copyFile(staged, rd, f.Size, buf)
		if err != nil {
			return err
		}
		m.staged, m.size, m.sha256 = staged, n, sum
		return nil
	})
	if err != nil {
		var de *deviceupdate.Error
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, cabReadError("the package", err)
	}
	for i, p := range plans {
		s, err := p.stage(filepath.Join(o.StagingDir, fmt.Sprintf("update-%d", i)))
		if err != nil {
			return nil, err
		}
		pkg.Updates = append(pkg.Updates, *s)
	}
	if err := os.RemoveAll(filepath.Join(o.StagingDir, "files")); err != nil {
		return nil, fmt.Errorf("stage package: %w", err)
	}
	return pkg, nil
}

// readMetadata reads into memory the descriptions and catalogs that sit
// in a folder holding a description, and nothing else; the walk decodes
// the members between them without keeping them, and stops once it has
// them all.
func readMetadata(cr *cab.Reader, members map[string]*member, updateDirs map[string]bool) error {
	wanted := func(clean string) bool {
		dir, base := path.Split(clean)
		ext := strings.ToLower(path.Ext(base))
		return updateDirs[strings.ToLower(dir)] && (ext == ".xml" || ext == ".cat")
	}
	left := 0
	for _, m := range members {
		if wanted(m.clean) {
			left++
		}
	}
	var kept int64
	err := cr.Walk(func(f *cab.File, rd io.Reader) error {
		clean, _ := cab.SafePath(f.Name)
		if !wanted(clean) {
			return nil
		}
		if f.Size > maxKeptInMemory {
			return deviceupdate.Errorf(deviceupdate.EINVALID, "%s: %d bytes is too large for a %s file", clean, f.Size, path.Ext(clean))
		}
		if kept += f.Size; kept > maxKeptTotal {
			return deviceupdate.Errorf(deviceupdate.EINVALID, "the package's descriptions and catalogs take more than %d bytes", maxKeptTotal)
		}
		m := members[strings.ToLower(clean)]
		h := sha256.New()
		data, err := io.ReadAll(io.TeeReader(io.LimitReader(rd, f.Size), h))
		if err != nil {
			return cabReadError(clean, err)
		}
		m.data, m.size, m.sha256 = data, int64(len(data)), h.Sum(nil)
		if left--; left == 0 {
			return errAllRead
		}
		return nil
	})
	var de *deviceupdate.Error
	switch {
	case err == nil, errors.Is(err, errAllRead):
		return nil
	case errors.As(err, &de):
		return err
	}
	return cabReadError("the package", err)
}

// plan is one update whose description and catalog verified, before its
// images are copied.
type plan struct {
	s       Staged // without Dir, and with the images' declared sizes
	desc    *member
	catM    *member
	cat     *catalog.Catalog
	dirPath string // the update's folder in the package, with its slash
	images  []*member
}

// verifyUpdate reads one description, verifies its catalog's signature
// against trust and that the catalog lists the description, and checks
// that each image it names is in the package within the size limit.
func verifyUpdate(desc *member, members map[string]*member, trust *x509.CertPool, lim cab.Limits) (*plan, error) {
	u, err := ParseDescription(desc.data)
	if err != nil {
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "%s: %s", desc.clean, deviceupdate.ErrorMessage(err))
	}
	base := strings.TrimSuffix(desc.clean, path.Ext(desc.clean))
	catM := members[strings.ToLower(base+".cat")]
	if catM == nil {
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "%s: the package lacks the catalog %s.cat", desc.clean, base)
	}
	cat, err := catalog.Parse(catM.data)
	if err != nil {
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "%s: %v", catM.clean, err)
	}
	signer, err := cat.Verify(trust)
	if err != nil {
		return nil, &deviceupdate.Error{Code: deviceupdate.EFORBIDDEN, Message: fmt.Sprintf("%s: %v", catM.clean, err), Err: err}
	}
	p := &plan{desc: desc, catM: catM, cat: cat, s: Staged{Update: u, Signer: signer.Subject.String()}}
	if err := p.listed(desc); err != nil {
		return nil, err
	}
	p.dirPath, _ = path.Split(desc.clean)
	for _, name := range u.Files {
		m := members[strings.ToLower(p.dirPath+name)]
		if ext := strings.ToLower(path.Ext(name)); m == nil || ext == ".xml" || ext == ".cat" {
			return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "%s names %s, which the package lacks", desc.clean, p.dirPath+name)
		}
		if m.f.Size > lim.MaxFileSize {
			return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "%s: the image declares %d bytes, more than the %d limit", m.clean, m.f.Size, lim.MaxFileSize)
		}
		p.images = append(p.images, m)
		p.s.Images = append(p.s.Images, File{Name: name, Size: m.f.Size})
	}
	// The description and catalog keep their names from the package, so
	// the catalog a phone downloads is the one the publisher signed.
	p.s.Description = File{Name: path.Base(desc.clean), Size: desc.size, SHA256: hex.EncodeToString(desc.sha256)}
	p.s.Catalog = File{Name: path.Base(catM.clean), Size: catM.size, SHA256: hex.EncodeToString(catM.sha256)}
	return p, nil
}

// listed checks that the catalog lists m's SHA-256 or SHA-1.
func (p *plan) listed(m *member) error {
	if _, ok := p.cat.Lookup(m.sha256); ok {
		return nil
	}
	sum1, err := sha1Of(m)
	if err != nil {
		return err
	}
	if _, ok := p.cat.Lookup(sum1); ok {
		return nil
	}
	return deviceupdate.Errorf(deviceupdate.EFORBIDDEN, "%s: its hash is not in %s (changed after signing, or not signed)", m.clean, p.catM.clean)
}

// stage checks the copied images against the catalog and moves them,
// with the description and catalog, into dir.
func (p *plan) stage(dir string) (*Staged, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("stage update: %w", err)
	}
	s := p.s
	s.Dir = dir
	s.Images = make([]File, len(p.images))
	for i, m := range p.images {
		if err := p.listed(m); err != nil {
			return nil, err
		}
		name, dst := p.s.Images[i].Name, filepath.Join(dir, p.s.Images[i].Name)
		// Two descriptions may name one member: the first moves the
		// copy, the second links to it.
		move := os.Rename
		if m.moved {
			move = os.Link
		}
		if err := move(m.staged, dst); err != nil {
			return nil, fmt.Errorf("stage %s: %w", m.clean, err)
		}
		m.staged, m.moved = dst, true
		s.Images[i] = File{Name: name, Size: m.size, SHA256: hex.EncodeToString(m.sha256)}
	}
	for _, w := range []struct {
		name string
		m    *member
	}{{s.Description.Name, p.desc}, {s.Catalog.Name, p.catM}} {
		if err := writeSynced(filepath.Join(dir, w.name), w.m.data); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

// checkDistinct refuses a package that holds two updates for one rule and
// version, or whose stored file names collide.
func checkDistinct(updates []Staged) error {
	seen := map[string]bool{}
	for _, s := range updates {
		k := strings.ToLower(s.Update.RuleKey.String() + "@" + s.Update.Version.String())
		if seen[k] {
			return deviceupdate.Errorf(deviceupdate.EINVALID, "the package holds two updates for %s version %s", s.Update.RuleKey, s.Update.Version)
		}
		seen[k] = true
		names := map[string]bool{strings.ToLower(s.Description.Name): true, strings.ToLower(s.Catalog.Name): true}
		for _, f := range s.Images {
			if names[strings.ToLower(f.Name)] {
				return deviceupdate.Errorf(deviceupdate.EINVALID, "update %s %s: the image %s collides with the description or catalog name", s.Update.RuleKey, s.Update.Version, f.Name)
			}
			names[strings.ToLower(f.Name)] = true
		}
	}
	return nil
}

func verifyCabinetSignature(r io.ReaderAt, trust *x509.CertPool) (string, error) {
	sig, err := authenticode.VerifyCab(r, false)
	if err != nil {
		return "", &deviceupdate.Error{Code: deviceupdate.EFORBIDDEN, Message: fmt.Sprintf("the cabinet's Authenticode signature does not verify: %v", err), Err: err}
	}
	if err := sig.VerifyChain(trust, nil, x509.ExtKeyUsageCodeSigning); err != nil {
		return "", &deviceupdate.Error{Code: deviceupdate.EFORBIDDEN, Message: fmt.Sprintf("the cabinet is signed by %s, who is not a trusted publisher: %v", sig.Certificate.Subject, err), Err: err}
	}
	return sig.Certificate.Subject.String(), nil
}

// findCabinet returns the one cabinet of a package: a cabinet file, or a
// program with a cabinet inside (a vendor's self-extracting UCUpdates.exe).
func findCabinet(r io.ReaderAt, size int64, lim cab.Limits) (*cab.Reader, error) {
	cabs, err := cab.SearchLimits(r, size, lim)
	switch {
	case errors.Is(err, cab.ErrNoCabinet):
		// "cab: no cabinet found (why)" keeps its why.
		return nil, invalid(err, "no cabinet found in the file%s; an update package is a cabinet, or a program with one inside",
			strings.TrimPrefix(err.Error(), cab.ErrNoCabinet.Error()))
	case err != nil:
		return nil, invalid(err, "the package is not a readable cabinet: %v", err)
	case len(cabs) > 1:
		offsets := make([]string, len(cabs))
		for i, c := range cabs {
			offsets[i] = fmt.Sprint(c.Offset)
		}
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "the file holds %d cabinets, at offsets %s; an update package is one cabinet (see 'deviceupdate cab list')",
			len(cabs), strings.Join(offsets, ", "))
	}
	return cabs[0], nil
}

// signedCabinet returns the bytes an Authenticode check of the cabinet
// reads. A cabinet file is read whole, so that bytes appended after its
// signature are refused as before; a cabinet inside a program ends where
// its signature ends (the signature directory in its header reserve says
// where: offset and size at bytes 4 and 8), since the program goes on.
func signedCabinet(r io.ReaderAt, size int64, cr *cab.Reader) io.ReaderAt {
	if cr.Offset == 0 {
		return r
	}
	end := cr.CabinetSize
	if hr := cr.HeaderReserve; len(hr) >= 12 {
		end = max(end, int64(binary.LittleEndian.Uint32(hr[4:]))+int64(binary.LittleEndian.Uint32(hr[8:])))
	}
	return io.NewSectionReader(r, cr.Offset, min(end, size-cr.Offset))
}

// copyFile copies a member of the declared size from src to a new file
// dst, synced, and returns its size and SHA-256. It stops past the
// declared size, and refuses a member that is longer or shorter.
func copyFile(dst string, src io.Reader, declared int64, buf []byte) (int64, []byte, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return 0, nil, fmt.Errorf("stage %s: %w", dst, err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return 0, nil, fmt.Errorf("stage %s: %w", dst, err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(src, declared+1), buf)
	if err == nil && n != declared {
		err = deviceupdate.Errorf(deviceupdate.EINVALID, "%s: the member holds %s bytes, not the %d it declares", filepath.Base(dst), sizeSeen(n, declared), declared)
	}
	if err != nil {
		f.Close()
		var de *deviceupdate.Error
		if errors.As(err, &de) {
			return n, nil, err
		}
		return n, nil, cabReadError(filepath.Base(dst), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return n, nil, fmt.Errorf("stage %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return n, nil, fmt.Errorf("stage %s: %w", dst, err)
	}
	return n, h.Sum(nil), nil
}

// sizeSeen is n, or "more than" the declared size when the copy stopped
// past it.
func sizeSeen(n, declared int64) string {
	if n > declared {
		return fmt.Sprintf("more than %d", declared)
	}
	return fmt.Sprint(n)
}

func writeSynced(dst string, data []byte) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("stage %s: %w", dst, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("stage %s: %w", dst, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("stage %s: %w", dst, err)
	}
	return f.Close()
}

func sha1Of(m *member) ([]byte, error) {
	h := sha1.New()
	if m.staged == "" {
		h.Write(m.data)
		return h.Sum(nil), nil
	}
	f, err := os.Open(m.staged)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", m.clean, err)
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("hash %s: %w", m.clean, err)
	}
	return h.Sum(nil), nil
}

// cabReadError reports a cabinet that fails while its data is decoded.
func cabReadError(what string, err error) error {
	if errors.Is(err, cab.ErrFormat) || errors.Is(err, cab.ErrLimit) || errors.Is(err, cab.ErrUnsupported) {
		return invalid(err, "%s: %v", what, err)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

func invalid(err error, format string, args ...any) *deviceupdate.Error {
	return &deviceupdate.Error{Code: deviceupdate.EINVALID, Message: fmt.Sprintf(format, args...), Err: err}
}

// checkRoom refuses a package whose images need more room than the disk
// holding dir has left: better than filling the disk the store and the
// audit trail share, and failing on the last image.
func checkRoom(dir string, need int64) error {
	free, ok := available(dir)
	if !ok || uint64(need) <= free {
		return nil
	}
	return deviceupdate.Errorf(deviceupdate.EUNAVAILABLE, "the package's images need %d bytes, and the disk holding %s has %d free; free some space and import again",
		need, dir, free)
}
