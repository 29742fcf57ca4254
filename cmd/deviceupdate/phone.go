package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/client"
	"github.com/deviceupdate/deviceupdate/internal/loadgen"
)

func newPhoneCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("phone", "Act as phones against a server", newPhoneLoadCommand(stdout))
}

func newPhoneLoadCommand(stdout io.Writer) *cobra.Command {
	var o loadgen.Options
	var server, certsDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "load --server URL",
		Short: "Poll a server as many distinct phones at once (a boot storm)",
		Long: `Replay polls from --phones distinct phones (each its own MAC) over --concurrency
keep-alive connections for --duration (or --requests polls) against the
internal poll endpoint of --server, and report polls per second, how many were
answered 503 (busy), and the latency. HTTPS servers are trusted through
<certs>/ca.crt.`,
		Example: "  deviceupdate phone load --server http://127.0.0.1:8080 --phones 10000 --concurrency 64 --duration 30s",
		Args:    exactArgs(0, "no arguments"),
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "server base URL, http:// or https:// (required)")
	f.StringVar(&certsDir, "certs", "", "folder with the ca.crt to trust (or $"+client.EnvCerts+"; default ./certs)")
	f.IntVar(&o.Phones, "phones", 1000, "distinct phones")
	f.IntVar(&o.Concurrency, "concurrency", 32, "polls in flight")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to poll")
	f.IntVar(&o.Requests, "requests", 0, "stop after this many polls instead")
	f.StringVar(&o.Model, "model", "CX600", "the phones' model")
	f.StringVar(&o.Version, "version", "4.0.7577.4100", "the version the phones run")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON document")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		u, err := url.Parse(server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError{fmt.Errorf("--server %q: want http://host:port or https://host:port", server)}
		}
		if u.Scheme == "https" {
			if certsDir == "" {
				certsDir = os.Getenv(client.EnvCerts)
			}
			if certsDir == "" {
				certsDir = client.DefaultCerts
			}
			pool, err := certs.LoadCAPool(certsDir)
			if err != nil {
				return err
			}
			o.TLS = &tls.Config{RootCAs: pool, ServerName: "UCUpdates-R2"}
		}
		o.URL = strings.TrimRight(server, "/") + "/RequestHandler/ucdevice.upx"
		res, err := loadgen.Run(cmd.Context(), o)
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(res)
		}
		fmt.Fprintf(stdout, "%d polls in %.1fs: %d answered, %d busy (503), %d failed; %.0f polls/s; p50 %.1f ms, p99 %.1f ms\n",
			res.Requests, res.Elapsed.Seconds(), res.OK, res.Busy, res.Failed, res.PerSecond,
			float64(res.P50)/1e6, float64(res.P99)/1e6)
		if res.Failed > 0 {
			return fmt.Errorf("%d polls failed (neither answered nor 503)", res.Failed)
		}
		return nil
	}
	return cmd
}
