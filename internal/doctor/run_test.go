package doctor

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/discovery"
)

// fakeService stands in for `deviceupdate serve`: an HTTPS listener with
// the endpoints doctor asks, an internal HTTP one, and the discovery
// responder, on loopback.
type fakeService struct {
	certs    string
	data     string
	https    *httptest.Server
	http     *httptest.Server
	dns      *discovery.Server
	token    string
	domain   string           // what the admin API reports
	external int              // status of the external poll endpoint
	ext      *httptest.Server // the --external listener
	extLeaks bool             // it serves internal endpoints too, as it must not
	audit    deviceupdate.AuditVerification
}

// newFakeService starts the fake; tweak, when given, changes its HTTPS
// listeners' TLS settings.
func newFakeService(t *testing.T, certDomain string, tweak ...func(*tls.Config)) *fakeService {
	t.Helper()
	f := &fakeService{certs: t.TempDir(), data: t.TempDir(), domain: "contoso.test", external: http.StatusUnauthorized,
		audit: deviceupdate.AuditVerification{Intact: true, Entries: 12}}
	if _, err := certs.Ensure(f.certs, certs.Options{Domain: certDomain, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}); err != nil {
		t.Fatal(err)
	}
	tok, err := certs.ReadToken(f.certs)
	if err != nil {
		t.Fatal(err)
	}
	f.token = tok
	if err := os.WriteFile(filepath.Join(f.data, "deviceupdate.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	pair, err := certs.LoadServer(f.certs)
	if err != nil {
		t.Fatal(err)
	}

	phone := http.NewServeMux()
	phone.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	phone.HandleFunc("POST /RequestHandler/ucdevice.upx", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<?xml version="1.0"?><Response><NumOfFiles>0</NumOfFiles></Response>`)
	})
	f.http = httptest.NewServer(phone)
	t.Cleanup(f.http.Close)

	secure := http.NewServeMux()
	secure.Handle("/", phone)
	secure.HandleFunc("POST /RequestHandlerExt/ucdevice.upx", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "anonymous access is not supported", f.external)
	})
	secure.HandleFunc("GET /admin/api/v1/server", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			http.Error(w, `{"error":{"code":"unauthorized","message":"missing or invalid admin token"}}`, http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(deviceupdate.ServerInfo{
			Version: "test", Domain: f.domain, StartedAt: time.Unix(1_700_000_000, 0),
			Listeners: map[string]string{"https": f.https.Listener.Addr().String(), "http": f.http.Listener.Addr().String(),
				"external": f.ext.Listener.Addr().String()},
		})
	})
	secure.HandleFunc("GET /admin/api/v1/audit/verify", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			http.Error(w, `{"error":{"code":"unauthorized","message":"missing or invalid admin token"}}`, http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(f.audit)
	})
	external := http.NewServeMux()
	external.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	external.HandleFunc("POST /RequestHandlerExt/ucdevice.upx", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "anonymous access is not supported", http.StatusUnauthorized)
	})
	external.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if f.extLeaks {
			secure.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
	for _, srv := range []**httptest.Server{&f.https, &f.ext} {
		h := http.Handler(secure)
		if srv == &f.ext {
			h = external
		}
		*srv = httptest.NewUnstartedServer(h)
		(*srv).TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		(*srv).Config.ErrorLog = log.New(io.Discard, "", 0) // the tls-min check's refused handshakes
		for _, tw := range tweak {
			tw((*srv).TLS)
		}
		(*srv).StartTLS()
		t.Cleanup((*srv).Close)
	}

	f.dns = startResponder(t, "contoso.test", "127.0.0.1")
	return f
}

// startResponder runs a discovery responder answering addr.
func startResponder(t *testing.T, domain, addr string) *discovery.Server {
	t.Helper()
	h, err := discovery.NewHandler(discovery.Config{Domain: domain, Addrs: []netip.Addr{netip.MustParseAddr(addr)}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := discovery.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(h, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func (f *fakeService) options() Options {
	return Options{
		Domain: "contoso.test", Server: f.https.URL, DNSServer: f.dns.Addr(),
		Certs: f.certs, Token: f.token, DataDir: f.data, Timeout: 5 * time.Second,
		FreeSpace: func(string) (uint64, uint64, error) { return 50 << 30, 100 << 30, nil },
	}
}

func runDoctor(t *testing.T, o Options) map[string]Result {
	t.Helper()
	results, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]Result{}
	for _, r := range results {
		names = append(names, r.Check)
		byName[r.Check] = r
	}
	want := []string{CheckDNS, CheckTLS, CheckTLSMin, CheckSANs, CheckChain, CheckValidity, CheckKey, CheckClock,
		CheckHTTPS, CheckPoll, CheckPollExternal, CheckServer, CheckAudit, CheckHTTP, CheckExternal, CheckDisk}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("checks %v, want %v", names, want)
	}
	return byName
}

// TestRun runs every check against a fake service, healthy and then
// broken one way at a time.
func TestRun(t *testing.T) {
	f := newFakeService(t, "contoso.test")
	other := newFakeService(t, "fabrikam.test")
	lowTLS := newFakeService(t, "contoso.test", func(c *tls.Config) { c.MinVersion = tls.VersionTLS10 })
	tests := []struct {
		name   string
		change func(o *Options)
		before func()
		after  func()
		want   map[string]Status // checks whose status is not OK, with what it is
		phrase map[string]string
	}{
		{name: "healthy", phrase: map[string]string{
			CheckDNS:      "ucupdates-r2.contoso.test resolves to 127.0.0.1 through " + f.dns.Addr() + ", where the service answers on port",
			CheckHTTP:     "answers /healthz and polls",
			CheckAudit:    "the admin audit trail is intact: 12 entries",
			CheckTLSMin:   "refuses TLS 1.0 and 1.1: TLS 1.2 or newer only",
			CheckExternal: "refuses anonymous external phones (401); no internal endpoint, admin API or metrics answers there",
		}},
		{
			name:   "TLS 1.0 accepted",
			change: func(o *Options) { o.Server, o.Token, o.Certs = lowTLS.https.URL, lowTLS.token, lowTLS.certs },
			phrase: map[string]string{CheckTLSMin: "accepts TLS 1.1 (serve --tls-min)"},
		},
		{
			name:   "the external listener serves internal endpoints",
			before: func() { f.extLeaks = true },
			after:  func() { f.extLeaks = false },
			want:   map[string]Status{CheckExternal: Fail},
			phrase: map[string]string{CheckExternal: "/RequestHandler/ucdevice.upx answered 200 OK on the listener published to the internet, want 404"},
		},
		{
			name: "the audit trail was tampered with",
			before: func() {
				f.audit = deviceupdate.AuditVerification{Entries: 1, Line: 2, Seq: 3, Reason: "sequence number 3 follows 1"}
			},
			after: func() { f.audit = deviceupdate.AuditVerification{Intact: true, Entries: 12} },
			want:  map[string]Status{CheckAudit: Fail},
			phrase: map[string]string{CheckAudit: "FAIL  audit: the admin audit trail is broken at line 2 (entry 3): sequence number 3 follows 1; 1 entry before it intact; " +
				"stop serve, restore audit.log (<data>/Logs/Server/Audit/admin/) from a backup and start serve again; `deviceupdate audit verify` names the first altered entry"},
		},
		{
			name:   "the record points where nothing answers",
			change: func(o *Options) { o.DNSServer = startResponder(t, "contoso.test", "127.0.0.2").Addr() },
			want:   map[string]Status{CheckDNS: Fail},
			phrase: map[string]string{CheckDNS: "does not answer at 127.0.0.2"},
		},
		{
			name:   "the DNS server does not serve the domain",
			change: func(o *Options) { o.DNSServer = startResponder(t, "fabrikam.test", "127.0.0.1").Addr() },
			want:   map[string]Status{CheckDNS: Fail},
			phrase: map[string]string{CheckDNS: "answered REFUSED"},
		},
		{
			name: "a resolver without the name",
			change: func(o *Options) {
				o.Resolve = func(context.Context, string) ([]netip.Addr, error) { return nil, nil }
			},
			want:   map[string]Status{CheckDNS: Fail},
			phrase: map[string]string{CheckDNS: "no A or AAAA record"},
		},
		{
			name:   "a certificate for another domain and CA",
			change: func(o *Options) { o.Server, o.Token = other.https.URL, other.token },
			want:   map[string]Status{CheckSANs: Fail, CheckChain: Fail},
			phrase: map[string]string{CheckSANs: "lacks UCUpdates-R2.contoso.test"},
		},
		{
			name:   "the server runs for another domain",
			before: func() { f.domain = "fabrikam.test" },
			after:  func() { f.domain = "contoso.test" },
			want:   map[string]Status{CheckServer: Fail},
			phrase: map[string]string{CheckServer: "runs with fabrikam.test, not --domain contoso.test"},
		},
		{
			name:   "a wrong token",
			change: func(o *Options) { o.Token = "nope" },
			want:   map[string]Status{CheckServer: Fail, CheckAudit: Skip, CheckHTTP: Skip, CheckExternal: Skip},
			phrase: map[string]string{CheckServer: "refused the token"},
		},
		{
			name:   "no token",
			change: func(o *Options) { o.Token = "" },
			want:   map[string]Status{CheckServer: Skip, CheckAudit: Skip, CheckHTTP: Skip, CheckExternal: Skip},
		},
		{
			name:   "external endpoint open to anonymous phones",
			before: func() { f.external = http.StatusOK },
			after:  func() { f.external = http.StatusUnauthorized },
			want:   map[string]Status{CheckPollExternal: Fail},
			phrase: map[string]string{CheckPollExternal: "want 401 Unauthorized"},
		},
		{
			name:   "no data folder here",
			change: func(o *Options) { o.DataDir = "" },
			want:   map[string]Status{CheckDisk: Skip},
		},
		{
			name:   "a data folder that is not the server's",
			change: func(o *Options) { o.DataDir = t.TempDir() },
			want:   map[string]Status{CheckDisk: Fail},
			phrase: map[string]string{CheckDisk: "holds no deviceupdate.db"},
		},
		{
			name:   "the default data folder here is not the server's",
			change: func(o *Options) { o.DataDir, o.DataDirFound = t.TempDir(), true },
			want:   map[string]Status{CheckDisk: Skip},
			phrase: map[string]string{CheckDisk: "holds no deviceupdate.db: not a server's data folder; pass --data"},
		},
		{
			name:   "no ca.crt",
			change: func(o *Options) { o.Certs = t.TempDir() },
			want:   map[string]Status{CheckChain: Fail},
		},
		{
			name: "nothing listens",
			change: func(o *Options) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				o.Server = "https://" + ln.Addr().String()
				ln.Close()
			},
			want: map[string]Status{
				CheckDNS: Fail, CheckTLS: Fail, CheckTLSMin: Skip, CheckSANs: Skip, CheckChain: Skip, CheckValidity: Skip, CheckKey: Skip, CheckClock: Skip,
				CheckHTTPS: Skip, CheckPoll: Skip, CheckPollExternal: Skip, CheckServer: Skip, CheckAudit: Skip, CheckHTTP: Skip, CheckExternal: Skip,
			},
			phrase: map[string]string{CheckTLS: "no TLS answer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := f.options()
			if tt.change != nil {
				tt.change(&o)
			}
			if tt.before != nil {
				tt.before()
				t.Cleanup(tt.after)
			}
			got := runDoctor(t, o)
			for name, r := range got {
				want := OK
				if s, ok := tt.want[name]; ok {
					want = s
				}
				if r.Status != want {
					t.Errorf("%s, want %s", r, want)
				}
				if p := tt.phrase[name]; p != "" && !strings.Contains(r.String(), p) {
					t.Errorf("%q lacks %q", r, p)
				}
			}
		})
	}
}

func TestRunRefusesOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"no domain":  {Server: "https://127.0.0.1"},
		"http URL":   {Domain: "contoso.test", Server: "http://127.0.0.1"},
		"not a URL":  {Domain: "contoso.test", Server: "127.0.0.1:443"},
		"empty host": {Domain: "contoso.test", Server: "https://"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Run(context.Background(), o); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
