// Package handler serves the service over HTTP with echo: the phone
// endpoints, the file downloads, the admin API, health and metrics.
//
// Handlers parse the request, call the domain, and render the answer.
// Errors flow back as *deviceupdate.Error and are turned into a status and
// a safe message in one place, handleError; internal detail only reaches
// the log.
//
// A Server builds one handler per listener: Internal for plain HTTP
// (internal phones: the internal handler and internal files only), Secure
// for HTTPS (everything; /metrics takes the admin token there), External
// for the HTTPS listener published to the internet (the external
// endpoints and /healthz only) and Metrics for a private plain-HTTP
// listener of /metrics and /healthz.
package handler

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// Listener names, used in logs and metric labels.
const (
	ListenerHTTP     = "http"
	ListenerHTTPS    = "https"
	ListenerExternal = "external"
	ListenerMetrics  = "metrics"
)

// Default concurrency limits of the phone endpoints. External phones
// have limits of their own, so that nothing arriving at the external
// endpoints takes the internal phones' capacity.
const (
	DefaultPollLimit     = 1024
	DefaultDownloadLimit = 512
	DefaultUploadLimit   = 256

	DefaultExternalPollLimit     = 256
	DefaultExternalDownloadLimit = 128
	DefaultExternalUploadLimit   = 64
)

// AdminPrefix is the path under which the admin API lives.
const AdminPrefix = "/admin/api/v1"

// Pinger reports whether the store answers.
type Pinger interface {
	Ping() error
}

// Config holds what the handlers depend on.
type Config struct {
	Logger      *zap.Logger
	Registry    *prometheus.Registry // HTTP metrics are registered here and /metrics serves it
	Store       Pinger
	AdminToken  string // bearer token for the admin API
	Info        deviceupdate.ServerInfo
	Packages    deviceupdate.PackageService
	Rules       deviceupdate.RuleService
	Rollouts    deviceupdate.RolloutService // staged approvals (SPEC §10); nil leaves them out
	Audit       deviceupdate.AuditService
	TestDevices deviceupdate.TestDeviceService
	Config      deviceupdate.ConfigService
	Files       deviceupdate.FileService
	Polls       deviceupdate.PollService
	Devices     deviceupdate.DeviceService
	Sites       deviceupdate.SiteService
	// DeviceConfig reads and sets per-device settings.
	DeviceConfig deviceupdate.DeviceConfigService
	// Logs stores the logs phones upload and serves them to admins.
	Logs deviceupdate.LogService
	// UploadLimit bounds the log uploads received at once (503 with
	// Retry-After past it); 0 means DefaultUploadLimit.
	UploadLimit int
	// Users are the accounts external phones sign in with (HTTP Basic);
	// without it the external endpoints accept client certificates only.
	Users deviceupdate.UserService
	// PollLimit and DownloadLimit bound the polls and the downloads served
	// at once (503 with Retry-After past them); 0 means the defaults.
	PollLimit, DownloadLimit int
	// The same limits for external phones, a pool of their own; 0 means
	// the defaults.
	ExternalPollLimit, ExternalDownloadLimit, ExternalUploadLimit int
	// StallTimeout is how long a download may make no progress, the window
	// over which an upload must average MinUploadRate, and three times the
	// deadline of a poll's body; 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// HTTPPort and HTTPSPort are the listeners' ports, for the download
	// URLs of a poll's answer; HTTPPort is empty when plain HTTP is off.
	HTTPPort, HTTPSPort string
	// ExternalPort is the --external listener's port, "" when there is
	// none: ExternalBaseURL names it, else HTTPSPort.
	ExternalPort string
	// MaxPackageSize bounds an uploaded package (413 past it).
	MaxPackageSize int64
	// Backup takes the backups GET /backup streams.
	Backup deviceupdate.BackupService
	// Admins are the people who administer the service: their personal
	// tokens authenticate to the admin API beside the admin token.
	Admins deviceupdate.AdminService
	// Console is the web console, mounted on the HTTPS handler only
	// (never on External, Internal or Metrics); nil leaves it out.
	Console Mounter
	Now     func() time.Time
}

// Mounter adds routes to a handler: the web console (internal/console)
// adds its pages to the HTTPS one.
type Mounter interface {
	Mount(e *echo.Echo)
}

// Server holds the two echo instances and their shared state.
type Server struct {
	logger    *zap.Logger
	store     Pinger
	tokenHash [sha256.Size]byte
	info      deviceupdate.ServerInfo
	now       func() time.Time
	metrics   *httpMetrics
	registry  *prometheus.Registry

	packages       deviceupdate.PackageService
	maxPackageSize int64
	rules          deviceupdate.RuleService
	rollouts       deviceupdate.RolloutService
	audit          deviceupdate.AuditService
	testDevices    deviceupdate.TestDeviceService
	config         deviceupdate.ConfigService
	files          deviceupdate.FileService
	polls          deviceupdate.PollService
	devices        deviceupdate.DeviceService
	sites          deviceupdate.SiteService
	deviceConfig   deviceupdate.DeviceConfigService
	logs           deviceupdate.LogService
	users          deviceupdate.UserService
	backup         deviceupdate.BackupService
	admins         deviceupdate.AdminService
	access         map[string]access // what each admin route requires (admins.go)
	stall          time.Duration
	throttle       *authThrottle
	authWait       time.Duration // how long a sign-in may wait for a password check
	httpPort       string
	httpsPort      string
	externalPort   string // of ExternalBaseURL

	internal *echo.Echo
	secure   *echo.Echo
	external *echo.Echo // the external endpoints only
	metricsL *echo.Echo // /metrics without a token, for a private network
}

// New builds the handlers. It registers the HTTP metrics with
// cfg.Registry, so it may be called once per registry.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.Packages != nil && cfg.MaxPackageSize <= 0 {
		return nil, fmt.Errorf("handler: MaxPackageSize must be set with Packages")
	}
	m, err := newHTTPMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		logger:    cfg.Logger,
		store:     cfg.Store,
		tokenHash: sha256.Sum256([]byte(cfg.AdminToken)),
		info:      cfg.Info,
		now:       cfg.Now,
		metrics:   m,
		registry:  cfg.Registry,

		packages:       cfg.Packages,
		maxPackageSize: cfg.MaxPackageSize,
		rules:          cfg.Rules,
		rollouts:       cfg.Rollouts,
		audit:          cfg.Audit,
		testDevices:    cfg.TestDevices,
		config:         cfg.Config,
		files:          cfg.Files,
		polls:          cfg.Polls,
		devices:        cfg.Devices,
		sites:          cfg.Sites,
		deviceConfig:   cfg.DeviceConfig,
		logs:           cfg.Logs,
		users:          cfg.Users,
		backup:         cfg.Backup,
		admins:         cfg.Admins,
		access:         map[string]access{},
		stall:          cfg.StallTimeout,
		throttle:       newAuthThrottle(cfg.Now),
		authWait:       authWait,
		httpPort:       cfg.HTTPPort,
		httpsPort:      cfg.HTTPSPort,
		externalPort:   cfg.ExternalPort,
	}
	if s.externalPort == "" {
		s.externalPort = cfg.HTTPSPort
	}
	s.internal = s.newEcho(ListenerHTTP)
	s.secure = s.newEcho(ListenerHTTPS)
	s.external = s.newEcho(ListenerExternal)
	s.metricsL = s.newEcho(ListenerMetrics)

	for _, e := range []*echo.Echo{s.internal, s.secure, s.external, s.metricsL} {
		e.GET("/healthz", s.handleHealth)
	}
	// External endpoints check credentials first and then take a slot
	// of their own pools: a flood of bad credentials holds no capacity,
	// and external phones none of the internal phones'.
	if s.polls != nil {
		polls, extPolls := slots(cfg.PollLimit, DefaultPollLimit), slots(cfg.ExternalPollLimit, DefaultExternalPollLimit)
		downloads, extDownloads := slots(cfg.DownloadLimit, DefaultDownloadLimit), slots(cfg.ExternalDownloadLimit, DefaultExternalDownloadLimit)
		for _, e := range []*echo.Echo{s.internal, s.secure} {
			e.POST("/RequestHandler/ucdevice.upx", s.pollHandler(polls))
			e.GET("/DeviceUpdateFiles_Int/*", s.handleFile, limit(downloads, "60"))
			e.HEAD("/DeviceUpdateFiles_Int/*", s.handleFile, limit(downloads, "60"))
		}
		// External phones: the same handlers, behind credentials (HTTPS
		// and the external listener only), with limits of their own.
		for _, e := range []*echo.Echo{s.secure, s.external} {
			e.POST("/RequestHandlerExt/ucdevice.upx", s.pollHandler(extPolls), s.requireExternal)
			e.GET("/DeviceUpdateFiles_Ext/*", s.handleFile, s.requireExternal, limit(extDownloads, "60"))
			e.HEAD("/DeviceUpdateFiles_Ext/*", s.handleFile, s.requireExternal, limit(extDownloads, "60"))
		}
	}

	if s.logs != nil {
		uploads, extUploads := slots(cfg.UploadLimit, DefaultUploadLimit), slots(cfg.ExternalUploadLimit, DefaultExternalUploadLimit)
		for _, e := range []*echo.Echo{s.internal, s.secure} {
			e.POST("/RequestHandler/Files", s.handleLogUpload, limit(uploads, "60"))
		}
		for _, e := range []*echo.Echo{s.secure, s.external} {
			e.POST("/RequestHandlerExt/Files", s.handleLogUpload, s.requireExternal, limit(extUploads, "60"))
		}
	}

	metrics := echo.WrapHandler(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	s.access[routeKey(http.MethodGet, "/metrics")] = canRead
	s.secure.GET("/metrics", metrics, s.requireAdmin)
	s.metricsL.GET("/metrics", metrics)
	s.adminRoutes()
	if cfg.Console != nil {
		cfg.Console.Mount(s.secure)
	}
	return s, nil
}

// adminRoutes registers the admin API, each route with the role it
// requires (SPEC §7): viewers read; operators also act on rules, test
// devices, device logs and device settings; admins also import, and
// change configuration, sites, users, admins, stored files, backups and
// the inventory.
func (s *Server) adminRoutes() {
	g := s.secure.Group(AdminPrefix, s.requireAdmin)
	get, post, put, del := http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	s.route(g, get, "/server", canRead, s.handleServerInfo)
	if s.packages != nil {
		s.route(g, post, "/packages", canAdmin, s.handleImport)
	}
	if s.rules != nil {
		s.route(g, get, "/rules", canRead, s.handleRules)
		s.route(g, post, "/rules/:id/:action", canOperate, s.handleRuleAction)
	}
	if s.rollouts != nil {
		s.route(g, get, "/rules/:id/rollout", canRead, s.handleRollout)
		s.route(g, post, "/rules/:id/pause", canOperate, s.handlePauseRollout)
		s.route(g, post, "/rules/:id/resume", canOperate, s.handleResumeRollout)
	}
	if s.audit != nil {
		s.route(g, get, "/audit", canRead, s.handleAudit)
		s.route(g, get, "/audit/verify", canRead, s.handleAuditVerify)
	}
	if s.testDevices != nil {
		s.route(g, get, "/testdevices", canRead, s.handleTestDevices)
		s.route(g, post, "/testdevices", canOperate, s.handleAddTestDevice)
		s.route(g, del, "/testdevices/:name", canOperate, s.handleRemoveTestDevice)
	}
	if s.config != nil {
		s.route(g, get, "/config", canRead, s.handleConfig)
		s.route(g, put, "/config", canAdmin, s.handleSetConfig)
	}
	if s.files != nil {
		s.route(g, post, "/files/clear", canAdmin, s.handleClearFiles)
	}
	if s.devices != nil {
		s.route(g, get, "/devices", canRead, s.handleDevices)
		s.route(g, get, "/devices/:id", canRead, s.handleDevice)
		s.route(g, del, "/devices/:id", canAdmin, s.handleRemoveDevice)
		s.route(g, post, "/devices/prune", canAdmin, s.handlePruneDevices)
	}
	if s.sites != nil {
		s.route(g, get, "/sites", canRead, s.handleSites)
		s.route(g, put, "/sites/:name", canAdmin, s.handlePutSite)
		s.route(g, del, "/sites/:name", canAdmin, s.handleRemoveSite)
	}
	if s.logs != nil {
		s.route(g, get, "/logs", canRead, s.handleLogs)
		// A log's content may hold what a viewer should not read
		// (configuration, user names): operators download them.
		s.route(g, get, "/logs/:type/:device/:name", canOperate, s.handleLogDownload)
		s.route(g, post, "/logs/clear", canOperate, s.handleClearLogs)
	}
	if s.deviceConfig != nil {
		s.route(g, get, "/devices/:id/config", canRead, s.handleDeviceConfig)
		s.route(g, put, "/devices/:id/config", canOperate, s.handleSetDeviceConfig)
	}
	if s.users != nil {
		s.route(g, get, "/users", canRead, s.handleUsers)
		s.route(g, post, "/users", canAdmin, s.handleAddUser)
		s.route(g, del, "/users/:name", canAdmin, s.handleRemoveUser)
	}
	if s.backup != nil {
		// A backup holds the CA's key and every hash: admins only.
		s.route(g, get, "/backup", canAdmin, s.handleBackup)
	}
	if s.admins != nil {
		s.route(g, get, "/admins", canRead, s.handleAdmins)
		s.route(g, post, "/admins", canAdmin, s.handleAddAdmin)
		s.route(g, del, "/admins/:name", canAdmin, s.handleRemoveAdmin)
		s.route(g, get, "/admins/:name/tokens", ownOrAdmin, s.handleTokens)
		s.route(g, post, "/admins/:name/tokens", ownOrAdmin, s.handleNewToken)
		s.route(g, del, "/admins/:name/tokens/:id", ownOrAdmin, s.handleRevokeToken)
	}
}

// slots is a pool of n request slots, def when n is 0.
func slots(n, def int) chan struct{} {
	if n <= 0 {
		n = def
	}
	return make(chan struct{}, n)
}

// Internal returns the handler for the plain-HTTP listener.
func (s *Server) Internal() http.Handler { return s.internal }

// Secure returns the handler for the HTTPS listener.
func (s *Server) Secure() http.Handler { return s.secure }

// External returns the handler for the HTTPS listener published to the
// internet: the external endpoints and /healthz, nothing else.
func (s *Server) External() http.Handler { return s.external }

// Metrics returns the handler for the private /metrics listener.
func (s *Server) Metrics() http.Handler { return s.metricsL }

func (s *Server) newEcho(listener string) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Debug = false
	e.Logger.SetOutput(io.Discard) // everything worth saying goes through zap
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.handleError
	e.Use(s.observe(listener))
	if listener == ListenerHTTPS || listener == ListenerExternal {
		e.Use(strictTransport)
	}
	return e
}

// hstsValue keeps browsers (the console, API clients) on HTTPS for a year.
const hstsValue = "max-age=31536000"

// strictTransport sets Strict-Transport-Security on every HTTPS answer,
// errors and 404s included.
func strictTransport(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Strict-Transport-Security", hstsValue)
		return next(c)
	}
}

// handleHealth answers 200 once the store is open and answering.
func (s *Server) handleHealth(c echo.Context) error {
	if err := s.store.Ping(); err != nil {
		return &deviceupdate.Error{Code: deviceupdate.EUNAVAILABLE, Message: "store unavailable", Err: err}
	}
	return c.String(http.StatusOK, "ok\n")
}

// handleServerInfo reports which server and build the client talks to.
func (s *Server) handleServerInfo(c echo.Context) error {
	return c.JSON(http.StatusOK, s.info)
}
