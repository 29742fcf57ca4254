package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/backup"
	"github.com/deviceupdate/deviceupdate/internal/blobstore"
	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/devlogs"
	"github.com/deviceupdate/deviceupdate/internal/discovery"
	"github.com/deviceupdate/deviceupdate/internal/handler"
	"github.com/deviceupdate/deviceupdate/internal/importer"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
	"github.com/deviceupdate/deviceupdate/internal/pgstore"
	"github.com/deviceupdate/deviceupdate/internal/poll"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// Server timeouts. Downloads of large images may take long, so there is
// no whole-request timeout; a client must send its headers (and finish a
// TLS handshake, which net/http bounds by readHeaderTimeout too) promptly
// and an idle connection is closed. The handlers bound slow bodies and
// stalled downloads (internal/handler/slow.go, --stall-timeout).
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 30 * time.Second
)

func newServeCommand(stdout, stderr io.Writer) *cobra.Command {
	cfg := DefaultConfig()
	var configFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the service",
		Long: `Run the device update service: an HTTPS listener for phones, the admin API and
metrics, and a plain-HTTP listener for internal phones; optionally an HTTPS
listener to publish to the internet that serves external phones only
(--external), and a private plain-HTTP listener of /metrics (--metrics). On the first start it
creates what --certs lacks: a CA, a server certificate for UCUpdates-R2 and
UCUpdates-R2.<domain>, and the admin token. SIGINT or SIGTERM stops it cleanly.`,
		Example: `  deviceupdate serve --domain contoso.com
  deviceupdate serve --domain contoso.com --external 203.0.113.5:443 --metrics 10.0.0.5:9100
  deviceupdate serve --https 127.0.0.1:8443 --http 127.0.0.1:8080 --domain contoso.com
  deviceupdate serve --config /etc/deviceupdate.yaml`,
		Args: exactArgs(0, "no arguments"),
	}
	apply := cfg.bindFlags(cmd.Flags())
	cmd.Flags().StringVar(&configFile, "config", "", "YAML file of settings (same keys as these flags; flags win)")
	// For tests that must see a stalled client cut off in seconds.
	stall := cmd.Flags().Duration("stall-timeout", handler.DefaultStallTimeout, "how long a download may make no progress")
	_ = cmd.Flags().MarkHidden("stall-timeout")
	// For simulations of staged rollouts that compress hours into seconds
	// (scripts/rollout-table.sh): phone sim polls every few seconds, which
	// PollIntervalSeconds (an hour at least) cannot say.
	rolloutEvery := cmd.Flags().Duration("rollout-every", defaultRolloutEvery, "how often staged rollouts are judged")
	rolloutPoll := cmd.Flags().Duration("rollout-poll-interval", 0, "the poll interval staged rollouts judge devices by (default: the PollIntervalSeconds setting)")
	rolloutHour := cmd.Flags().Duration("rollout-hour", time.Hour, "the period a staged rollout's --max-per-hour counts new offers over")
	_ = cmd.Flags().MarkHidden("rollout-every")
	_ = cmd.Flags().MarkHidden("rollout-poll-interval")
	_ = cmd.Flags().MarkHidden("rollout-hour")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c := DefaultConfig()
		if configFile != "" {
			if err := c.LoadFile(configFile); err != nil {
				return err
			}
		}
		apply(&c)
		if err := c.Validate(); err != nil {
			return err
		}
		if *rolloutEvery <= 0 || *rolloutPoll < 0 || *rolloutHour <= 0 {
			return usageError{fmt.Errorf("--rollout-every %s, --rollout-poll-interval %s, --rollout-hour %s: want positive durations", *rolloutEvery, *rolloutPoll, *rolloutHour)}
		}
		logger, err := newLogger(c.LogLevel, stderr)
		if err != nil {
			return err
		}
		defer func() { _ = logger.Sync() }()

		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		m := NewMain(c, logger, stdout)
		m.StallTimeout = *stall
		m.RolloutEvery, m.RolloutPollInterval, m.RolloutHour = *rolloutEvery, *rolloutPoll, *rolloutHour
		if err := m.Run(ctx); err != nil {
			_ = m.Close()
			return err
		}
		var serveErr error
		select {
		case <-ctx.Done():
			logger.Info("stopping", zap.String("reason", "signal"))
		case serveErr = <-m.Failed():
			logger.Error("listener failed", zap.Error(serveErr))
		}
		if err := m.Close(); err != nil {
			return err
		}
		return serveErr
	}
	return cmd
}

func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	// Buffered: a line per request must not cost a write per request under
	// a boot storm. Lines reach the output within a second, and all of them
	// on Sync, which serve calls when it stops.
	out := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(w), Size: 256 << 10, FlushInterval: time.Second}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), out, lvl)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))), nil
}

// Main is a running service: its listeners, store and handlers. Tests
// build one on free ports; `serve` builds one from flags.
type Main struct {
	Config Config
	Logger *zap.Logger
	Stdout io.Writer // where files created at start are announced
	// StallTimeout bounds slow clients (handler.Config.StallTimeout); 0
	// means the default.
	StallTimeout time.Duration
	// RolloutEvery is how often staged rollouts are judged; 0 means every
	// minute.
	RolloutEvery time.Duration
	// RolloutPollInterval is the poll interval staged rollouts judge
	// devices by; 0 means the PollIntervalSeconds setting.
	RolloutPollInterval time.Duration
	// RolloutHour is the period --max-per-hour counts over (the hidden
	// flag --rollout-hour; an hour when zero).
	RolloutHour time.Duration

	db       store.Store
	bolt     *store.DB   // db with the embedded store, else nil
	pg       *pgstore.DB // db with --store, else nil
	files    *updatestore.Store
	trail    *audit.Trail
	recorder *inventory.Recorder
	logs     *devlogs.Store
	servers  []*listener
	dns      *discovery.Server // the discovery responder; nil without --dns
	failed   chan error
	wg       sync.WaitGroup

	rolloutStop chan struct{} // closed by Close to stop runRollouts
}

// openFileStore opens the pool's file store that --files names; nil
// without --files.
func (m *Main) openFileStore(ctx context.Context) (blobstore.Store, error) {
	loc, _, err := m.Config.filesLocation()
	if err != nil || m.Config.Files == "" {
		return nil, err
	}
	remote, err := blobstore.Open(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("--files %s: %w", loc, err)
	}
	return remote, nil
}

// openFiles opens the update store: under --data, or in the pool's file
// store (remote, when not nil), read through a local cache. Device logs
// are in the file store too in a pool (--store), else under --data
// (openLogs).
func (m *Main) openFiles(ctx context.Context, remote blobstore.Store) error {
	c := m.Config
	if remote == nil {
		m.files = updatestore.New(c.Data, m.Logger)
		return nil
	}
	_, cacheBytes, err := c.filesLocation()
	if err != nil {
		return err
	}
	o := updatestore.SharedOptions{CacheBytes: cacheBytes, Logger: m.Logger}
	if m.pg != nil {
		o.Locker = m.pg.Locker(lockFiles)
	}
	m.files, err = updatestore.NewShared(ctx, c.Data, remote, o)
	if err != nil {
		return err
	}
	m.Logger.Info("update files in a file store", zap.String("files", c.Files), zap.Int64("cache_bytes", cacheBytes),
		zap.String("cache", filepath.Join(c.Data, updatestore.CacheDir)))
	return nil
}

// openLogs opens the device logs: in a pool (--store), indexed in its
// database and kept in its file store (remote), with the clean-up and
// the quota a round of one front end at a time; else under --data.
func (m *Main) openLogs(o devlogs.Options, remote blobstore.Store) error {
	o.Dir = filepath.Join(m.Config.Data, "Logs", "Client")
	if m.pg != nil && remote != nil {
		o.Index, o.Blobs, o.Locks = m.pg, remote, m.pg
		m.Logger.Info("device logs in the file store, indexed in the pool's database", zap.String("files", m.Config.Files))
		if entries, _ := os.ReadDir(o.Dir); slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() != devlogs.StagingDir }) {
			m.Logger.Warn("--data holds a single server's device logs, which a front end of a pool does not serve",
				zap.String("dir", o.Dir), zap.String("fix", "move them into the pool with `deviceupdate migrate`, or give this front end a --data of its own"))
		}
	} else if remote != nil {
		m.Logger.Info("device logs stay on this server", zap.String("dir", o.Dir),
			zap.String("why", "a single server's store (no --store) indexes them in its folder"))
	}
	var err error
	m.logs, err = devlogs.Open(o)
	return err
}

type listener struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

// NewMain returns a service that Run will start.
func NewMain(cfg Config, logger *zap.Logger, stdout io.Writer) *Main {
	return &Main{Config: cfg, Logger: logger, Stdout: stdout, failed: make(chan error, 2)}
}

// Run binds the listeners, makes sure the certificates exist, opens the
// store and starts serving; it returns once the service answers. Every
// check comes before the first write (binding, then the certificates),
// so that a refused start leaves no files behind.
func (m *Main) Run(ctx context.Context) error {
	c := m.Config
	startedAt := time.Now()
	if err := m.listen(handler.ListenerHTTPS, c.HTTPS, "--https"); err != nil {
		return err
	}
	for _, l := range []struct{ name, addr, flag string }{
		{handler.ListenerHTTP, c.HTTP, "--http"}, {handler.ListenerExternal, c.External, "--external"}, {handler.ListenerMetrics, c.Metrics, "--metrics"},
	} {
		if l.addr == "" {
			continue
		}
		if err := m.listen(l.name, l.addr, l.flag); err != nil {
			return err
		}
	}
	if err := m.listenDNS(); err != nil {
		return err
	}

	// Check the certificates before the store is opened or created, and
	// create what they lack after: a refused start writes nothing.
	if err := certs.Check(c.Certs); err != nil {
		return fmt.Errorf("certificates in %s: %w", c.Certs, err)
	}
	// The pool's file store, if any, is reached before anything is
	// written: a wrong --files or missing credentials refuse the start.
	remoteFiles, err := m.openFileStore(ctx)
	if err != nil {
		return err
	}
	// What only the embedded store has (the inventory's index, the file
	// trail, the file a backup copies) is used on m.bolt, the rest
	// through m.db.
	schema, err := m.openStore(ctx)
	if err != nil {
		return err
	}
	hosts, ips := m.identity()
	created, err := certs.Ensure(c.Certs, certs.Options{Domain: c.Domain, Hosts: hosts, IPs: ips})
	if err != nil {
		return fmt.Errorf("certificates in %s: %w", c.Certs, err)
	}
	m.announce(created)
	if c.Domain == "" {
		m.Logger.Warn("no --domain set: phones that discover the service as UCUpdates-R2.<domain> will not match the certificate")
	}
	serverCert, err := certs.NewReloader(c.Certs, certs.ReloaderOptions{Logger: m.Logger, Loaded: m.warnMissingNames})
	if err != nil {
		return fmt.Errorf("certificates in %s: %w", c.Certs, err)
	}
	token, err := certs.ReadToken(c.Certs)
	if err != nil {
		return err
	}

	// A pool's trail is a table of its database, which pgstore appends
	// to; the embedded store's is a file under --data.
	if m.bolt != nil {
		m.trail, err = audit.Open(c.Data, nil)
		if err != nil {
			return err
		}
		m.bolt.SetTrail(m.trail)
	}
	if err := m.openFiles(ctx, remoteFiles); err != nil {
		return err
	}
	if err := m.reconcileFiles(ctx); err != nil {
		return err
	}
	im := &importer.Importer{DB: m.db, Logger: m.Logger, Files: m.files, CertsDir: c.Certs}
	if trust, err := im.Trust(); err != nil {
		m.Logger.Warn("trusted publishers not readable", zap.Error(err))
	} else {
		m.Logger.Info("trusted publishers", zap.String("folder", filepath.Join(c.Certs, certs.TrustedDir)), zap.Int("certificates", len(trust.Certs)))
	}
	host, _ := os.Hostname()
	reqLog, err := audit.OpenRequestLog(c.Data, host)
	if err != nil {
		return err
	}
	m.recorder = inventory.New(m.db, reqLog, m.Logger, inventory.DefaultInterval)
	if m.bolt != nil {
		go func(bdb *store.DB) {
			// The console's dashboard and filtered device lists read the
			// inventory's index; reading it now spares their first request.
			if err := bdb.BuildDeviceIndex(); err != nil {
				m.Logger.Warn("index the inventory for the console; the first dashboard will try again", zap.Error(err))
			}
		}(m.bolt)
	}
	svc := &admin.Service{DB: m.db, Inventory: m.recorder, Logger: m.Logger, PollInterval: m.RolloutPollInterval}
	if err := svc.CheckTrail(); err != nil {
		return err
	}
	// admins serves the admin API's tokens and the console's sessions:
	// one, so that sign-ins share one throttle.
	admins := admin.NewAdmins(svc)
	polls := &poll.Service{DB: m.db, Recorder: m.recorder, Files: m.files, CapPeriod: m.RolloutHour}
	if m.pg != nil {
		// A pool's staged rollouts decide on the offers of every node.
		polls.Offers = m.pg
	}
	if err := m.files.Create(); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "deviceupdate_audit_trail_broken",
			Help: "1 when the admin audit trail's hash chain was found broken (an entry altered, removed or moved, or the trail ending before the head the store keeps) at start or at the last read of the trail, else 0.",
		}, func() float64 {
			if m.db.AuditBroken() != nil {
				return 1
			}
			return 0
		}),
	)
	reg.MustRegister(m.recorder.Collectors()...)
	reg.MustRegister(m.files.Collectors()...)
	limits, err := c.Limits()
	if err != nil {
		return err
	}
	m.limitInventory(limits.MaxDevices, reg)
	err = m.openLogs(devlogs.Options{
		Settings: polls.LogSettings, Quota: limits.LogQuota,
		Logger: m.Logger, Registry: reg, Audit: svc.Record, Recorder: m.recorder,
	}, remoteFiles)
	if err != nil {
		return err
	}
	info := deviceupdate.ServerInfo{
		Version: deviceupdate.BuildVersion(), Domain: c.Domain, StartedAt: startedAt.UTC(), SchemaVersion: schema,
		Listeners: m.listenerAddrs(), TLSMin: c.TLSMin,
	}
	var backups deviceupdate.BackupService = poolBackup{db: m.db, files: c.Files}
	if m.bolt != nil {
		backups = &backup.Service{
			DB: m.bolt, Trail: m.trail, Imports: im, Inventory: m.recorder,
			DataDir: c.Data, CertsDir: c.Certs, Info: info, Logger: m.Logger, SharedFiles: c.Files,
		}
	}
	con, err := m.newConsole(admins, svc, im)
	if err != nil {
		return err
	}
	h, err := handler.New(handler.Config{
		Console:               con,
		Logger:                m.Logger,
		Logs:                  m.logs,
		PollLimit:             limits.Polls,
		DownloadLimit:         limits.Downloads,
		UploadLimit:           limits.Uploads,
		Registry:              reg,
		Store:                 m.db,
		AdminToken:            token,
		Packages:              im,
		MaxPackageSize:        importer.DefaultMaxPackageSize,
		Rules:                 svc,
		Rollouts:              svc,
		Audit:                 svc,
		TestDevices:           svc,
		Config:                svc,
		Files:                 im,
		Polls:                 polls,
		Devices:               svc,
		Sites:                 svc,
		DeviceConfig:          svc,
		Users:                 svc,
		Admins:                admins,
		HTTPPort:              m.port(handler.ListenerHTTP),
		HTTPSPort:             m.port(handler.ListenerHTTPS),
		ExternalPort:          m.port(handler.ListenerExternal),
		Info:                  info,
		Backup:                backups,
		StallTimeout:          m.StallTimeout,
		ExternalPollLimit:     limits.ExternalPolls,
		ExternalDownloadLimit: limits.ExternalDownloads,
		ExternalUploadLimit:   limits.ExternalUploads,
	})
	if err != nil {
		return err
	}

	// A renewed server.crt and server.key (`deviceupdate certs renew`) are
	// served from the next handshake on, within a second.
	tlsMin, err := c.tlsMinVersion()
	if err != nil {
		return err
	}
	tlsConfig := newTLSConfig(tlsMin)
	tlsConfig.GetCertificate = serverCert.GetCertificate
	if tlsMin < tls.VersionTLS12 {
		m.Logger.Warn("tls versions below 1.2 accepted", zap.String("tls_min", c.TLSMin),
			zap.String("why", "--tls-min admits Lync Phone Edition phones, with CBC suites an attacker on the path may exploit"),
			zap.String("fix", "drop --tls-min once no such phone is left"))
	}
	// External phones may sign in with a certificate the service CA issued
	// (`deviceupdate certs client`); phones without one still connect. A
	// client certificate never stands in for the admin token.
	if pool, err := certs.LoadCAPool(c.Certs); err != nil {
		m.Logger.Warn("client certificates are not accepted: no usable CA certificate", zap.Error(err))
	} else {
		tlsConfig.ClientAuth = tls.VerifyClientCertIfGiven
		tlsConfig.ClientCAs = pool
	}
	handlers := map[string]http.Handler{
		handler.ListenerHTTPS: h.Secure(), handler.ListenerHTTP: h.Internal(),
		handler.ListenerExternal: h.External(), handler.ListenerMetrics: h.Metrics(),
	}
	for _, l := range m.servers {
		l.srv = m.newHTTPServer(l.name, handlers[l.name])
		tlsOn := l.name == handler.ListenerHTTPS || l.name == handler.ListenerExternal
		if tlsOn {
			// A copy each: ServeTLS adds its protocols to the config it
			// is given, which two listeners must not share.
			l.srv.TLSConfig = tlsConfig.Clone()
		}
		m.wg.Add(1)
		go func(l *listener) {
			defer m.wg.Done()
			var err error
			if tlsOn {
				err = l.srv.ServeTLS(l.ln, "", "")
			} else {
				err = l.srv.Serve(l.ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				m.failed <- fmt.Errorf("%s listener %s: %w", l.name, l.ln.Addr(), err)
			}
		}(l)
		m.Logger.Info("listening", zap.String("listener", l.name), zap.String("addr", l.ln.Addr().String()))
	}
	if err := m.startDNS(reg); err != nil {
		return err
	}
	m.runRollouts(svc, reg)
	m.Logger.Info("started",
		zap.String("version", deviceupdate.BuildVersion()),
		zap.String("data", c.Data), zap.String("certs", c.Certs), zap.String("domain", c.Domain), zap.String("store", m.storeName()),
		zap.Duration("startup", time.Since(startedAt)))
	_ = m.Logger.Sync() // the log is buffered: show the start at once
	return nil
}

// port returns the bound port of the named listener, or "".
func (m *Main) port(name string) string {
	if a := m.Addr(name); a != nil {
		_, p, _ := net.SplitHostPort(a.String())
		return p
	}
	return ""
}

// Failed reports a listener that stopped serving on its own.
func (m *Main) Failed() <-chan error { return m.failed }

// Addr returns the bound address of the named listener, or nil.
func (m *Main) Addr(name string) net.Addr {
	for _, l := range m.servers {
		if l.name == name {
			return l.ln.Addr()
		}
	}
	return nil
}

// Close stops the listeners, lets in-flight requests finish (up to
// shutdownTimeout), and closes the store.
func (m *Main) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if err := m.stopDNS(ctx); err != nil {
		errs = append(errs, err)
	}
	if m.rolloutStop != nil {
		close(m.rolloutStop)
		m.rolloutStop = nil
	}
	for _, l := range m.servers {
		if l.srv == nil {
			_ = l.ln.Close()
			continue
		}
		if err := l.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s listener: %w", l.name, err))
		}
	}
	m.wg.Wait()
	m.servers = nil
	if m.files != nil {
		if err := m.files.Close(); err != nil {
			errs = append(errs, err)
		}
		m.files = nil
	}
	if m.logs != nil {
		if err := m.logs.Close(); err != nil {
			errs = append(errs, err)
		}
		m.logs = nil
	}
	if m.recorder != nil {
		if err := m.recorder.Close(); err != nil {
			errs = append(errs, err)
		}
		m.recorder = nil
	}
	if m.trail != nil {
		if err := m.trail.Close(); err != nil {
			errs = append(errs, err)
		}
		m.trail = nil
	}
	if m.db != nil {
		if err := m.db.Close(); err != nil {
			errs = append(errs, err)
		}
		m.db = nil
		m.Logger.Info("stopped")
	}
	return errors.Join(errs...)
}

func (m *Main) listen(name, addr, flag string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return listenError(name, addr, flag, err)
	}
	m.servers = append(m.servers, &listener{name: name, ln: ln})
	return nil
}

// listenError says why a port could not be bound and what to do.
func listenError(name, addr, flag string, err error) error {
	_, port, _ := net.SplitHostPort(addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s listener %s: address already in use; stop what holds it (ss -ltnp 'sport = :%s') or choose another with %s", name, addr, port, flag)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s listener %s: permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep deviceupdate), or choose a higher port with %s", name, addr, flag)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s listener %s: no interface of this host has that address; fix %s", name, addr, flag)
	default:
		return fmt.Errorf("%s listener %s: %w; fix %s", name, addr, err, flag)
	}
}

func (m *Main) newHTTPServer(name string, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          zap.NewStdLog(m.Logger.With(zap.String("listener", name))),
	}
}

// identity returns the names and addresses the server certificate should
// carry: the host name and the listen addresses.
func (m *Main) identity() (hosts []string, ips []net.IP) {
	var listen []net.IP
	for _, l := range m.servers {
		if tcp, ok := l.ln.Addr().(*net.TCPAddr); ok {
			listen = append(listen, tcp.IP)
		}
	}
	hosts, ips, err := certIdentity(m.Config.Domain, listen)
	if err != nil {
		m.Logger.Warn("list interface addresses", zap.Error(err))
	}
	return hosts, ips
}

// certIdentity returns the host name (also qualified with the domain) and
// the given addresses, with a wildcard address standing for every address
// of the host's interfaces.
func certIdentity(domain string, listen []net.IP) (hosts []string, ips []net.IP, err error) {
	if h, err := os.Hostname(); err == nil && h != "" {
		names := []string{h}
		if domain != "" && !strings.Contains(h, ".") {
			names = append(names, h+"."+domain)
		}
		// A name that is not a DNS name (an underscore, say) is left out:
		// no client could verify it, and certs.Ensure refuses it.
		for _, n := range names {
			if deviceupdate.ValidateDNSName(n) == nil {
				hosts = append(hosts, n)
			}
		}
	}
	for _, ip := range listen {
		if !ip.IsUnspecified() {
			ips = append(ips, ip)
			continue
		}
		addrs, aerr := net.InterfaceAddrs()
		if aerr != nil {
			err = aerr
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLinkLocalUnicast() {
				ips = append(ips, ipn.IP)
			}
		}
	}
	return hosts, ips, err
}

// announce tells the operator which files the start created.
func (m *Main) announce(created []string) {
	if len(created) == 0 {
		return
	}
	what := map[string]string{
		certs.CACertFile:     "CA certificate: phones and admin clients trust this",
		certs.CAKeyFile:      "CA private key: keep it secret, or offline",
		certs.ServerCertFile: "server certificate",
		certs.ServerKeyFile:  "server private key",
		certs.TokenFile:      "admin API token, mode 0600",
	}
	for _, p := range created {
		fmt.Fprintf(m.Stdout, "created %s (%s)\n", p, what[filepath.Base(p)])
	}
	m.Logger.Info("certificates created", zap.Strings("files", created))
}

// warnMissingNames logs when the served certificate lacks a discovery name,
// as an operator-supplied one might, with the fix: phones that find the
// service by DNS would refuse it.
func (m *Main) warnMissingNames(leaf *x509.Certificate) {
	var missing *certs.NamesError
	if errors.As(certs.CheckNames(leaf, m.Config.Certs, m.Config.Domain), &missing) {
		m.Logger.Warn("server certificate lacks a discovery name; phones finding the service by DNS will refuse it",
			zap.Strings("missing", missing.Missing), zap.Strings("holds", missing.Held),
			zap.String("certificate", missing.Cert), zap.String("fix", missing.Fix))
	}
}
