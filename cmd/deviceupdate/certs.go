package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/client"
)

func newCertsCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("certs", "Manage the service's CA, server certificate and admin token, and publishers",
		newCertsInitCommand(stdout), newCertsRenewCommand(stdout), newCertsClientCommand(stdout), newCertsPublisherCommand(stdout))
}

// addCertsFlag binds --certs; the returned function gives the folder,
// from $DEVICEUPDATE_CERTS when the flag is not given.
func addCertsFlag(c *cobra.Command, usage string) func() string {
	dir := c.Flags().String("certs", client.DefaultCerts, usage+" (or $"+client.EnvCerts+")")
	return func() string {
		if env := os.Getenv(client.EnvCerts); env != "" && !c.Flags().Changed("certs") {
			return env
		}
		return *dir
	}
}

func newCertsInitCommand(stdout io.Writer) *cobra.Command {
	var (
		domain string
		hosts  []string
		ips    []net.IP
	)
	cmd := &cobra.Command{
		Use:   "init --domain D",
		Short: "Create the CA, the server certificate and the admin token",
		Long: `Create in the certs folder what it lacks: a CA (ca.crt, ca.key), a server
certificate signed by it (server.crt, server.key) whose names include
UCUpdates-R2, UCUpdates-R2.<domain>, this host's name and its addresses, the
admin token (admin.token) and the trusted/ folder for publisher certificates.
Files that exist are kept; a server.crt/server.key you supply is used as is.
'serve' does the same on its first start. A server certificate that lacks
UCUpdates-R2.<domain> is refused with the fix: 'certs renew --domain D'.`,
		Example: `  deviceupdate certs init --domain contoso.com
  deviceupdate certs init --domain contoso.com --certs /etc/deviceupdate/certs --host fe01.contoso.com --ip 10.0.0.5`,
		Args: exactArgs(0, "no arguments"),
	}
	certsDir := addCertsFlag(cmd, "certs folder")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		dir := certsDir()
		if domain != "" {
			if err := checkDomainFlag(domain); err != nil {
				return err
			}
		}
		if err := checkDomainNames(dir, domain); err != nil {
			return err
		}
		listen := ips
		if len(listen) == 0 {
			listen = []net.IP{net.IPv6unspecified} // every address of this host
		}
		hostNames, addrs, err := certIdentity(domain, listen)
		if err != nil {
			return fmt.Errorf("list this host's addresses: %w; name them with --ip", err)
		}
		created, err := certs.Ensure(dir, certs.Options{Domain: domain, Hosts: append(hostNames, hosts...), IPs: addrs})
		if err != nil {
			return fmt.Errorf("certificates in %s: %w", dir, err)
		}
		if len(created) == 0 {
			fmt.Fprintf(stdout, "%s already holds a server certificate and an admin token; nothing created\n", dir)
			return nil
		}
		for _, p := range created {
			fmt.Fprintf(stdout, "created %s\n", p)
		}
		return nil
	}
	f := cmd.Flags()
	f.StringVar(&domain, "domain", "", "DNS domain; the certificate carries UCUpdates-R2.<domain>")
	f.StringSliceVar(&hosts, "host", nil, "further DNS name for the certificate (repeatable)")
	f.IPSliceVar(&ips, "ip", nil, "address for the certificate (repeatable; default: every address of this host)")
	return cmd
}

// checkDomainNames refuses, before anything is written, a folder whose
// server certificate lacks the discovery names of --domain.
func checkDomainNames(dir, domain string) error {
	if domain == "" {
		return nil
	}
	if err := certs.Check(dir); err != nil {
		return fmt.Errorf("certificates in %s: %w", dir, err)
	}
	leaf, err := certs.ReadServerCert(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("certificates in %s: %w", dir, err)
	}
	return certs.CheckNames(leaf, dir, domain)
}

func newCertsRenewCommand(stdout io.Writer) *cobra.Command {
	var domain string
	cmd := &cobra.Command{
		Use:   "renew [--domain D]",
		Short: "Reissue the server certificate from the CA (before it expires, or for a new domain)",
		Long: `Reissue the server certificate (server.crt) with a new key (server.key) from
the CA in the certs folder (ca.crt and ca.key), valid 27 months (825 days, the
most phones accept; never past the CA). It carries the names and addresses of
the current one or, with --domain, those names moved to the new domain
(UCUpdates-R2.<domain>, <host>.<domain>). The new pair replaces the old one
together; clients keep trusting ca.crt, so nothing changes on the phones. A
running serve presents the new certificate from its next connection on, within
a second, without a restart.`,
		Example: `  deviceupdate certs renew
  deviceupdate certs renew --domain fabrikam.com --certs /etc/deviceupdate/certs`,
		Args: exactArgs(0, "no arguments"),
	}
	certsDir := addCertsFlag(cmd, "certs folder holding server.crt, ca.crt and ca.key")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		if domain != "" {
			if err := checkDomainFlag(domain); err != nil {
				return err
			}
		}
		r, err := certs.Renew(certsDir(), certs.RenewOptions{Domain: domain})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "renewed %s: %s\n", r.CertPath, describeServerCert(r.New))
		fmt.Fprintf(stdout, "  replaces %s\n", describeServerCert(r.Old))
		fmt.Fprintf(stdout, "  with a new key %s (mode 0600); a running serve presents it from its next connection, no restart needed\n", r.KeyPath)
		return nil
	}
	cmd.Flags().StringVar(&domain, "domain", "", "move the certificate's names to this DNS domain (UCUpdates-R2.<domain>)")
	return cmd
}

func describeServerCert(c *x509.Certificate) string {
	return fmt.Sprintf("serial %s, valid until %s, for %s", c.SerialNumber.Text(16), c.NotAfter.UTC().Format(time.DateOnly), strings.Join(certs.CertNames(c), ", "))
}

func newCertsPublisherCommand(stdout io.Writer) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "publisher NAME [-o DIR]",
		Short: "Make a code-signing certificate and key for pack (labs, in-house firmware)",
		Long: `Make a publisher of update packages, for labs and in-house firmware: a
self-signed certificate for code signing whose common name is NAME, valid five
years, and its RSA 2048 key, written as PEM to DIR/NAME.crt and DIR/NAME.key
(mode 0600). Existing files are never overwritten.

'pack --cert DIR/NAME.crt --key DIR/NAME.key' signs packages with it. A server
imports them once NAME.crt is in its <certs>/trusted/ folder (read at each
import): copy it there, on the server. Keep NAME.key where packages are built;
whoever holds it can sign firmware the phones install. Packages from a vendor
need no publisher: trust the vendor's certificate instead. NAME follows the
rules of user names: 1-64 letters, digits, '.', '-', '_' or '@', starting with
a letter or a digit.`,
		Example: `  deviceupdate certs publisher lab -o .
  deviceupdate pack --brand Polycom --model CX600 --revision A --version 4.0.7577.4366 \
    --cert lab.crt --key lab.key -o UCUpdates.cab CPE.nbt
  cp lab.crt certs/trusted/`,
		Args: exactArgs(1, "one NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			name := args[0]
			if deviceupdate.ValidateUserName(name) != nil {
				return fmt.Errorf("publisher name %q: want 1-%d letters, digits, '.', '-', '_' or '@', starting with a letter or a digit",
					name, deviceupdate.MaxUserNameLen)
			}
			p, err := certs.IssuePublisher(out, name, time.Now())
			if err != nil {
				return err
			}
			trusted := filepath.Join(client.DefaultCerts, certs.TrustedDir)
			if env := os.Getenv(client.EnvCerts); env != "" {
				trusted = filepath.Join(env, certs.TrustedDir)
			}
			fmt.Fprintf(stdout, "created %s (publisher %s: self-signed, for code signing, valid until %s)\n",
				p.CertPath, p.Cert.Subject, p.Cert.NotAfter.UTC().Format(time.DateOnly))
			fmt.Fprintf(stdout, "created %s (its private key, mode 0600: keep it where packages are built)\n", p.KeyPath)
			fmt.Fprintf(stdout, "next: trust it on the server (cp %s %s/), then sign with: deviceupdate pack --cert %s --key %s ...\n",
				p.CertPath, trusted, p.CertPath, p.KeyPath)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", ".", "folder to write NAME.crt and NAME.key to")
	return cmd
}
