package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/certs"
)

// DefaultTimeout bounds each network exchange of a check.
const DefaultTimeout = 5 * time.Second

// maxProbed bounds how many resolved addresses the dns check tries.
const maxProbed = 8

// PollBody is the poll doctor sends to the phone endpoints: a device no
// rule matches, so it is offered nothing. It appears in the inventory as
// model "doctor" of brand "deviceupdate".
const PollBody = `<Request><DeviceType>UCPhone</DeviceType><SerialNumber>deviceupdate-doctor</SerialNumber>` +
	`<Brand>deviceupdate</Brand><Model>doctor</Model><Revision>A</Revision><Locale>ENU</Locale></Request>`

// errNoFreeSpace means this system cannot report free space.
var errNoFreeSpace = errors.New("free space is not reported on this system")

// Options say what to check and where.
type Options struct {
	Domain    string // the DNS domain phones use; required
	Server    string // base URL of the HTTPS listener, https://host[:port]
	DNSServer string // host:port of the DNS server to ask; "" for the system resolver
	Certs     string // the certs folder: ca.crt to verify against, ca.key tells who issues
	Token     string // admin token; "" skips the server and http checks
	DataDir   string // the server's data folder; "" skips the disk check
	Timeout   time.Duration
	Now       func() time.Time

	// DataDirFound says DataDir is the default folder found where doctor
	// runs, not one the admin named: without a store there (a clone of
	// the repository holds one with only a README) the disk check is
	// skipped with a note rather than failed.
	DataDirFound bool

	// Resolve and FreeSpace stand in for the network and the file system
	// in tests; nil means the real ones.
	Resolve   func(ctx context.Context, name string) ([]netip.Addr, error)
	FreeSpace func(dir string) (free, total uint64, err error)
}

// Run runs every check and returns their results, in a fixed order. It
// fails only on options it cannot use; everything it finds is a Result.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if o.Domain == "" {
		return nil, errors.New("no domain to check; pass --domain")
	}
	u, err := url.Parse(o.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server %q is not an https:// URL; write e.g. https://fe01.contoso.com:443", o.Server)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FreeSpace == nil {
		o.FreeSpace = freeSpace
	}
	if o.Resolve == nil {
		if o.DNSServer != "" {
			o.Resolve = resolveWith(o.DNSServer, o.Timeout)
		} else {
			o.Resolve = resolveSystem
		}
	}
	r := &runner{Options: o, base: u, name: strings.ToLower(certs.DiscoveryName) + "." + o.Domain}
	r.port = u.Port()
	if r.port == "" {
		r.port = "443"
	}
	r.ci = CertInfo{Dir: o.Certs}
	if _, err := os.Stat(filepath.Join(o.Certs, certs.CAKeyFile)); err == nil {
		r.ci.OwnCA = true
	}
	r.client = &http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{
			// The certificate is judged by the cert-* checks; the endpoint
			// checks only ask whether the service answers.
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: r.name},
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return r.run(ctx), nil
}

type runner struct {
	Options
	base   *url.URL
	name   string // ucupdates-r2.<domain>
	port   string // the HTTPS port
	ci     CertInfo
	client *http.Client
}

func (r *runner) run(ctx context.Context) []Result {
	out := []Result{r.checkDNS(ctx)}
	chain, state, err := r.fetchChain(ctx)
	var info *deviceupdate.ServerInfo
	if err != nil {
		out = append(out, fail(CheckTLS, "start deviceupdate serve there, or fix --server (or $DEVICEUPDATE_SERVER)",
			"no TLS answer from %s: %v", r.base.Host, err))
		for _, c := range []string{CheckTLSMin, CheckSANs, CheckChain, CheckValidity, CheckKey, CheckClock, CheckHTTPS, CheckPoll, CheckPollExternal, CheckServer, CheckAudit} {
			out = append(out, skip(c, "not checked: the TLS handshake with %s failed", r.base.Host))
		}
	} else {
		out = append(out, ok(CheckTLS, "%s answers %s", r.base.Host, tls.VersionName(state.Version)), r.checkTLSMin(ctx))
		now := r.Now()
		leaf := chain[0]
		roots, ca := r.loadCA()
		out = append(out,
			SANs(leaf, r.Domain, r.ci),
			Chain(chain, roots, r.ci, r.Domain, now),
			Validity(leaf, ca, r.ci, r.Domain, now),
			Key(leaf, r.ci, r.Domain),
		)
		health, date := r.checkHealth(ctx, r.base.String(), CheckHTTPS)
		if health.Status == Fail {
			out = append(out, skip(CheckClock, "not checked: the server's clock comes from its /healthz answer"))
		} else {
			out = append(out, Clock(r.Now(), date))
		}
		out = append(out, health,
			r.checkPoll(ctx, CheckPoll, r.base.String()+"/RequestHandler/ucdevice.upx", http.StatusOK),
			r.checkPoll(ctx, CheckPollExternal, r.base.String()+"/RequestHandlerExt/ucdevice.upx", http.StatusUnauthorized))
		var res Result
		info, res = r.checkServer(ctx)
		out = append(out, res, r.checkAudit(ctx, info))
	}
	out = append(out, r.checkInternal(ctx, info), r.checkExternal(ctx, info), r.checkDisk())
	return out
}

// dnsFix says how to make the discovery name resolve.
func (r *runner) dnsFix() string {
	return fmt.Sprintf("create an A record %s for this server in the %s zone, or run serve with --dns ADDR --domain %s and delegate %s to it (an NS record, or a conditional forwarder)",
		r.name, r.Domain, r.Domain, r.name)
}

// checkDNS resolves the discovery name and asks each address for /healthz.
func (r *runner) checkDNS(ctx context.Context) Result {
	via := "the system resolver"
	if r.DNSServer != "" {
		via = r.DNSServer
	}
	addrs, err := r.Resolve(ctx, r.name)
	if err != nil {
		return fail(CheckDNS, r.dnsFix(), "%s does not resolve through %s: %v", r.name, via, err)
	}
	if len(addrs) == 0 {
		return fail(CheckDNS, r.dnsFix(), "%s has no A or AAAA record through %s", r.name, via)
	}
	var shown, silent []string
	for i, a := range addrs {
		shown = append(shown, a.String())
		if i >= maxProbed {
			continue
		}
		base := "https://" + net.JoinHostPort(a.String(), r.port)
		if res, _ := r.checkHealth(ctx, base, CheckDNS); res.Status != OK {
			silent = append(silent, a.String())
		}
	}
	if len(silent) > 0 {
		return fail(CheckDNS, fmt.Sprintf("point the record at this server's addresses (serve's --dns-answer sets what its responder answers), or let port %s through to them", r.port),
			"%s resolves to %s through %s, but the service does not answer at %s on port %s", r.name, joinAnd(shown), via, joinAnd(silent), r.port)
	}
	return ok(CheckDNS, "%s resolves to %s through %s, where the service answers on port %s", r.name, joinAnd(shown), via, r.port)
}

// fetchChain makes a TLS handshake that accepts any certificate, and
// returns what the server sent, for the cert-* checks to judge.
func (r *runner) fetchChain(ctx context.Context) ([]*x509.Certificate, tls.ConnectionState, error) {
	// Any certificate: the cert-* checks judge it, so that a bad one is
	// reported as such rather than as a failed connection.
	state, err := r.handshake(ctx, &tls.Config{InsecureSkipVerify: true, ServerName: r.name})
	if err != nil {
		return nil, state, err
	}
	if len(state.PeerCertificates) == 0 {
		return nil, state, errors.New("the server sent no certificate")
	}
	return state.PeerCertificates, state, nil
}

// handshake makes a TLS handshake with the server and returns its state.
func (r *runner) handshake(ctx context.Context, cfg *tls.Config) (tls.ConnectionState, error) {
	host := r.base.Host
	if r.base.Port() == "" {
		host = net.JoinHostPort(r.base.Hostname(), r.port)
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: r.Timeout}, Config: cfg}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState(), nil
}

// checkTLSMin reports whether the server accepts TLS older than 1.2,
// which `serve --tls-min` allows for Lync Phone Edition phones. It is
// reported, not failed: an admin with such phones chose it.
func (r *runner) checkTLSMin(ctx context.Context) Result {
	state, err := r.handshake(ctx, &tls.Config{InsecureSkipVerify: true, ServerName: r.name,
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err != nil {
		return ok(CheckTLSMin, "%s refuses TLS 1.0 and 1.1: TLS 1.2 or newer only", r.base.Host)
	}
	return ok(CheckTLSMin, "%s accepts %s (serve --tls-min): TLS 1.0 and 1.1 with CBC suites, weaker, for Lync Phone Edition phones only; "+
		"drop --tls-min once no such phone is left", r.base.Host, tls.VersionName(state.Version))
}

// loadCA reads ca.crt: the pool to verify against and its first
// certificate, for its lifetime. Either is nil when it cannot be read.
func (r *runner) loadCA() (*x509.CertPool, *x509.Certificate) {
	data, err := os.ReadFile(filepath.Join(r.Certs, certs.CACertFile))
	if err != nil {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, nil
	}
	var first *x509.Certificate
	if b, _ := pem.Decode(data); b != nil {
		first, _ = x509.ParseCertificate(b.Bytes)
	}
	return pool, first
}

// checkHealth asks base for /healthz and returns the server's Date.
func (r *runner) checkHealth(ctx context.Context, base, check string) (Result, time.Time) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return fail(check, "fix --server", "bad URL %s: %v", base, err), time.Time{}
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fail(check, "start deviceupdate serve there, or open the port", "GET %s/healthz: %v", base, unwrapURL(err)), time.Time{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	date, _ := http.ParseTime(resp.Header.Get("Date"))
	if resp.StatusCode != http.StatusOK {
		return fail(check, "read the server's log (its store may be unavailable)", "GET %s/healthz answered %s: %s", base, resp.Status, strings.TrimSpace(string(body))), date
	}
	return ok(check, "GET %s/healthz answered 200", base), date
}

// checkPoll posts PollBody to url and expects the status want.
func (r *runner) checkPoll(ctx context.Context, check, url string, want int) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(PollBody))
	if err != nil {
		return fail(check, "fix --server", "bad URL %s: %v", url, err)
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := r.client.Do(req)
	if err != nil {
		return fail(check, "start deviceupdate serve there, or open the port", "POST %s: %v", url, unwrapURL(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != want {
		return fail(check, "read the server's log for the request", "POST %s answered %s, want %d %s: %s",
			url, resp.Status, want, http.StatusText(want), clip(strings.TrimSpace(string(body))))
	}
	if want == http.StatusOK && !strings.Contains(string(body), "<Response") {
		return fail(check, "is this deviceupdate? read the server's log for the request", "POST %s answered 200 without a <Response>: %s", url, clip(string(body)))
	}
	if want == http.StatusUnauthorized {
		return ok(check, "POST %s refuses an anonymous phone (401): alive and protected", url)
	}
	return ok(check, "POST %s answers a poll (200)", url)
}

// adminGet asks the admin API for path with the token and decodes the
// JSON answer into out; what goes wrong is returned as a failed check.
func (r *runner) adminGet(ctx context.Context, check, path string, out any) *Result {
	failed := func(fix, format string, args ...any) *Result {
		res := fail(check, fix, format, args...)
		return &res
	}
	url := r.base.String() + "/admin/api/v1" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return failed("fix --server", "bad URL %s: %v", url, err)
	}
	req.Header.Set("Authorization", "Bearer "+r.Token)
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return failed("start deviceupdate serve there", "GET %s: %v", url, unwrapURL(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return failed("pass the server's token with --token, or point --certs at its certs folder", "the admin API refused the token")
	case resp.StatusCode != http.StatusOK:
		return failed("read the server's log", "GET %s answered %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return failed("is this deviceupdate?", "GET %s: %v", url, err)
	}
	return nil
}

// checkServer asks the admin API which server this is, and compares its
// domain with ours.
func (r *runner) checkServer(ctx context.Context) (*deviceupdate.ServerInfo, Result) {
	if r.Token == "" {
		return nil, skip(CheckServer, "not checked: no admin token (pass --token, set $DEVICEUPDATE_TOKEN, or point --certs at a folder with admin.token)")
	}
	var info deviceupdate.ServerInfo
	if res := r.adminGet(ctx, CheckServer, "/server", &info); res != nil {
		return nil, *res
	}
	if !strings.EqualFold(strings.TrimSuffix(info.Domain, "."), strings.TrimSuffix(r.Domain, ".")) {
		shown := info.Domain
		if shown == "" {
			shown = "no --domain"
		}
		return &info, fail(CheckServer, fmt.Sprintf("restart serve with --domain %s, or run doctor with --domain %s", r.Domain, info.Domain),
			"the server runs with %s, not --domain %s", shown, r.Domain)
	}
	return &info, ok(CheckServer, "deviceupdate %s for %s, up since %s", info.Version, info.Domain, info.StartedAt.UTC().Format(time.RFC3339))
}

// auditFix is what to do about a broken audit trail.
const auditFix = "stop serve, restore audit.log (<data>/Logs/Server/Audit/admin/) from a backup and start serve again; `deviceupdate audit verify` names the first altered entry"

// checkAudit asks the admin API to verify the admin audit trail's chain.
func (r *runner) checkAudit(ctx context.Context, info *deviceupdate.ServerInfo) Result {
	switch {
	case r.Token == "":
		return skip(CheckAudit, "not checked: no admin token")
	case info == nil:
		return skip(CheckAudit, "not checked: the admin API did not answer (see the server check)")
	}
	var v deviceupdate.AuditVerification
	if res := r.adminGet(ctx, CheckAudit, "/audit/verify", &v); res != nil {
		return *res
	}
	if !v.Intact {
		return fail(CheckAudit, auditFix, "the admin audit trail is broken at line %d (entry %d): %s; %s before it intact",
			v.Line, v.Seq, v.Reason, entries(v.Entries))
	}
	return ok(CheckAudit, "the admin audit trail is intact: %s", entries(v.Entries))
}

// entries is "1 entry", "2 entries".
func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}

// checkInternal checks the plain-HTTP listener the admin API reported:
// /healthz and a poll.
func (r *runner) checkInternal(ctx context.Context, info *deviceupdate.ServerInfo) Result {
	base, res := r.reportedListener(ctx, info, CheckHTTP, "http", "the server runs without the internal HTTP listener (--http \"\")")
	if res != nil {
		return *res
	}
	if res := r.checkPoll(ctx, CheckHTTP, base+"/RequestHandler/ucdevice.upx", http.StatusOK); res.Status != OK {
		return res
	}
	return ok(CheckHTTP, "%s answers /healthz and polls", base)
}

// reportedListener returns the base URL of the listener name (http or
// external) that the admin API reported, with this side's host for a
// wildcard address, once it answers /healthz. Otherwise it returns the
// check's result: skipped (without says why when the server runs without
// that listener) or failed.
func (r *runner) reportedListener(ctx context.Context, info *deviceupdate.ServerInfo, check, name, without string) (string, *Result) {
	done := func(res Result) (string, *Result) { return "", &res }
	switch {
	case info == nil:
		return done(skip(check, "not checked: the %s listener's address comes from the admin API, which did not answer", name))
	case info.Listeners == nil:
		return done(skip(check, "not checked: this server does not report its listeners"))
	case info.Listeners[name] == "":
		return done(skip(check, "%s", without))
	}
	addr := info.Listeners[name]
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return done(fail(check, "read the server's log", "the server reports its %s listener as %q", name, addr))
	}
	if ip, err := netip.ParseAddr(host); err != nil || ip.IsUnspecified() {
		host = r.base.Hostname()
	}
	scheme := "https"
	if name == "http" {
		scheme = "http"
	}
	base := scheme + "://" + net.JoinHostPort(host, port)
	if health, _ := r.checkHealth(ctx, base, check); health.Status != OK {
		return done(health)
	}
	return base, nil
}

// checkExternal checks the listener published to the internet (serve
// --external): it answers /healthz and refuses anonymous external phones
// (401), while no internal endpoint or admin API answers there (404).
func (r *runner) checkExternal(ctx context.Context, info *deviceupdate.ServerInfo) Result {
	base, res := r.reportedListener(ctx, info, CheckExternal, "external", "the server runs without an external listener (--external)")
	if res != nil {
		return *res
	}
	if res := r.checkPoll(ctx, CheckExternal, base+"/RequestHandlerExt/ucdevice.upx", http.StatusUnauthorized); res.Status != OK {
		return res
	}
	const fix = "upgrade or restart deviceupdate serve: the external listener must serve the external endpoints only"
	for _, path := range []string{"/RequestHandler/ucdevice.upx", "/admin/api/v1/server", "/metrics"} {
		method := http.MethodGet
		if strings.HasSuffix(path, ".upx") {
			method = http.MethodPost
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(PollBody))
		if err != nil {
			return fail(CheckExternal, "read the server's log", "bad URL %s: %v", base+path, err)
		}
		resp, err := r.client.Do(req) // no token: a 401 would show the admin API there as well as a 200
		if err != nil {
			return fail(CheckExternal, "start deviceupdate serve there, or open the port", "%s %s: %v", method, base+path, unwrapURL(err))
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			return fail(CheckExternal, fix, "%s %s answered %s on the listener published to the internet, want 404", method, base+path, resp.Status)
		}
	}
	return ok(CheckExternal, "%s answers /healthz and refuses anonymous external phones (401); no internal endpoint, admin API or metrics answers there", base)
}

// checkDisk checks the free space of the data folder.
func (r *runner) checkDisk() Result {
	if r.DataDir == "" {
		return skip(CheckDisk, "not checked: no data folder here; run doctor on the server with --data DIR (serve's --data)")
	}
	if _, err := os.Stat(filepath.Join(r.DataDir, "deviceupdate.db")); err != nil {
		if r.DataDirFound {
			return skip(CheckDisk, "%s holds no deviceupdate.db: not a server's data folder; pass --data", r.DataDir)
		}
		return fail(CheckDisk, "point --data at the server's data folder (serve's --data)", "%s holds no deviceupdate.db", r.DataDir)
	}
	free, total, err := r.FreeSpace(r.DataDir)
	if errors.Is(err, errNoFreeSpace) {
		return skip(CheckDisk, "not checked: %v", err)
	}
	return Disk(r.DataDir, free, total, err)
}

// resolveSystem resolves name with this host's resolver.
func resolveSystem(ctx context.Context, name string) ([]netip.Addr, error) {
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, errors.New("no such name (NXDOMAIN, or no address record)")
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return addrs, err
}

// resolveWith returns a resolver that asks the DNS server at addr for A
// and AAAA records, over UDP and, when the answer is truncated, TCP.
func resolveWith(addr string, timeout time.Duration) func(context.Context, string) ([]netip.Addr, error) {
	return func(ctx context.Context, name string) ([]netip.Addr, error) {
		var out []netip.Addr
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			q := new(dns.Msg)
			q.SetQuestion(dns.Fqdn(name), qtype)
			c := &dns.Client{Net: "udp", Timeout: timeout}
			in, _, err := c.ExchangeContext(ctx, q, addr)
			if err == nil && in.Truncated {
				c.Net = "tcp"
				in, _, err = c.ExchangeContext(ctx, q, addr)
			}
			if err != nil {
				return nil, fmt.Errorf("ask %s: %w", addr, err)
			}
			switch in.Rcode {
			case dns.RcodeSuccess:
			case dns.RcodeNameError:
				return nil, fmt.Errorf("%s answered NXDOMAIN: no such name", addr)
			case dns.RcodeRefused:
				return nil, fmt.Errorf("%s answered REFUSED: it serves neither the name nor recursion", addr)
			default:
				return nil, fmt.Errorf("%s answered %s", addr, dns.RcodeToString[in.Rcode])
			}
			for _, rr := range in.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					if a, ok := netip.AddrFromSlice(rr.A); ok {
						out = append(out, a.Unmap())
					}
				case *dns.AAAA:
					if a, ok := netip.AddrFromSlice(rr.AAAA); ok {
						out = append(out, a)
					}
				}
			}
		}
		return out, nil
	}
}

// unwrapURL drops the *url.Error wrapping, which repeats the method and URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// clip shortens a body for a message.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
