package main

import (
	"crypto/tls"
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
	return newGroupCommand("phone", "Act as phones against a server", newPhoneLoadCommand(stdout), newPhoneDownloadCommand(stdout), newPhoneRunCommand(stdout), newPhoneSimCommand(stdout))
}

// trustFor returns the TLS settings that trust <certs>/ca.crt, for an
// https:// server; nil for http://.
func trustFor(server, certsDir string) (*url.URL, *tls.Config, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, usageError{fmt.Errorf("%q: want http://host:port... or https://host:port...", server)}
	}
	if u.Scheme != "https" {
		return u, nil, nil
	}
	if certsDir == "" {
		certsDir = os.Getenv(client.EnvCerts)
	}
	if certsDir == "" {
		certsDir = client.DefaultCerts
	}
	pool, err := certs.LoadCAPool(certsDir)
	if err != nil {
		return nil, nil, err
	}
	return u, &tls.Config{RootCAs: pool, ServerName: "UCUpdates-R2"}, nil
}

func newPhoneDownloadCommand(stdout io.Writer) *cobra.Command {
	var o loadgen.DownloadOptions
	var certsDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "download URL",
		Short: "Download one file as many phones at once",
		Long: `Download URL whole with --clients clients at once, each on its own
connection, as a site's phones do after an approval; a client answered 503
waits its Retry-After (at most --max-retry-wait) and tries again. Reports
the downloads completed, the 503s and MiB/s.`,
		Example: "  deviceupdate phone download --clients 1000 http://127.0.0.1:8080/DeviceUpdateFiles_Int/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt",
		Args:    exactArgs(1, "one URL"),
	}
	f := cmd.Flags()
	f.StringVar(&certsDir, "certs", "", "folder with the ca.crt to trust (or $"+client.EnvCerts+"; default ./certs)")
	f.IntVar(&o.Clients, "clients", 100, "clients downloading at once")
	f.DurationVar(&o.MaxRetryWait, "max-retry-wait", 0, "wait at most this long after a 503 (default: its Retry-After)")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON document")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		_, tlsConfig, err := trustFor(args[0], certsDir)
		if err != nil {
			return err
		}
		o.URL, o.TLS = args[0], tlsConfig
		res, err := loadgen.Download(cmd.Context(), o)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, res)
		}
		fmt.Fprintf(stdout, "%d of %s downloaded %d MiB in %.1fs (%.0f MiB/s); %s, %d failed\n",
			res.Completed, plural(int64(res.Clients), "client"), res.Bytes>>20, res.Seconds, res.MiBPerSec, plural(res.Busy, "busy (503) answer"), res.Failed)
		if res.Failed > 0 {
			return fmt.Errorf("%s failed; the first: %s", plural(res.Failed, "download"), res.Error)
		}
		return nil
	}
	return cmd
}

func newPhoneLoadCommand(stdout io.Writer) *cobra.Command {
	var o loadgen.Options
	var servers []string
	var certsDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "load --server URL",
		Short: "Poll a server as many distinct phones at once (a boot storm)",
		Long: `Replay polls from --phones distinct phones (each its own MAC) over --concurrency
keep-alive connections for --duration (or --requests polls) against the
internal poll endpoint of --server, and report polls per second, how many were
answered 503 (busy), and the latency. With --rate, polls start at that rate
whatever the answers' speed (a boot storm), latency counts from each poll's
scheduled start, and --new-connections gives each its own connection.
Repeat --server to spread the polls evenly over a pool's front ends, in turn.
HTTPS servers are trusted through <certs>/ca.crt.

The server records every phone that polls in its inventory, these too: after
a test, 'deviceupdate device list' shows them (model --model, MAC addresses
02-00-...), and 'deviceupdate device prune --not-seen AGE' forgets the devices
not seen for AGE, such as a finished test's phones.`,
		Example: "  deviceupdate phone load --server http://127.0.0.1:8080 --phones 10000 --concurrency 64 --duration 30s\n" +
			"  deviceupdate phone load --server http://127.0.0.1:8080 --phones 100000 --requests 100000 --rate 1667 --new-connections --concurrency 4096",
		Args: exactArgs(0, "no arguments"),
	}
	f := cmd.Flags()
	f.StringArrayVar(&servers, "server", nil, "server base URL, http:// or https:// (required; repeat it for a pool's front ends)")
	f.StringVar(&certsDir, "certs", "", "folder with the ca.crt to trust (or $"+client.EnvCerts+"; default ./certs)")
	f.IntVar(&o.Phones, "phones", 1000, "distinct phones")
	f.IntVar(&o.Concurrency, "concurrency", 32, "polls in flight")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to poll")
	f.IntVar(&o.Requests, "requests", 0, "stop after this many polls instead")
	f.Float64Var(&o.Rate, "rate", 0, "start this many polls per second whatever the answers' speed (default: as fast as --concurrency allows)")
	f.BoolVar(&o.NewConnections, "new-connections", false, "a new connection for every poll, as distinct phones have")
	f.StringVar(&o.Model, "model", "CX600", "the phones' model")
	f.StringVar(&o.Version, "version", "4.0.7577.4100", "the version the phones run")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON document")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if len(servers) == 0 {
			servers = []string{""} // trustFor names the missing flag
		}
		for _, server := range servers {
			_, tlsConfig, err := trustFor(server, certsDir)
			if err != nil {
				return err
			}
			if tlsConfig != nil {
				o.TLS = tlsConfig
			}
			o.URLs = append(o.URLs, strings.TrimRight(server, "/")+"/RequestHandler/ucdevice.upx")
		}
		res, err := loadgen.Run(cmd.Context(), o)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, res)
		}
		fmt.Fprintf(stdout, "%s in %.1fs: %d answered, %d busy (503), %d failed, %d dropped; %.0f polls/s; p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
			plural(res.Requests, "poll"), res.Seconds, res.OK, res.Busy, res.Failed, res.Dropped, res.PerSecond,
			res.P50Seconds*1e3, res.P99Seconds*1e3, res.MaxSeconds*1e3)
		if res.Failed+res.Dropped > 0 {
			return fmt.Errorf("%s failed (neither answered nor 503 with Retry-After), %d not started (--concurrency in flight)", plural(res.Failed, "poll"), res.Dropped)
		}
		return nil
	}
	return cmd
}
