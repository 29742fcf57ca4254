package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/peer"
	"github.com/deviceupdate/deviceupdate/internal/phone"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// phoneIdentityFlags are the flags that say what a phone is.
type phoneIdentityFlags struct {
	id      phone.Identity
	version string
}

func (f *phoneIdentityFlags) add(cmd *cobra.Command, withDevice bool) {
	fs := cmd.Flags()
	if withDevice {
		fs.StringVar(&f.id.MAC, "mac", "", "the phone's MAC address, 00-04-F2-AA-BB-CC (--mac or --serial is required)")
		fs.StringVar(&f.id.Serial, "serial", "", "the phone's serial number")
		fs.StringVar(&f.id.UserID, "user-id", "", "the signed-in user, sip:alice@contoso.com")
	}
	fs.StringVar(&f.id.Model, "model", "", "the phones' model, such as CX600 (required)")
	fs.StringVar(&f.version, "version", "", "the CPE version the phones run, such as 4.0.7577.4100 (required)")
	fs.StringVar(&f.id.Brand, "brand", "Polycom", "the phones' brand")
	fs.StringVar(&f.id.Revision, "revision", "A", "the phones' hardware revision")
	fs.StringVar(&f.id.Locale, "locale", "ENU", "the phones' locale")
	fs.StringVar(&f.id.DeviceType, "device-type", "UCPhone", "the phones' device type")
}

func (f *phoneIdentityFlags) check() error {
	if f.id.Model == "" || f.version == "" {
		return usageError{fmt.Errorf("--model and --version are required")}
	}
	if _, err := deviceupdate.ParseVersion(f.version); err != nil {
		return usageError{fmt.Errorf("--version: %w", err)}
	}
	return nil
}

// loadPhoneTrust reads the publisher roots a phone trusts, as the server
// reads its trusted/ folder (certs.LoadTrust): a file, or every file of a
// folder, PEM or DER. A file it cannot use is logged at warn level.
func loadPhoneTrust(p string, logger *zap.Logger) (*x509.CertPool, error) {
	if p == "" {
		return nil, usageError{fmt.Errorf("--trust is required: the certificates (PEM or DER) of the publishers whose updates the phones accept")}
	}
	t, err := certs.LoadTrust(p)
	if err != nil {
		return nil, fmt.Errorf("--trust: %w", err)
	}
	for _, bad := range t.Problems {
		logger.Warn("a --trust file is not usable", zap.String("file", bad.Path), zap.Error(bad.Err))
	}
	if len(t.Certs) == 0 {
		why := ""
		if len(t.Problems) > 0 {
			why = ": " + t.Problems[0].Error()
		}
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "--trust %s holds no certificate%s", p, why)
	}
	return t.Pool, nil
}

// phoneTLS returns the TLS settings for server: trusting <certs>/ca.crt
// for https://, nil for http://.
func phoneTLS(server, certsDir string) (*tls.Config, error) {
	if server == "" {
		return nil, usageError{fmt.Errorf("--server is required")}
	}
	_, tlsConfig, err := trustFor(server, certsDir)
	return tlsConfig, err
}

func newPhoneRunCommand(stdout io.Writer) *cobra.Command {
	var idf phoneIdentityFlags
	var server, certsDir, stateDir, trustPath, sharing, peerAddr, broadcast, user, logLevel string
	var peerPort int
	var once, asJSON, external, passwordStdin, storeForward bool
	var linger time.Duration
	cmd := &cobra.Command{
		Use:   "run --server URL --mac M --model M --version V --trust PEM",
		Short: "Run one phone agent against a server",
		Long: `Run one phone against --server as a real phone would: it polls at boot,
then on the interval the answer gives (and again soon after a failure);
downloads what it is offered, resuming with Range after a cut; checks each
file's size and SHA-256, the catalog's signature against the publisher
roots in --trust (a PEM file or a folder of them) and that the catalog
lists every image; only then switches its running version; and uploads a
Diaglog .txt of what it did. Its state (the running version and the files)
is in --state, default ./phone-<MAC or serial>; once it has updated, the
state's version wins over --version.

When the answer turns peer sharing on (or --peer-sharing on), files come
through the phones around: discovery by UDP broadcast to --broadcast on
--peer-port, sharing over TCP on --peer-addr (default: the address this host
reaches the server from). With --external it polls the external endpoints
with HTTP Basic credentials (--user, password from --password-stdin).

With --once it polls at boot, updates if offered and exits: 0 when it ended
on the offered version or nothing was offered. Otherwise it runs until
SIGINT or SIGTERM.`,
		Example: "  deviceupdate phone run --server http://127.0.0.1:8080 --mac 00-04-F2-AA-BB-CC --model CX600 --version 4.0.7577.4100 --trust publisher.pem --once\n" +
			"  deviceupdate phone run --server http://ucupdates-r2:80 --mac 00-04-F2-AA-BB-CC --model CX600 --version 4.0.7577.4100 \\\n" +
			"      --trust /etc/phone/publishers --peer-addr 192.168.1.20 --broadcast 192.168.1.255 --state /var/lib/phone",
		Args: exactArgs(0, "no arguments"),
	}
	idf.add(cmd, true)
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "the service's base URL, http://host:port or https://host:port (required)")
	f.StringVar(&certsDir, "certs", "", "for https://, the folder with the ca.crt to trust (or $DEVICEUPDATE_CERTS; default ./certs)")
	f.StringVar(&stateDir, "state", "", "the phone's state folder (default ./phone-<MAC or serial>)")
	f.StringVar(&trustPath, "trust", "", "the publisher roots to trust: a certificate file (PEM or DER) or a folder of them (required)")
	f.StringVar(&sharing, "peer-sharing", "auto", "peer firmware sharing: auto (as the server says), on or off")
	f.StringVar(&peerAddr, "peer-addr", "", "the address to share on (default: the one that reaches the server)")
	f.IntVar(&peerPort, "peer-port", upx.PeerPort, "the port to share and discover on")
	f.StringVar(&broadcast, "broadcast", "255.255.255.255", "where discovery broadcasts go: an address, or address:port")
	f.BoolVar(&storeForward, "store-and-forward", false, "forward a file to children only once all of it is here (Cisco's way)")
	f.BoolVar(&once, "once", false, "poll at boot, update if offered, and exit")
	f.DurationVar(&linger, "linger", 0, "with --once, after updating go on sharing the update with peers this long before exiting")
	f.BoolVar(&asJSON, "json", false, "with --once, print the poll's result as one JSON document")
	f.BoolVar(&external, "external", false, "use the external endpoints (HTTPS, credentials)")
	f.StringVar(&user, "user", "", "with --external, the user to sign in as")
	f.BoolVar(&passwordStdin, "password-stdin", false, "with --external, read the password from the first line of standard input")
	f.StringVar(&logLevel, "log-level", "info", "log level on stderr: debug, info, warn or error")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := idf.check(); err != nil {
			return err
		}
		if idf.id.MAC == "" && idf.id.Serial == "" {
			return usageError{fmt.Errorf("--mac or --serial is required")}
		}
		mode, err := phone.ParseSharing(sharing)
		if err != nil {
			return usageError{err}
		}
		if external && (user == "" || !passwordStdin) {
			return usageError{fmt.Errorf("--external needs --user and --password-stdin")}
		}
		tlsConfig, err := phoneTLS(server, certsDir)
		if err != nil {
			return err
		}
		logger, err := newLogger(logLevel, cmd.ErrOrStderr())
		if err != nil {
			return usageError{err}
		}
		defer logger.Sync() //nolint:errcheck // stderr
		trust, err := loadPhoneTrust(trustPath, logger)
		if err != nil {
			return err
		}
		cfg := phone.Config{Server: server, TLS: tlsConfig, Identity: idf.id, Version: idf.version, StateDir: stateDir,
			Trust: trust, Sharing: mode, Logger: logger, External: external, User: user}
		if cfg.StateDir == "" {
			cfg.StateDir = "phone-" + strings.NewReplacer(":", "-").Replace(phoneOr(idf.id.MAC, idf.id.Serial))
		}
		if external {
			if cfg.Password, err = readPhonePassword(cmd.InOrStdin()); err != nil {
				return err
			}
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if mode != phone.SharingOff {
			node, err := newPhoneRunNode(server, peerAddr, broadcast, peerPort, storeForward, logger)
			if err != nil {
				return err
			}
			defer node.Close()
			cfg.Peer = node
		}
		if peerAddr != "" { // the phone's own address: its connections come from it too
			if cfg.LocalAddr, err = netip.ParseAddr(peerAddr); err != nil {
				return usageError{fmt.Errorf("--peer-addr %q: want an IP address", peerAddr)}
			}
		}
		agent, err := phone.New(cfg)
		if err != nil {
			return err
		}
		defer agent.Close()
		if !once {
			return agent.Run(ctx)
		}
		res, err := agent.Poll(ctx, "boot")
		if asJSON {
			if jerr := writeJSON(stdout, res); jerr != nil {
				return jerr
			}
		} else {
			fmt.Fprintln(stdout, summarizePhonePoll(res))
		}
		if err != nil {
			return err
		}
		if res.Offered != "" && res.Running != res.Offered {
			return deviceupdate.Errorf(deviceupdate.EINTERNAL, "offered %s but still running %s", res.Offered, res.Running)
		}
		if linger > 0 && res.Updated {
			// Go on sharing the update with the phones still fetching it.
			select {
			case <-ctx.Done():
			case <-time.After(linger):
			}
		}
		return nil
	}
	return cmd
}

func summarizePhonePoll(res phone.Result) string {
	switch {
	case res.Offered == "":
		return fmt.Sprintf("running %s; nothing offered", res.Running)
	case res.Updated:
		return fmt.Sprintf("updated from %s to %s: %s, %s; %s from the server, %d from peers",
			res.Previous, res.Running, plural(int64(res.Files), "file"), plural(res.FileBytes, "byte"), plural(res.ServerBytes, "byte"), res.PeerBytes)
	case res.Running == res.Offered:
		return fmt.Sprintf("running %s, the version offered", res.Running)
	}
	return fmt.Sprintf("offered %s, still running %s: %s", res.Offered, res.Running, res.Error)
}

func phoneOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// readPhonePassword reads a password from the first line of r.
func readPhonePassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read the password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageError{fmt.Errorf("--password-stdin: standard input holds no password")}
	}
	return line, nil
}

// newPhoneRunNode starts a peer node on peerAddr (default: the address that
// reaches server) with broadcast discovery.
func newPhoneRunNode(server, peerAddr, broadcast string, port int, storeForward bool, logger *zap.Logger) (*peer.Node, error) {
	if port <= 0 || port > 65535 {
		return nil, usageError{fmt.Errorf("--peer-port %d: want 1-65535", port)}
	}
	var addr netip.Addr
	if peerAddr != "" {
		a, err := netip.ParseAddr(peerAddr)
		if err != nil {
			return nil, usageError{fmt.Errorf("--peer-addr %q: want an IP address", peerAddr)}
		}
		addr = a
	} else {
		a, err := phoneAddrTowards(server)
		if err != nil {
			return nil, fmt.Errorf("find the address to share on (give --peer-addr): %w", err)
		}
		addr = a
	}
	bcast, err := netip.ParseAddrPort(broadcast)
	if err != nil {
		ip, perr := netip.ParseAddr(broadcast)
		if perr != nil {
			return nil, usageError{fmt.Errorf("--broadcast %q: want an address or address:port", broadcast)}
		}
		bcast = netip.AddrPortFrom(ip, uint16(port))
	}
	disc, err := peer.NewUDPBroadcast(netip.AddrPortFrom(addr, uint16(port)), bcast)
	if err != nil {
		return nil, fmt.Errorf("peer discovery on %s port %d: %w", addr, port, err)
	}
	node, err := peer.NewNode(peer.Config{Addr: addr, Port: port, Discovery: disc, StoreAndForward: storeForward, Logger: logger})
	if err != nil { // it closed disc
		return nil, fmt.Errorf("peer sharing on %s port %d: %w", addr, port, err)
	}
	return node, nil
}

// phoneAddrTowards returns the local address the host reaches server's host from.
func phoneAddrTowards(server string) (netip.Addr, error) {
	u, err := url.Parse(server)
	if err != nil {
		return netip.Addr{}, err
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	c, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), port)) // sends nothing
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

func newPhoneSimCommand(stdout io.Writer) *cobra.Command {
	var idf phoneIdentityFlags
	var o phone.SimOptions
	var server, certsDir, trustPath, sharing, wanRate, firstAddr, logLevel, failRate, failMode string
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "sim --server URL --count N --model M --version V --trust PEM [--duration D --poll-every I [--fail-rate F --fail-mode M]]",
		Short: "Simulate a site of phones: booting at once (peer sharing), or polling over time (rollouts)",
		Long: `Boot --count phones at once in this process, each a full phone agent (see
'phone run --help') on its own loopback address from --first-addr on, so the
server sees distinct phones, and wait until each has updated or failed. The
phones read from the server through one shared WAN link of --wan-rate bytes
per second (e.g. 4MiB; 0 for no limit); between them the LAN is unlimited.
With --peer-sharing auto they share files as the server's answer says; on and
off force it. Every phone shares on --peer-port of its address and discovers
the others by UDP on that port. The phones' files go to a temporary folder.

It prints one line, or with --json one document:
{"phones":N,"updated":U,"serverBytes":B,"peerBytes":P,"seconds":S,...}
where updated counts the phones that ended on the offered version with every
file verified, serverBytes the file bytes read from the server and peerBytes
the verified bytes received from peers. It exits non-zero unless every phone
updated.

With --duration D the phones poll over time instead of once: each first at a
random point of the first --poll-every I, then every I (±10%), until D has
passed; they install what they are offered as at boot (a busy server's
Retry-After is obeyed up to I: time runs faster here). --fail-rate F (0.2 or
20%) of them, chosen by a hash of --seed and their MAC (the same phones in
every run with the same flags; exactly round(F × count)), fail the first
update they are offered, as --fail-mode says:
  revert  install it, report the new version at the next poll, then go back
          to the old one and report that from then on (never taking it again)
  stuck   download and verify it but never switch: report the old version
  silent  take it and never poll again (a bricked phone)
With --crash-dump the reverting and stuck phones upload a Watson .dmp when
they fail. At the end it prints, per version, how many phones run it, how
many were ever offered it (the exposure) and when, after the boot, the first
and the last of those phones polled and were first offered it; the JSON
adds "polls", "failing", "failed", "silent" and "versions":[{"version",
"phones","offered","firstOfferedSeconds","lastFirstOfferedSeconds"}]. It exits non-zero when a poll or an update
failed for another reason than the simulated one.`,
		Example: "  deviceupdate phone sim --server http://127.0.0.1:8080 --count 32 --model CX600 --version 4.0.7577.4100 \\\n" +
			"      --trust publisher.pem --wan-rate 4MiB --peer-sharing on --json\n" +
			"  deviceupdate phone sim --server http://127.0.0.1:8080 --count 100 --model CX600 --version 4.0.7577.4100 \\\n" +
			"      --trust publisher.pem --peer-sharing off --duration 10m --poll-every 30s --fail-rate 20% --fail-mode revert",
		Args: exactArgs(0, "no arguments"),
	}
	idf.add(cmd, false)
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "the service's base URL, http://host:port or https://host:port (required)")
	f.StringVar(&certsDir, "certs", "", "for https://, the folder with the ca.crt to trust (or $DEVICEUPDATE_CERTS; default ./certs)")
	f.IntVar(&o.Count, "count", 8, "how many phones")
	f.StringVar(&trustPath, "trust", "", "the publisher roots to trust: a certificate file (PEM or DER) or a folder of them (required)")
	f.StringVar(&sharing, "peer-sharing", "auto", "peer firmware sharing: auto (as the server says), on or off")
	f.StringVar(&wanRate, "wan-rate", "0", "the WAN link's rate in bytes per second, e.g. 4194304 or 4MiB; 0 for no limit")
	f.BoolVar(&o.StoreAndForward, "store-and-forward", false, "forward a file to children only once all of it is here (Cisco's way)")
	f.StringVar(&firstAddr, "first-addr", "127.0.1.1", "the first phone's loopback address; the others follow")
	f.IntVar(&o.PeerPort, "peer-port", upx.PeerPort, "the port every phone shares and discovers on")
	f.StringVar(&o.StateDir, "state", "", "keep the phones' state folders here (default: a temporary folder, removed)")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long (after --duration)")
	f.DurationVar(&o.Duration, "duration", 0, "keep the phones polling this long (default: each polls once, at boot)")
	f.DurationVar(&o.PollEvery, "poll-every", time.Minute, "with --duration, how often each phone polls (±10%)")
	f.StringVar(&failRate, "fail-rate", "0", "with --duration, the share of phones that fail their update: 0.2 or 20%")
	f.StringVar(&failMode, "fail-mode", "revert", "how they fail: revert, stuck or silent")
	f.Uint64Var(&o.Seed, "seed", 1, "picks the failing phones and the poll times: the same seed, the same run")
	f.BoolVar(&o.CrashDump, "crash-dump", false, "failing phones upload a Watson .dmp (revert: after updating; stuck: when they do not switch)")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON document")
	f.StringVar(&logLevel, "log-level", "warn", "log level on stderr: debug, info, warn or error")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := idf.check(); err != nil {
			return err
		}
		if o.Count <= 0 {
			return usageError{fmt.Errorf("--count %d: want a positive number", o.Count)}
		}
		if err := simFailFlags(cmd, &o, failRate, failMode); err != nil {
			return usageError{err}
		}
		var err error
		if o.Sharing, err = phone.ParseSharing(sharing); err != nil {
			return usageError{err}
		}
		rate, err := parseSize(strings.TrimSuffix(strings.TrimSuffix(wanRate, "/s"), "ps"))
		if err != nil {
			return usageError{fmt.Errorf("--wan-rate %q: want bytes per second, such as 4194304 or 4MiB", wanRate)}
		}
		o.WANRate = float64(rate)
		if o.FirstAddr, err = netip.ParseAddr(firstAddr); err != nil {
			return usageError{fmt.Errorf("--first-addr %q: want an address in 127.0.0.0/8", firstAddr)}
		}
		if o.PeerPort <= 0 || o.PeerPort > 65535 {
			return usageError{fmt.Errorf("--peer-port %d: want 1-65535", o.PeerPort)}
		}
		if o.TLS, err = phoneTLS(server, certsDir); err != nil {
			return err
		}
		if o.Logger, err = newLogger(logLevel, cmd.ErrOrStderr()); err != nil {
			return usageError{err}
		}
		defer o.Logger.Sync() //nolint:errcheck // stderr
		if o.Trust, err = loadPhoneTrust(trustPath, o.Logger); err != nil {
			return err
		}
		o.Server, o.Identity, o.Version = server, idf.id, idf.version
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		ctx, cancel := context.WithTimeout(ctx, o.Duration+timeout)
		defer cancel()
		res, err := phone.Sim(ctx, o)
		if err != nil && res.Seconds == 0 {
			return err
		}
		switch {
		case asJSON:
			if jerr := writeJSON(stdout, res); jerr != nil {
				return jerr
			}
		case o.Duration > 0:
			if terr := printSimFleet(stdout, o, res); terr != nil {
				return terr
			}
		default:
			fmt.Fprintf(stdout, "%d of %s updated to %s in %.1fs; %s from the server (%.2f × the update's %d), %d from peers\n",
				res.Updated, plural(int64(res.Phones), "phone"), phoneOr(res.Offered, "(nothing offered)"), res.Seconds, plural(res.ServerBytes, "byte"),
				float64(res.ServerBytes)/float64(max(res.FileBytes, 1)), res.FileBytes, res.PeerBytes)
		}
		switch {
		case err != nil:
			return err
		case o.Duration > 0 && len(res.Errors) > 0:
			return fmt.Errorf("polls or updates failed: %s", strings.Join(res.Errors, "; "))
		case o.Duration > 0:
		case res.Updated < res.Phones:
			return fmt.Errorf("%d of %s did not update: %s", res.Phones-res.Updated, plural(int64(res.Phones), "phone"), strings.Join(res.Errors, "; "))
		}
		return nil
	}
	return cmd
}

// simFailFlags checks --duration, --poll-every and the failure flags of
// phone sim into o.
func simFailFlags(cmd *cobra.Command, o *phone.SimOptions, failRate, failMode string) error {
	var err error
	if o.FailRate, err = phone.ParseFailRate(failRate); err != nil {
		return fmt.Errorf("--fail-rate: %w", err)
	}
	if o.FailMode, err = phone.ParseFailMode(failMode); err != nil {
		return fmt.Errorf("--fail-mode: %w", err)
	}
	f := cmd.Flags()
	switch {
	case o.Duration < 0:
		return fmt.Errorf("--duration %s: want a positive duration", o.Duration)
	case o.PollEvery <= 0:
		return fmt.Errorf("--poll-every %s: want a positive duration", o.PollEvery)
	case o.Duration == 0 && (f.Changed("poll-every") || o.FailRate > 0):
		return fmt.Errorf("--poll-every and --fail-rate need --duration: the phones poll over time")
	case o.FailRate == 0 && (f.Changed("fail-mode") || o.CrashDump):
		return fmt.Errorf("--fail-mode and --crash-dump need --fail-rate")
	}
	return nil
}

// printSimFleet prints a simulation over time: one line, then per version
// the phones running it at the end, those offered it, and when.
func printSimFleet(w io.Writer, o phone.SimOptions, res phone.SimResult) error {
	fmt.Fprintf(w, "%s polled every %s for %s: %s; %d failing (%s), %d failed, %d silent; %s from the server, %d from peers\n",
		plural(int64(res.Phones), "phone"), o.PollEvery, o.Duration, plural(int64(res.Polls), "poll"), res.Failing, phoneOr(res.FailMode, "none"),
		res.Failed, res.Silent, plural(res.ServerBytes, "byte"), res.PeerBytes)
	t := newTable(w, "VERSION", "PHONES", "OFFERED", "FIRST OFFERED", "LAST FIRST OFFERED")
	for _, v := range res.Versions {
		first, last := "-", "-"
		if v.FirstOfferedSeconds != nil {
			first, last = fmt.Sprintf("%.1fs", *v.FirstOfferedSeconds), fmt.Sprintf("%.1fs", *v.LastFirstOfferedSeconds)
		}
		t.row(v.Version, strconv.Itoa(v.Phones), strconv.Itoa(v.Offered), first, last)
	}
	return t.flush()
}
