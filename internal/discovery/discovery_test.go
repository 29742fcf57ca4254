package discovery

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

const testDomain = "contoso.test"

var testAddrs = []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("2001:db8::5")}

func mustHandler(tb testing.TB, cfg Config) *Handler {
	tb.Helper()
	if cfg.Domain == "" {
		cfg.Domain = testDomain
	}
	if cfg.Addrs == nil {
		cfg.Addrs = testAddrs
	}
	h, err := NewHandler(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// query returns a query for name and type, with RD set, as a stub sends it.
func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	return out
}

const soaRR = "contoso.test. 60 IN SOA ucupdates-r2.contoso.test. hostmaster.contoso.test. 1 3600 600 86400 60"

func TestHandler(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		msg       func() *dns.Msg
		noReply   bool
		wantRcode int
		wantAA    bool
		wantAns   []string
		wantNs    []string
		wantOPT   bool
	}{
		{
			name: "A", msg: func() *dns.Msg { return query("ucupdates-r2.contoso.test.", dns.TypeA) },
			wantRcode: dns.RcodeSuccess, wantAA: true, wantAns: []string{"ucupdates-r2.contoso.test. 300 IN A 10.0.0.5"},
		},
		{
			name: "A in mixed case keeps the asker's case", msg: func() *dns.Msg { return query("UCUpdates-R2.Contoso.TEST.", dns.TypeA) },
			wantRcode: dns.RcodeSuccess, wantAA: true, wantAns: []string{"UCUpdates-R2.Contoso.TEST. 300 IN A 10.0.0.5"},
		},
		{
			name: "AAAA", msg: func() *dns.Msg { return query("ucupdates-r2.contoso.test.", dns.TypeAAAA) },
			wantRcode: dns.RcodeSuccess, wantAA: true, wantAns: []string{"ucupdates-r2.contoso.test. 300 IN AAAA 2001:db8::5"},
		},
		{
			name: "name without the final dot",
			msg: func() *dns.Msg {
				m := query("ucupdates-r2.contoso.test.", dns.TypeA)
				m.Question[0].Name = "ucupdates-r2.contoso.test"
				return m
			},
			wantRcode: dns.RcodeSuccess, wantAA: true, wantAns: []string{"ucupdates-r2.contoso.test. 300 IN A 10.0.0.5"},
		},
		{
			name: "domain configured with a final dot and capitals", cfg: Config{Domain: "Contoso.Test.", TTL: 30},
			msg:       func() *dns.Msg { return query("ucupdates-r2.contoso.test.", dns.TypeA) },
			wantRcode: dns.RcodeSuccess, wantAA: true, wantAns: []string{"ucupdates-r2.contoso.test. 30 IN A 10.0.0.5"},
		},
		{
			name: "several addresses", cfg: Config{Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("::ffff:10.0.0.6")}},
			msg:       func() *dns.Msg { return query("ucupdates-r2.contoso.test.", dns.TypeA) },
			wantRcode: dns.RcodeSuccess, wantAA: true,
			wantAns: []string{"ucupdates-r2.contoso.test. 300 IN A 10.0.0.5", "ucupdates-r2.contoso.test. 300 IN A 10.0.0.6"},
		},
		{
			name: "AAAA with IPv4 addresses only is NODATA", cfg: Config{Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}},
			msg:       func() *dns.Msg { return query("ucupdates-r2.contoso.test.", dns.TypeAAAA) },
			wantRcode: dns.RcodeSuccess, wantAA: true, wantNs: []string{soaRR},
		},
		{
			name: "MX for the name is NODATA", msg: func() *dns.Msg { return query("ucupdates-r2.contoso.test.", dns.TypeMX) },
			wantRcode: dns.RcodeSuccess, wantAA: true, wantNs: []string{soaRR},
		},
		{
			name: "TXT for the name is NODATA", msg: func() *dns.Msg { return query("UCUPDATES-R2.contoso.test.", dns.TypeTXT) },
			wantRcode: dns.RcodeSuccess, wantAA: true, wantNs: []string{soaRR},
		},
		{
			name: "SOA of the domain", msg: func() *dns.Msg { return query("contoso.test.", dns.TypeSOA) },
			wantRcode: dns.RcodeSuccess, wantAA: true, wantAns: []string{soaRR},
		},
		{
			name: "A of the domain is NODATA", msg: func() *dns.Msg { return query("Contoso.Test.", dns.TypeA) },
			wantRcode: dns.RcodeSuccess, wantAA: true, wantNs: []string{soaRR},
		},
		{
			name: "other name in the domain", msg: func() *dns.Msg { return query("other.contoso.test.", dns.TypeA) },
			wantRcode: dns.RcodeNameError, wantAA: true, wantNs: []string{soaRR},
		},
		{
			name: "name below ours", msg: func() *dns.Msg { return query("x.ucupdates-r2.contoso.test.", dns.TypeA) },
			wantRcode: dns.RcodeNameError, wantAA: true, wantNs: []string{soaRR},
		},
		{
			name: "ucupdates (Lync 2010's name) is not ours", msg: func() *dns.Msg { return query("ucupdates.contoso.test.", dns.TypeA) },
			wantRcode: dns.RcodeNameError, wantAA: true, wantNs: []string{soaRR},
		},
		{
			name: "outside the domain", msg: func() *dns.Msg { return query("example.com.", dns.TypeA) },
			wantRcode: dns.RcodeRefused,
		},
		{
			name: "our label under another domain", msg: func() *dns.Msg { return query("ucupdates-r2.contoso.test.evil.example.", dns.TypeA) },
			wantRcode: dns.RcodeRefused,
		},
		{
			name: "a suffix that is not a parent", msg: func() *dns.Msg { return query("ucupdates-r2.xcontoso.test.", dns.TypeA) },
			wantRcode: dns.RcodeRefused,
		},
		{
			name: "root", msg: func() *dns.Msg { return query(".", dns.TypeNS) },
			wantRcode: dns.RcodeRefused,
		},
		{
			name: "ANY", msg: func() *dns.Msg { return query("ucupdates-r2.contoso.test.", dns.TypeANY) },
			wantRcode: dns.RcodeRefused,
		},
		{
			name: "AXFR", msg: func() *dns.Msg { m := new(dns.Msg); m.SetAxfr("contoso.test."); return m },
			wantRcode: dns.RcodeRefused,
		},
		{
			name: "IXFR", msg: func() *dns.Msg { m := new(dns.Msg); m.SetIxfr("contoso.test.", 1, "a.", "b."); return m },
			wantRcode: dns.RcodeRefused,
		},
		{
			name: "class CHAOS",
			msg: func() *dns.Msg {
				m := query("ucupdates-r2.contoso.test.", dns.TypeA)
				m.Question[0].Qclass = dns.ClassCHAOS
				return m
			},
			wantRcode: dns.RcodeRefused,
		},
		{
			name: "no question", msg: func() *dns.Msg { m := query("x.", dns.TypeA); m.Question = nil; return m },
			wantRcode: dns.RcodeFormatError,
		},
		{
			name: "two questions",
			msg: func() *dns.Msg {
				m := query("ucupdates-r2.contoso.test.", dns.TypeA)
				m.Question = append(m.Question, dns.Question{Name: "ucupdates-r2.contoso.test.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET})
				return m
			},
			wantRcode: dns.RcodeFormatError,
		},
		{
			name: "two OPT records",
			msg: func() *dns.Msg {
				m := query("ucupdates-r2.contoso.test.", dns.TypeA)
				m.SetEdns0(1232, false)
				m.SetEdns0(1232, false)
				return m
			},
			wantRcode: dns.RcodeFormatError, wantOPT: true,
		},
		{
			name: "UPDATE", msg: func() *dns.Msg { m := new(dns.Msg); m.SetUpdate("contoso.test."); return m },
			wantRcode: dns.RcodeNotImplemented,
		},
		{
			name: "NOTIFY", msg: func() *dns.Msg { m := new(dns.Msg); m.SetNotify("contoso.test."); return m },
			wantRcode: dns.RcodeNotImplemented,
		},
		{
			name: "EDNS0",
			msg: func() *dns.Msg {
				m := query("ucupdates-r2.contoso.test.", dns.TypeA)
				m.SetEdns0(4096, true)
				return m
			},
			wantRcode: dns.RcodeSuccess, wantAA: true, wantAns: []string{"ucupdates-r2.contoso.test. 300 IN A 10.0.0.5"}, wantOPT: true,
		},
		{
			name: "EDNS version 1",
			msg: func() *dns.Msg {
				m := query("ucupdates-r2.contoso.test.", dns.TypeA)
				m.SetEdns0(4096, false)
				m.Extra[0].(*dns.OPT).SetVersion(1)
				return m
			},
			wantRcode: dns.RcodeBadVers, wantOPT: true,
		},
		{
			name: "a response is ignored",
			msg: func() *dns.Msg {
				m := query("ucupdates-r2.contoso.test.", dns.TypeA)
				m.Response = true
				return m
			},
			noReply: true,
		},
	}
	for _, tt := range tests {
		for _, transport := range []string{"udp", "tcp"} {
			t.Run(tt.name+"/"+transport, func(t *testing.T) {
				h := mustHandler(t, tt.cfg)
				req := tt.msg()
				req.Id = 4242
				rec := newRecorder(transport, "192.0.2.1")
				h.ServeDNS(rec, req)
				if tt.noReply {
					if rec.writes != 0 {
						t.Fatalf("answered %v", rec.msg)
					}
					return
				}
				if rec.writes != 1 {
					t.Fatalf("%d messages written, want 1", rec.writes)
				}
				got := rec.msg
				if got.Id != 4242 || !got.Response {
					t.Errorf("id %d response %v, want the query's id and QR set", got.Id, got.Response)
				}
				if got.Rcode != tt.wantRcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[got.Rcode], dns.RcodeToString[tt.wantRcode])
				}
				if got.Authoritative != tt.wantAA {
					t.Errorf("AA = %v, want %v", got.Authoritative, tt.wantAA)
				}
				if got.RecursionAvailable {
					t.Error("RA set: this is no resolver")
				}
				if got.RecursionDesired != req.RecursionDesired {
					t.Error("RD not copied")
				}
				if len(req.Question) == 1 && (len(got.Question) != 1 || got.Question[0].Name != dns.Fqdn(req.Question[0].Name)) {
					t.Errorf("question %v, want %v echoed", got.Question, req.Question)
				}
				if a := rrStrings(got.Answer); !slices.Equal(a, tt.wantAns) {
					t.Errorf("answer %q, want %q", a, tt.wantAns)
				}
				if ns := rrStrings(got.Ns); !slices.Equal(ns, tt.wantNs) {
					t.Errorf("authority %q, want %q", ns, tt.wantNs)
				}
				opt := got.IsEdns0()
				if (opt != nil) != tt.wantOPT {
					t.Errorf("OPT in answer: %v, want %v", opt != nil, tt.wantOPT)
				}
				if opt != nil && (opt.UDPSize() != MaxUDPSize || opt.Do()) {
					t.Errorf("OPT %v, want UDP size %d and no DO", opt, MaxUDPSize)
				}
			})
		}
	}
}

func TestNewHandlerRefuses(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no domain":           {Addrs: testAddrs},
		"bad domain":          {Domain: "contoso..test"},
		"underscore":          {Domain: "con_toso.test"},
		"unspecified address": {Domain: testDomain, Addrs: []netip.Addr{netip.IPv4Unspecified()}},
		"invalid address":     {Domain: testDomain, Addrs: []netip.Addr{{}}},
		"bad limit":           {Domain: testDomain, Limit: Limit{Rate: 1, Burst: 0, MaxSources: 1}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewHandler(cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestTruncation: an answer too large for the client's UDP buffer is cut
// and marked TC, so the client retries over TCP, where it is whole.
func TestTruncation(t *testing.T) {
	var addrs []netip.Addr
	for i := range 100 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}))
	}
	h := mustHandler(t, Config{Addrs: addrs})
	for _, tc := range []struct {
		transport string
		edns      uint16
		wantTC    bool
		maxLen    int
	}{
		{"udp", 0, true, dns.MinMsgSize},
		{"udp", 4096, true, MaxUDPSize},
		{"tcp", 0, false, dns.MaxMsgSize},
	} {
		t.Run(fmt.Sprintf("%s edns %d", tc.transport, tc.edns), func(t *testing.T) {
			req := query("ucupdates-r2.contoso.test.", dns.TypeA)
			if tc.edns != 0 {
				req.SetEdns0(tc.edns, false)
			}
			rec := newRecorder(tc.transport, "192.0.2.1")
			h.ServeDNS(rec, req)
			if rec.msg == nil {
				t.Fatal("no answer")
			}
			if rec.msg.Truncated != tc.wantTC {
				t.Errorf("TC = %v, want %v", rec.msg.Truncated, tc.wantTC)
			}
			if n := rec.size; n > tc.maxLen {
				t.Errorf("answer is %d bytes, more than %d", n, tc.maxLen)
			}
			if !tc.wantTC && len(rec.msg.Answer) != 100 {
				t.Errorf("%d answers over TCP, want 100", len(rec.msg.Answer))
			}
		})
	}
}

// TestRateLimitedQueries: past its burst a source gets no answer (dropped
// on UDP, connection closed on TCP), other sources are served, and the
// metrics count both.
func TestRateLimitedQueries(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	reg := prometheus.NewRegistry()
	h := mustHandler(t, Config{Limit: Limit{Rate: 1, Burst: 2, MaxSources: 10}, Now: func() time.Time { return now }, Registerer: reg})
	ask := func(transport, ip string) *recorder {
		rec := newRecorder(transport, ip)
		h.ServeDNS(rec, query("ucupdates-r2.contoso.test.", dns.TypeA))
		return rec
	}
	for i := range 2 {
		if rec := ask("udp", "192.0.2.1"); rec.writes != 1 {
			t.Fatalf("query %d within the burst not answered", i)
		}
	}
	if rec := ask("udp", "192.0.2.1"); rec.writes != 0 || rec.closed {
		t.Errorf("udp query over the limit: %d writes, closed %v; want it dropped", rec.writes, rec.closed)
	}
	if rec := ask("tcp", "192.0.2.1"); rec.writes != 0 || !rec.closed {
		t.Errorf("tcp query over the limit: %d writes, closed %v; want the connection closed", rec.writes, rec.closed)
	}
	if rec := ask("udp", "192.0.2.2"); rec.writes != 1 {
		t.Error("another source was limited too")
	}
	now = now.Add(time.Second)
	if rec := ask("udp", "192.0.2.1"); rec.writes != 1 {
		t.Error("no token after a second")
	}

	// A malformed query is counted under qtype "none".
	rec := newRecorder("udp", "192.0.2.3")
	h.ServeDNS(rec, &dns.Msg{})
	want := map[string]float64{
		`deviceupdate_dns_queries_total{qtype="A",rcode="NOERROR",transport="udp"}`:    4,
		`deviceupdate_dns_queries_total{qtype="none",rcode="FORMERR",transport="udp"}`: 1,
		`deviceupdate_dns_rate_limited_total{transport="udp"}`:                         1,
		`deviceupdate_dns_rate_limited_total{transport="tcp"}`:                         1,
	}
	got := gather(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// gather returns every counter in reg as `name{labels}` → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = m.GetCounter().GetValue()
		}
	}
	return out
}
