package main

import (
	"fmt"
	"io"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/client"
)

func newCertsCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("certs", "Manage the service's CA, server certificate and admin token",
		newCertsInitCommand(stdout), newCertsClientCommand(stdout))
}

func newCertsInitCommand(stdout io.Writer) *cobra.Command {
	var (
		dir    string
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
'serve' does the same on its first start.`,
		Example: `  deviceupdate certs init --domain contoso.com
  deviceupdate certs init --domain contoso.com --certs /etc/deviceupdate/certs --host fe01.contoso.com --ip 10.0.0.5`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if env := os.Getenv(client.EnvCerts); env != "" && !c.Flags().Changed("certs") {
				dir = env
			}
			if domain != "" && !validDomain(domain) {
				return fmt.Errorf("--domain %q is not a DNS domain; write e.g. contoso.com", domain)
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
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "certs", client.DefaultCerts, "certs folder (or $"+client.EnvCerts+")")
	f.StringVar(&domain, "domain", "", "DNS domain; the certificate carries UCUpdates-R2.<domain>")
	f.StringSliceVar(&hosts, "host", nil, "further DNS name for the certificate (repeatable)")
	f.IPSliceVar(&ips, "ip", nil, "address for the certificate (repeatable; default: every address of this host)")
	return cmd
}
