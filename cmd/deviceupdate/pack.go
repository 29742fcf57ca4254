package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sassoftware/relic/v7/lib/authenticode"
	"github.com/sassoftware/relic/v7/lib/cabfile"
	"github.com/sassoftware/relic/v7/lib/certloader"
	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/cab"
	"github.com/deviceupdate/deviceupdate/internal/catalog"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

type packOptions struct {
	update          deviceupdate.Update
	version         string
	cert, key       string
	output          string
	signCabinet     bool
	unsignedCatalog bool
	stored          bool
}

func newPackCommand(stdout io.Writer) *cobra.Command {
	var o packOptions
	cmd := &cobra.Command{
		Use:   "pack -o OUT.cab --cert C --key K [identity flags] IMAGE.nbt...",
		Short: "Build a signed update package from firmware images",
		Long: `Build an update package (SPEC §3) for one update: its description
<UpdateType>.xml, the images, and a security catalog <UpdateType>.cat listing
the SHA-256 of each, signed with --cert/--key, in an MSZIP cabinet laid out as
the update store is (DeviceType\Brand\Model\Revision\Locale\Version\UpdateType\),
with updateInfo.xml at its root. --sign-cabinet also signs the cabinet itself
(Authenticode). --unsigned-catalog leaves the catalog for an outside signer
(signtool, osslsigncode, an HSM) to sign before the package is packed by hand.
The certificate file may hold the chain after the signing certificate. A
certificate that is not for code signing, or has expired, is refused: every
import would refuse its packages. 'deviceupdate certs publisher NAME' makes a
publisher of your own.`,
		Example: `  deviceupdate certs publisher lab -o .
  deviceupdate pack --device-type UCPhone --brand Polycom --model CX600 --revision A \
    --locale ENU --update-type CPE --version 4.0.7577.4366 \
    --cert lab.crt --key lab.key -o UCUpdates.cab CPE.nbt`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("pack needs at least one IMAGE file (see 'deviceupdate pack --help')")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runPack(cmd.Context(), stdout, o, args) },
	}
	f := cmd.Flags()
	f.StringVar(&o.update.DeviceType, "device-type", "UCPhone", "device type")
	f.StringVar(&o.update.Brand, "brand", "", "brand, such as Polycom (required)")
	f.StringVar(&o.update.Model, "model", "", "model, such as CX600 (required)")
	f.StringVar(&o.update.Revision, "revision", "", "hardware revision, such as A (required)")
	f.StringVar(&o.update.Locale, "locale", "ENU", "locale")
	f.StringVar(&o.update.UpdateType, "update-type", "CPE", "update type")
	f.StringVar(&o.version, "version", "", "version, four integers such as 4.0.7577.4366 (required)")
	f.StringVar(&o.cert, "cert", "", "PEM certificate (and chain) of the publisher (required unless --unsigned-catalog)")
	f.StringVar(&o.key, "key", "", "PEM private key of the publisher")
	f.StringVarP(&o.output, "output", "o", "", "the package to write (required)")
	f.BoolVar(&o.signCabinet, "sign-cabinet", false, "also sign the cabinet (Authenticode)")
	f.BoolVar(&o.unsignedCatalog, "unsigned-catalog", false, "leave the catalog unsigned, for an outside signer")
	f.BoolVar(&o.stored, "stored", false, "store the files uncompressed instead of MSZIP")
	return cmd
}

func runPack(ctx context.Context, stdout io.Writer, o packOptions, images []string) error {
	if o.output == "" {
		return usageError{fmt.Errorf("pack needs -o OUT.cab (see 'deviceupdate pack --help')")}
	}
	v, err := deviceupdate.ParseVersion(o.version)
	if err != nil {
		return fmt.Errorf("--version: %s", deviceupdate.ErrorMessage(err))
	}
	u := o.update
	u.Version = v
	for _, img := range images {
		u.Files = append(u.Files, filepath.Base(img))
	}
	if err := u.Validate(); err != nil {
		return fmt.Errorf("pack: %s", deviceupdate.ErrorMessage(err))
	}
	var signer *certloader.Certificate
	switch {
	case o.unsignedCatalog && o.signCabinet:
		return usageError{fmt.Errorf("--sign-cabinet needs a signed catalog; drop --unsigned-catalog")}
	case !o.unsignedCatalog:
		if o.cert == "" || o.key == "" {
			return usageError{fmt.Errorf("pack needs --cert and --key to sign the catalog (or --unsigned-catalog)")}
		}
		if signer, err = certloader.LoadX509KeyPair(o.cert, o.key); err != nil {
			return fmt.Errorf("load --cert %s and --key %s: %w", o.cert, o.key, err)
		}
		// What every import would refuse is refused now, by the same rule.
		if err := catalog.CheckSigner(fileChain(signer), time.Now()); err != nil {
			return fmt.Errorf("--cert %s: %v, so every import would refuse the package; make a publisher with: deviceupdate certs publisher NAME", o.cert, err)
		}
	}

	// The description, then the catalog over it and the images.
	desc := describe(u)
	entries := []catalog.Entry{{Name: u.UpdateType + ".xml", SHA256: sha256.Sum256(desc)}}
	var members []cab.WriterFile
	dir := updatestore.Rel(u.RuleKey, v) + "/"
	now := time.Now()
	for _, img := range images {
		sum, size, err := hashFile(img)
		if err != nil {
			return err
		}
		entries = append(entries, catalog.Entry{Name: filepath.Base(img), SHA256: sum})
		members = append(members, cab.WriterFile{Name: dir + filepath.Base(img), Size: size, Modified: now,
			Open: func() (io.ReadCloser, error) { return os.Open(img) }})
	}
	ctl, err := catalog.Build(entries, now)
	if err != nil {
		return err
	}
	var cat []byte
	if signer != nil {
		cat, err = catalog.Sign(ctl, signer.Signer(), signer.Chain())
	} else {
		cat, err = catalog.Unsigned(ctl)
	}
	if err != nil {
		return err
	}
	info := updateInfo(u)
	members = append([]cab.WriterFile{
		memory("updateInfo.xml", info, now),
		memory(dir+u.UpdateType+".xml", desc, now),
	}, append(members, memory(dir+u.UpdateType+".cat", cat, now))...)

	// Write beside the output and rename into place, so a failure leaves
	// no partial package.
	tmp, err := os.CreateTemp(filepath.Dir(o.output), "."+filepath.Base(o.output)+".tmp-*")
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	comp := cab.CompressMSZIP
	if o.stored {
		comp = cab.CompressNone
	}
	if err := cab.Write(tmp, members, comp); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if o.signCabinet {
		// Apply closes the file it patches (it may replace it).
		if err := signCabinet(ctx, tmp, signer); err != nil {
			return err
		}
	} else if err := tmp.Close(); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if err := syncFile(tmp.Name()); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if err := os.Rename(tmp.Name(), o.output); err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	sum, size, err := hashFile(o.output)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%s, sha256 %s)\n  %s %s: %s\n", o.output, plural(size, "byte"), hex.EncodeToString(sum[:]), u.RuleKey, v, strings.Join(u.Files, ", "))
	switch {
	case signer == nil:
		fmt.Fprintf(stdout, "  catalog %s%s.cat is unsigned: sign it before the package is imported\n", dir, u.UpdateType)
	default:
		fmt.Fprintf(stdout, "  catalog signed by %s\n", signer.Leaf.Subject)
	}
	return nil
}

// fileChain returns the certificates of the --cert file, the signing one
// first and the root it may hold (which Chain leaves out) last.
func fileChain(signer *certloader.Certificate) []*x509.Certificate {
	chain := signer.Chain()
	for _, c := range signer.Certificates {
		if !slices.ContainsFunc(chain, c.Equal) {
			chain = append(chain, c)
		}
	}
	return chain
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// signCabinet adds an Authenticode signature to the cabinet in f.
func signCabinet(ctx context.Context, f *os.File, signer *certloader.Certificate) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	digest, err := cabfile.Digest(f, crypto.SHA256)
	if err != nil {
		return fmt.Errorf("sign cabinet: %w", err)
	}
	patch, _, err := authenticode.SignCabImprint(ctx, digest, signer, &authenticode.OpusParams{Description: "deviceupdate package"})
	if err != nil {
		return fmt.Errorf("sign cabinet: %w", err)
	}
	if err := patch.Apply(f, f.Name()); err != nil {
		return fmt.Errorf("sign cabinet: %w", err)
	}
	return nil
}

// describe returns the update's description (SPEC §3).
func describe(u deviceupdate.Update) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	fmt.Fprintf(&b, `<Update DeviceType="%s" Brand="%s" Model="%s" Revision="%s" Locale="%s" UpdateType="%s" Version="%s">`,
		esc(u.DeviceType), esc(u.Brand), esc(u.Model), esc(u.Revision), esc(u.Locale), esc(u.UpdateType), u.Version)
	for _, f := range u.Files {
		fmt.Fprintf(&b, "\n  <File Name=\"%s\"/>", esc(f))
	}
	b.WriteString("\n</Update>\n")
	return b.Bytes()
}

// updateInfo returns the informative index SPEC §3 describes.
func updateInfo(u deviceupdate.Update) []byte {
	return []byte(fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<Updates><Updates><Update DeviceType="%s" Brand="%s" Model="%s" Revision="%s" Locale="%s" UpdateType="%s" Version="%s"/></Updates></Updates>
`, esc(u.DeviceType), esc(u.Brand), esc(u.Model), esc(u.Revision), esc(u.Locale), esc(u.UpdateType), u.Version))
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func memory(name string, data []byte, mod time.Time) cab.WriterFile {
	return cab.WriterFile{Name: name, Size: int64(len(data)), Modified: mod,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

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
