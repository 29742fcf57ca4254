package main

import (
	"crypto/x509"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sassoftware/relic/v7/lib/certloader"
	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/catalog"
	"github.com/deviceupdate/deviceupdate/internal/updatepkg"
)

type packOptions struct {
	rule            deviceupdate.RuleKey
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
		RunE: func(_ *cobra.Command, args []string) error { return runPack(stdout, o, args) },
	}
	f := cmd.Flags()
	f.StringVar(&o.rule.DeviceType, "device-type", "UCPhone", "device type")
	f.StringVar(&o.rule.Brand, "brand", "", "brand, such as Polycom (required)")
	f.StringVar(&o.rule.Model, "model", "", "model, such as CX600 (required)")
	f.StringVar(&o.rule.Revision, "revision", "", "hardware revision, such as A (required)")
	f.StringVar(&o.rule.Locale, "locale", "ENU", "locale")
	f.StringVar(&o.rule.UpdateType, "update-type", "CPE", "update type")
	f.StringVar(&o.version, "version", "", "version, four integers such as 4.0.7577.4366 (required)")
	f.StringVar(&o.cert, "cert", "", "PEM certificate (and chain) of the publisher (required unless --unsigned-catalog)")
	f.StringVar(&o.key, "key", "", "PEM private key of the publisher")
	f.StringVarP(&o.output, "output", "o", "", "the package to write (required)")
	f.BoolVar(&o.signCabinet, "sign-cabinet", false, "also sign the cabinet (Authenticode)")
	f.BoolVar(&o.unsignedCatalog, "unsigned-catalog", false, "leave the catalog unsigned, for an outside signer")
	f.BoolVar(&o.stored, "stored", false, "store the files uncompressed instead of MSZIP")
	return cmd
}

func runPack(stdout io.Writer, o packOptions, images []string) error {
	if o.output == "" {
		return usageError{fmt.Errorf("pack needs -o OUT.cab (see 'deviceupdate pack --help')")}
	}
	v, err := deviceupdate.ParseVersion(o.version)
	if err != nil {
		return fmt.Errorf("--version: %s", deviceupdate.ErrorMessage(err))
	}
	build := updatepkg.BuildOptions{RuleKey: o.rule, Version: v, Images: images, SignCabinet: o.signCabinet, Stored: o.stored}
	if _, err := build.Update(); err != nil {
		return fmt.Errorf("pack: %s", deviceupdate.ErrorMessage(err))
	}
	switch {
	case o.unsignedCatalog && o.signCabinet:
		return usageError{fmt.Errorf("--sign-cabinet needs a signed catalog; drop --unsigned-catalog")}
	case !o.unsignedCatalog:
		if o.cert == "" || o.key == "" {
			return usageError{fmt.Errorf("pack needs --cert and --key to sign the catalog (or --unsigned-catalog)")}
		}
		if build.Signer, err = certloader.LoadX509KeyPair(o.cert, o.key); err != nil {
			return fmt.Errorf("load --cert %s and --key %s: %w", o.cert, o.key, err)
		}
		// What every import would refuse is refused now, by the same rule.
		if err := catalog.CheckSigner(fileChain(build.Signer), time.Now()); err != nil {
			return fmt.Errorf("--cert %s: %v, so every import would refuse the package; make a publisher with: deviceupdate certs publisher NAME", o.cert, err)
		}
	}

	built, err := updatepkg.WriteFile(o.output, build)
	if err != nil {
		if deviceupdate.ErrorCode(err) == deviceupdate.EINVALID {
			return fmt.Errorf("pack: %s", deviceupdate.ErrorMessage(err))
		}
		return fmt.Errorf("pack: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (%s, sha256 %s)\n  %s %s: %s\n", o.output, plural(built.Size, "byte"), built.SHA256, built.Update.RuleKey, v, strings.Join(built.Update.Files, ", "))
	switch {
	case built.Signer == "":
		fmt.Fprintf(stdout, "  catalog %s is unsigned: sign it before the package is imported\n", built.Catalog)
	default:
		fmt.Fprintf(stdout, "  catalog signed by %s\n", built.Signer)
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
