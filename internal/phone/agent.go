// Package phone is a phone agent: it speaks the phone protocol of SPEC §5
// and §6 over the service's real HTTP endpoints, as an IP phone does. It
// polls at boot, at sign-in and on the interval the answer gives;
// downloads what it is offered, resuming with Range after a cut, directly
// or through the phones around it (internal/peer) when the answer turns
// peer sharing on; verifies every file's size and SHA-256 and the
// catalog's signature against the publisher roots it trusts; only then
// switches its running version; and uploads a log of what it did.
//
// The package also simulates a site of such phones in one process (Sim),
// each on its own loopback address, sharing one rate-limited WAN link to
// the server.
package phone

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// Limits on what a server may make a phone hold.
const (
	// MaxFileSize is the largest file an offer may name.
	MaxFileSize = 4 << 30
	// MaxAnswerSize bounds a poll's answer.
	MaxAnswerSize = 1 << 20
	// DefaultInterval is the poll interval when an answer gives none (Lync: 24 hours).
	DefaultInterval = 24 * time.Hour
)

// Sentinel errors of a refused update; check them with errors.Is. A
// refused update leaves the running version as it was.
var (
	// ErrOffer means the answer is malformed: a file name that is not a
	// plain name, a bad size or hash, no catalog for an image.
	ErrOffer = errors.New("malformed offer")
	// ErrMismatch means a downloaded file's size or SHA-256 differs from
	// the offer's.
	ErrMismatch = errors.New("downloaded file does not match the offer")
	// ErrNotListed means the signed catalog does not list an image's SHA-256.
	ErrNotListed = errors.New("image is not listed in the signed catalog")
)

// Sharing says when a phone shares files with its peers.
type Sharing int

// Sharing modes.
const (
	SharingAuto Sharing = iota // as the server's answer says (<PeerSharing Enabled=...>)
	SharingOn                  // always, whatever the answer
	SharingOff                 // never
)

// ParseSharing reads auto, on or off.
func ParseSharing(s string) (Sharing, error) {
	switch strings.ToLower(s) {
	case "auto", "":
		return SharingAuto, nil
	case "on", "true":
		return SharingOn, nil
	case "off", "false":
		return SharingOff, nil
	}
	return 0, deviceupdate.Errorf(deviceupdate.EINVALID, "peer sharing %q: want auto, on or off", s)
}

// String returns auto, on or off.
func (s Sharing) String() string {
	switch s {
	case SharingOn:
		return "on"
	case SharingOff:
		return "off"
	}
	return "auto"
}

// Identity is what a phone says it is in every poll.
type Identity struct {
	DeviceType string // UCPhone when empty
	MAC        string // 00-04-F2-AA-BB-CC; MAC or Serial is needed
	Serial     string
	Brand      string // Polycom when empty
	Model      string
	Revision   string // A when empty
	Locale     string // ENU when empty
	UserID     string // the signed-in user, sip:alice@contoso.com; optional
}

// Config sets up an agent.
type Config struct {
	// Server is the service's base URL, http://host:port or https://host:port.
	Server string
	// TLS, for an https:// server, trusts its certificate.
	TLS *tls.Config
	// External makes the agent poll /RequestHandlerExt, download from
	// ExternalBaseURL and upload logs to /RequestHandlerExt/Files, with
	// HTTP Basic credentials User and Password.
	External       bool
	User, Password string

	Identity Identity
	// Version is the CPE version the phone runs when StateDir holds none
	// yet; once the phone has updated, the state wins.
	Version string
	// StateDir holds the state and the files (created when missing).
	StateDir string
	// Trust holds the publisher roots a catalog's signature must chain to.
	Trust *x509.CertPool

	// LocalAddr, when valid, is the source address of every connection to
	// the server, so that phones sharing a host look distinct to it.
	LocalAddr netip.Addr
	// Client, when set, is used for every request instead of a client
	// built from TLS and LocalAddr (tests wrap its transport).
	Client *http.Client
	// WAN, when set, limits the reading of files from the server: the
	// site's link, shared by its phones.
	WAN *rate.Limiter

	// Sharing decides when files are fetched through Peer; without Peer
	// they always come from the server.
	Sharing Sharing
	Peer    Sharer

	Logger *zap.Logger
	// After and Now are the clock that schedules polls (time.After and
	// time.Now by default).
	After func(time.Duration) <-chan time.Time
	Now   func() time.Time
	// Retries is how many times a poll, a download or an upload is tried
	// again after a cut or a 503 (default 5).
	Retries int
	// MaxRetryWait caps how long a 503's Retry-After is obeyed (default 60s).
	MaxRetryWait time.Duration
	// RetryInterval is how soon the next poll comes after a failed update
	// (default 10 minutes, never later than the answer's interval).
	RetryInterval time.Duration
	// NoLogUpload keeps the agent's log to itself.
	NoLogUpload bool
	// NoSync skips every fsync, for simulated phones (Sim sets it): their
	// state need not survive a power cut, and a thousand phones' installs
	// on one disk otherwise queue on its flushes for minutes.
	NoSync bool
}

// Result is the outcome of one poll.
type Result struct {
	Trigger     string `json:"trigger"`
	Offered     string `json:"offered,omitempty"` // the version offered, "" when none
	Previous    string `json:"previous"`          // the version running before the poll
	Running     string `json:"running"`           // the version running after it
	Updated     bool   `json:"updated"`           // switched to Offered, every file verified
	Files       int    `json:"files"`             // files offered
	FileBytes   int64  `json:"fileBytes"`         // their total size
	ServerBytes int64  `json:"serverBytes"`       // file bytes read from the server (resumed parts and chunk lists too)
	PeerBytes   int64  `json:"peerBytes"`         // verified bytes received from peers
	PeerSharing bool   `json:"peerSharing"`       // whether files were fetched through peers
	Interval    int    `json:"intervalSeconds"`   // seconds until the next periodic poll
	Error       string `json:"error,omitempty"`

	answered bool // the server answered the poll: it saw Previous
}

// Agent is one phone. Its methods are safe for concurrent use; polls run
// one at a time.
type Agent struct {
	cfg    Config
	log    *zap.Logger
	client *http.Client
	signin chan string

	pollMu sync.Mutex // one poll at a time

	mu     sync.Mutex
	state  State
	user   string
	shared map[string][]*sharedFile // by update type: files served to peers

	// stuck makes the agent a simulated stuck phone: it fetches and
	// verifies what it is offered but never switches (errStuck).
	stuck bool
}

// New returns an agent with the state it finds in cfg.StateDir.
func New(cfg Config) (*Agent, error) {
	id := &cfg.Identity
	id.DeviceType = or(id.DeviceType, "UCPhone")
	id.Brand = or(id.Brand, "Polycom")
	id.Revision = or(id.Revision, "A")
	id.Locale = or(id.Locale, "ENU")
	if id.MAC != "" {
		mac, err := deviceupdate.NormalizeMAC(id.MAC)
		if err != nil {
			return nil, err
		}
		id.MAC = mac
	}
	switch {
	case id.MAC == "" && id.Serial == "":
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "a phone needs a MAC address or a serial number")
	case id.Model == "":
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "a phone needs a model")
	case cfg.Trust == nil:
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "a phone needs the publisher roots it trusts")
	case cfg.StateDir == "":
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "a phone needs a state folder")
	}
	u, err := url.Parse(cfg.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "server %q: want http://host:port or https://host:port", cfg.Server)
	}
	cfg.Server = strings.TrimRight(cfg.Server, "/")
	if cfg.External && u.Scheme != "https" {
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "server %q: the external endpoints are HTTPS only", cfg.Server)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 5
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = time.Minute
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 10 * time.Minute
	}
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, downloadsDir), filepath.Join(cfg.StateDir, firmwareDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create phone state: %w", err)
		}
	}
	st, err := LoadState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	if _, ok := st.Module(deviceupdate.DefaultUpdateType); !ok {
		if _, err := deviceupdate.ParseVersion(cfg.Version); err != nil {
			return nil, err
		}
		st = st.with(ModuleState{UpdateType: deviceupdate.DefaultUpdateType, Filename: "CPE.nbt", Version: cfg.Version})
		if err := saveState(cfg.StateDir, st, !cfg.NoSync); err != nil {
			return nil, err
		}
	}
	a := &Agent{
		cfg:    cfg,
		log:    cfg.Logger.With(zap.String("phone", deviceID(cfg.Identity))),
		client: cfg.Client,
		signin: make(chan string, 1),
		state:  st,
		user:   id.UserID,
		shared: map[string][]*sharedFile{},
	}
	if a.client == nil {
		a.client = NewHTTPClient(cfg.TLS, cfg.LocalAddr)
	}
	return a, nil
}

// NewHTTPClient returns a client whose connections come from localAddr
// (any address when it is not valid) and trust tlsConfig.
func NewHTTPClient(tlsConfig *tls.Config, localAddr netip.Addr) *http.Client {
	d := &net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}
	if localAddr.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: localAddr.AsSlice()}
	}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     false,
	}
	return &http.Client{Transport: tr}
}

// State returns what the phone runs.
func (a *Agent) State() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Running returns the version of the CPE module.
func (a *Agent) Running() string {
	m, _ := a.State().Module(deviceupdate.DefaultUpdateType)
	return m.Version
}

// SignIn tells a running agent that user signed in: it polls at once with
// the trigger signin.
func (a *Agent) SignIn(user string) {
	select {
	case a.signin <- user:
	default: // a sign-in poll is pending already
	}
}

// Run polls at boot, then on the answered interval and at every sign-in,
// until ctx ends. A failed poll or update is logged and tried again at
// the next poll, which comes at most RetryInterval later.
func (a *Agent) Run(ctx context.Context) error {
	trigger := "boot"
	for {
		res, err := a.Poll(ctx, trigger)
		if ctx.Err() != nil {
			return nil
		}
		wait := time.Duration(res.Interval) * time.Second
		if wait <= 0 {
			wait = DefaultInterval
		}
		if err != nil {
			a.log.Warn("poll failed", zap.String("trigger", trigger), zap.Error(err))
			wait = min(wait, a.cfg.RetryInterval)
		}
		a.log.Debug("next poll", zap.Duration("in", wait))
		select {
		case <-ctx.Done():
			return nil
		case <-a.cfg.After(wait):
			trigger = "periodic"
		case user := <-a.signin:
			a.mu.Lock()
			a.user = user
			a.mu.Unlock()
			trigger = "signin"
		}
	}
}

// Close stops sharing files with peers and closes idle connections. It
// does not close the Sharer.
func (a *Agent) Close() error {
	a.mu.Lock()
	shared := a.shared
	a.shared = map[string][]*sharedFile{}
	a.mu.Unlock()
	for _, files := range shared {
		a.unshare(files)
	}
	if a.cfg.Client == nil {
		a.client.CloseIdleConnections()
	}
	return nil
}

// Poll polls once with the given trigger (boot, signin or periodic), and
// when the answer offers another version, downloads and verifies it and
// switches to it. It then uploads its log of the poll when there was an
// offer or a failure. A refused update returns an error wrapping
// ErrOffer, ErrMismatch, ErrNotListed or a catalog error, and leaves the
// running version as it was.
func (a *Agent) Poll(ctx context.Context, trigger string) (Result, error) {
	a.pollMu.Lock()
	defer a.pollMu.Unlock()
	d := &diag{now: a.cfg.Now}
	res, err := a.poll(ctx, trigger, d)
	if err != nil {
		res.Error = err.Error()
		d.printf("update failed: %v", err)
	}
	if res.Offered != "" && !a.cfg.NoLogUpload || err != nil && ctx.Err() == nil && !a.cfg.NoLogUpload {
		name := "diaglog-" + a.cfg.Now().UTC().Format("20060102-150405") + ".txt"
		if uerr := a.UploadLog(ctx, "Diaglog", name, d.bytes()); uerr != nil {
			a.log.Warn("log upload failed", zap.Error(uerr))
		}
	}
	return res, err
}

func (a *Agent) poll(ctx context.Context, trigger string, d *diag) (Result, error) {
	running := a.Running()
	res := Result{Trigger: trigger, Previous: running, Running: running}
	d.printf("%s %s %s %s, running %s: poll (%s)", a.cfg.Identity.Brand, a.cfg.Identity.Model, a.cfg.Identity.Revision, deviceID(a.cfg.Identity), running, trigger)
	ans, err := a.postPoll(ctx, trigger)
	if err != nil {
		return res, err
	}
	res.Interval, res.answered = ans.PollIntervalSeconds, true
	share := a.cfg.Peer != nil && (a.cfg.Sharing == SharingOn || a.cfg.Sharing == SharingAuto && ans.PeerSharing != nil && ans.PeerSharing.Enabled)
	if ans.NumOfFiles == 0 {
		d.printf("nothing offered; next poll in %s", time.Duration(res.Interval)*time.Second)
		a.log.Debug("polled", zap.String("trigger", trigger), zap.String("running", running))
		return res, nil
	}
	res.Offered = ans.Version
	if ans.Files != nil {
		res.Files = len(ans.Files.File)
		for _, f := range ans.Files.File {
			res.FileBytes += f.Size
		}
	}
	if ans.Version == running {
		d.printf("offered %s, which runs already", ans.Version)
		return res, nil
	}
	res.PeerSharing = share
	d.printf("offered %s: %d files, %d bytes; peer sharing %v", ans.Version, res.Files, res.FileBytes, share)
	a.log.Info("update offered", zap.String("trigger", trigger), zap.String("running", running), zap.String("offered", ans.Version),
		zap.Int("files", res.Files), zap.Int64("bytes", res.FileBytes), zap.Bool("peer_sharing", share))
	var counts counters
	err = a.update(ctx, ans, share, &counts, d)
	res.ServerBytes, res.PeerBytes = counts.server.Load(), counts.peer.Load()
	if err != nil {
		return res, err
	}
	res.Running, res.Updated = ans.Version, true
	d.printf("switched from %s to %s (%d bytes from the server, %d from peers)", running, ans.Version, res.ServerBytes, res.PeerBytes)
	a.log.Info("updated", zap.String("from", running), zap.String("to", ans.Version),
		zap.Int64("server_bytes", res.ServerBytes), zap.Int64("peer_bytes", res.PeerBytes))
	return res, nil
}

// counters add up one poll's bytes, from every goroutine that fetches.
type counters struct{ server, peer atomic.Int64 }

// request is the body of a poll (SPEC §5).
type request struct {
	XMLName      xml.Name `xml:"Request"`
	DeviceType   string   `xml:"DeviceType"`
	MacAddress   string   `xml:"MacAddress,omitempty"`
	SerialNumber string   `xml:"SerialNumber,omitempty"`
	Brand        string   `xml:"Brand"`
	Model        string   `xml:"Model"`
	Revision     string   `xml:"Revision"`
	Locale       string   `xml:"Locale"`
	UserID       string   `xml:"UserId,omitempty"`
	Trigger      string   `xml:"Trigger"`
	Modules      []module `xml:"Modules>Module"`
}

type module struct {
	UpdateType string `xml:"UpdateType,attr"`
	Filename   string `xml:"Filename,attr"`
	Version    string `xml:"Version,attr"`
}

func (a *Agent) requestBody(trigger string) []byte {
	id := a.cfg.Identity
	a.mu.Lock()
	r := request{DeviceType: id.DeviceType, MacAddress: id.MAC, SerialNumber: id.Serial, Brand: id.Brand, Model: id.Model,
		Revision: id.Revision, Locale: id.Locale, UserID: a.user, Trigger: trigger}
	for _, m := range a.state.Modules {
		r.Modules = append(r.Modules, module{UpdateType: m.UpdateType, Filename: m.Filename, Version: m.Version})
	}
	a.mu.Unlock()
	b, _ := xml.Marshal(r) // strings and a slice of structs always marshal
	return b
}

// endpoint returns the URL of a request handler: ucdevice.upx or Files.
func (a *Agent) endpoint(name string) string {
	if a.cfg.External {
		return a.cfg.Server + "/RequestHandlerExt/" + name
	}
	return a.cfg.Server + "/RequestHandler/" + name
}

func (a *Agent) newRequest(ctx context.Context, method, u string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if a.cfg.External {
		req.SetBasicAuth(a.cfg.User, a.cfg.Password)
	}
	return req, nil
}

// postPoll polls, waiting out 503s, and reads the answer.
func (a *Agent) postPoll(ctx context.Context, trigger string) (*upx.Response, error) {
	body := a.requestBody(trigger)
	for attempt := 0; ; attempt++ {
		req, err := a.newRequest(ctx, http.MethodPost, a.endpoint("ucdevice.upx"), body)
		if err != nil {
			return nil, fmt.Errorf("poll: %w", err)
		}
		req.Header.Set("Content-Type", "text/xml")
		resp, err := a.client.Do(req)
		if err != nil {
			if ctx.Err() != nil || attempt >= a.cfg.Retries {
				return nil, fmt.Errorf("poll: %w", err)
			}
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return nil, fmt.Errorf("poll: %w", err)
			}
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerSize+1))
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < a.cfg.Retries {
			if err := sleep(ctx, a.retryAfter(resp, attempt)); err != nil {
				return nil, fmt.Errorf("poll: %w", err)
			}
			continue
		}
		switch {
		case err != nil:
			return nil, fmt.Errorf("poll: %w", err)
		case resp.StatusCode != http.StatusOK:
			return nil, fmt.Errorf("poll: %s: %s", resp.Status, firstLine(data))
		case len(data) > MaxAnswerSize:
			return nil, fmt.Errorf("poll: %w: the answer is longer than %d bytes", ErrOffer, MaxAnswerSize)
		}
		var ans upx.Response
		if err := xml.Unmarshal(data, &ans); err != nil {
			return nil, fmt.Errorf("poll: %w: %v", ErrOffer, err)
		}
		return &ans, nil
	}
}

// retryAfter is how long to wait after a 503: its Retry-After, at most
// MaxRetryWait, else a backoff.
func (a *Agent) retryAfter(resp *http.Response, attempt int) time.Duration {
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
		return min(time.Duration(secs)*time.Second, a.cfg.MaxRetryWait)
	}
	return backoff(attempt)
}

// backoff is the wait before try attempt+1 after a cut: 200 ms, doubling, at most 5 s.
func backoff(attempt int) time.Duration {
	return min(200*time.Millisecond<<min(attempt, 5), 5*time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// UploadLog uploads one log file (SPEC §6): logType is one of the
// server's ValidLogFileTypes (Diaglog, CELog, ...), name its file name.
func (a *Agent) UploadLog(ctx context.Context, logType, name string, body []byte) error {
	id := a.cfg.Identity
	q := url.Values{"DeviceType": {id.DeviceType}, "MacAddress": {id.MAC}, "SerialNumber": {id.Serial}, "LogType": {logType}, "FileName": {name}}
	for attempt := 0; ; attempt++ {
		req, err := a.newRequest(ctx, http.MethodPost, a.endpoint("Files")+"?"+q.Encode(), body)
		if err != nil {
			return fmt.Errorf("upload log %s: %w", name, err)
		}
		req.Header.Set("Content-Type", "text/plain")
		resp, err := a.client.Do(req)
		if err != nil {
			return fmt.Errorf("upload log %s: %w", name, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusNoContent:
			a.log.Debug("log uploaded", zap.String("log_type", logType), zap.String("file", name), zap.Int("bytes", len(body)))
			return nil
		case resp.StatusCode == http.StatusServiceUnavailable && attempt < 2:
			if err := sleep(ctx, a.retryAfter(resp, attempt)); err != nil {
				return fmt.Errorf("upload log %s: %w", name, err)
			}
		default:
			return fmt.Errorf("upload log %s: %s: %s", name, resp.Status, firstLine(msg))
		}
	}
}

// diag is the log of one poll, uploaded as a Diaglog .txt.
type diag struct {
	now func() time.Time
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxDiag = 256 << 10

func (d *diag) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.buf.Len() > maxDiag {
		return
	}
	fmt.Fprintf(&d.buf, "%s %s\r\n", d.now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

func (d *diag) bytes() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Clone(d.buf.Bytes())
}

func deviceID(id Identity) string {
	if id.MAC != "" {
		return id.MAC
	}
	return id.Serial
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// firstLine returns the start of a server's message, for an error.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// updateTypeOf returns the update type a download folder is for: its
// last path element (.../4.0.7577.4366/CPE).
func updateTypeOf(base *url.URL) string {
	t := path.Base(base.Path)
	if !deviceupdate.ValidIdentifier(t) {
		return deviceupdate.DefaultUpdateType
	}
	return t
}
