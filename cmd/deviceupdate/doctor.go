package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/client"
	"github.com/deviceupdate/deviceupdate/internal/doctor"
)

// defaultDataDir is serve's default --data, which doctor checks when it
// exists here.
const defaultDataDir = "./DeviceUpdateFiles"

func newDoctorCommand(stdout io.Writer) *cobra.Command {
	var (
		o      doctor.Options
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "doctor --domain D [--server URL] [--dns-server ADDR]",
		Short: "Check a deployment: DNS, certificate, trust, clock, endpoints, disk",
		Long: `Check what phones depend on, one line per check, ok or FAIL with what to do:

  dns            ucupdates-r2.<domain> resolves (through --dns-server, else this
                 host's resolver) to addresses where the service answers
  tls            the server at --server answers TLS
  tls-min        whether it refuses TLS 1.0 and 1.1 (never fails: serve
                 --tls-min 1.0 admits Lync Phone Edition phones knowingly)
  cert-sans      its certificate holds UCUpdates-R2 and UCUpdates-R2.<domain>
  cert-chain     it chains to <certs>/ca.crt
  cert-validity  it and the CA are valid now and for 30 more days
  cert-key       an RSA 2048+ or ECDSA P-256 key, signed with SHA-256
  clock          this host's clock is within 5 minutes of the server's
  https          GET /healthz answers 200
  poll           a poll to /RequestHandler/ucdevice.upx answers 200
  poll-external  an anonymous poll to /RequestHandlerExt/ucdevice.upx gets 401
  server         the admin API names the same --domain (needs the admin token)
  audit          the admin audit trail's hash chain is intact (needs the token)
  http           the internal HTTP listener answers /healthz and polls
  external       the --external listener answers /healthz and external phones
                 only: 404 to internal polls, the admin API and /metrics
  disk           the data folder has 1 GiB free (run on the server, or --data;
                 a ./DeviceUpdateFiles without deviceupdate.db is skipped)

A check that cannot run is "skip". Exits 1 when any check fails. The polls
are from a device no rule matches; it appears in the inventory as model
"doctor".`,
		Example: `  deviceupdate doctor --domain contoso.com
  deviceupdate doctor --domain contoso.com --server https://fe01.contoso.com --dns-server 10.0.0.2`,
		Args: exactArgs(0, "no arguments"),
	}
	f := cmd.Flags()
	f.StringVar(&o.Domain, "domain", "", "the DNS domain phones use (required)")
	f.StringVar(&o.Server, "server", "", "server URL (or $"+client.EnvServer+"; default "+client.DefaultServer+")")
	f.StringVar(&o.DNSServer, "dns-server", "", "DNS server to ask, host[:port] (default: this host's resolver)")
	f.StringVar(&o.Certs, "certs", "", "folder with ca.crt and admin.token (or $"+client.EnvCerts+"; default "+client.DefaultCerts+")")
	f.StringVar(&o.Token, "token", "", "admin token (or $"+client.EnvToken+"; default: <certs>/admin.token; without one the server, audit and http checks are skipped)")
	f.StringVar(&o.DataDir, "data", "", "the server's data folder, for the disk check (default "+defaultDataDir+" when it exists here)")
	f.DurationVar(&o.Timeout, "timeout", doctor.DefaultTimeout, "time allowed for each network exchange")
	f.BoolVar(&asJSON, "json", false, "print the results as one JSON document")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if o.Domain == "" {
			return usageError{errors.New("doctor needs --domain, the DNS domain phones use, e.g. --domain contoso.com (see 'deviceupdate doctor --help')")}
		}
		if err := checkDomainFlag(o.Domain); err != nil {
			return err
		}
		if o.DNSServer != "" {
			if _, _, err := net.SplitHostPort(o.DNSServer); err != nil {
				o.DNSServer = net.JoinHostPort(strings.Trim(o.DNSServer, "[]"), "53")
			}
		}
		resolveDoctorOptions(&o, cmd.Flags().Changed("data"), os.Getenv)
		results, err := doctor.Run(cmd.Context(), o)
		if err != nil {
			return err
		}
		failed := doctor.Failed(results)
		if asJSON {
			if err := writeJSON(stdout, struct {
				OK     bool            `json:"ok"`
				Checks []doctor.Result `json:"checks"`
			}{failed == 0, results}); err != nil {
				return err
			}
		} else {
			for _, r := range results {
				fmt.Fprintln(stdout, r)
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d of %s failed", failed, plural(int64(len(results)), "check"))
		}
		return nil
	}
	return cmd
}

// resolveDoctorOptions fills the server, certs folder, token and data
// folder the way admin commands find them: a flag, else the environment,
// else the default. A missing token is no error: the checks that need it
// are skipped. The default data folder is checked only where it exists,
// and skipped, not failed, when it holds no store.
func resolveDoctorOptions(o *doctor.Options, dataSet bool, getenv func(string) string) {
	if o.Server == "" {
		o.Server = getenv(client.EnvServer)
	}
	if o.Server == "" {
		o.Server = client.DefaultServer
	}
	if o.Certs == "" {
		o.Certs = getenv(client.EnvCerts)
	}
	if o.Certs == "" {
		o.Certs = client.DefaultCerts
	}
	if o.Token == "" {
		o.Token = getenv(client.EnvToken)
	}
	if o.Token == "" {
		o.Token, _ = certs.ReadToken(o.Certs)
	}
	if !dataSet {
		if fi, err := os.Stat(defaultDataDir); err == nil && fi.IsDir() {
			o.DataDir, o.DataDirFound = defaultDataDir, true
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = doctor.DefaultTimeout
	}
}
