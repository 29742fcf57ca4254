// Package discovery is the DNS responder of SPEC §8: phones that never
// signed in look up ucupdates-r2.<domain> (Lync), and the service answers
// that name itself, with its own addresses.
//
// Handler decides every answer and is pure apart from its rate limiter and
// metrics, so it is tested with a recorder; Server runs it over UDP and TCP
// on one address. What is answered:
//
//   - A and AAAA for ucupdates-r2.<domain>, in any letter case and with or
//     without the final dot: the configured addresses, authoritative (AA),
//     TTL 300 s. The owner name is written as the question asked it.
//   - Any other type for that name (MX, TXT, ...), or A/AAAA when no address
//     of that family is configured: NOERROR with no answer (NODATA) and the
//     domain's SOA in the authority section, so resolvers cache the absence
//     for 60 s (RFC 2308).
//   - The domain itself: its SOA for type SOA, NODATA for other types.
//   - Any other name under the domain: NXDOMAIN with the SOA, authoritative.
//   - Names outside the domain, classes other than IN, and ANY, AXFR and
//     IXFR for any name: REFUSED.
//   - No question or more than one, or more than one OPT record: FORMERR.
//     An opcode other than QUERY: NOTIMP. An EDNS version other than 0:
//     BADVERS. Responses (the QR bit) are ignored.
//
// Every source is rate limited (see Limit); a query over its source's
// limit gets no answer at all: dropped on UDP, its connection closed on
// TCP, so a spoofed flood is not reflected.
package discovery

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// Label is the host label phones look up under the domain (Lync's
// UCUpdates-R2, matched in any case).
const Label = "ucupdates-r2"

// Answer parameters.
const (
	// DefaultTTL is the TTL of the A and AAAA answers.
	DefaultTTL = 300
	// NegativeTTL is the TTL of the SOA and its minimum field: how long a
	// resolver caches NXDOMAIN and NODATA answers.
	NegativeTTL = 60
	// MaxUDPSize is the EDNS payload size this responder advertises and
	// the largest UDP answer it sends (the DNS flag day 2020 value).
	MaxUDPSize = 1232
)

// ErrConfig means a Handler's configuration is unusable.
var ErrConfig = errors.New("discovery: bad configuration")

// Config configures a Handler.
type Config struct {
	// Domain is the DNS domain; the handler answers ucupdates-r2.<Domain>.
	Domain string
	// Addrs are the addresses the name resolves to.
	Addrs []netip.Addr
	// TTL of the answers; 0 means DefaultTTL.
	TTL uint32
	// Limit is the per-source rate limit; the zero value means DefaultLimit.
	Limit Limit
	// Registerer receives the metrics; nil means none are registered.
	Registerer prometheus.Registerer
	// Logger logs each query at debug level; nil means no logging.
	Logger *zap.Logger
	// Now is the clock of the rate limiter; nil means time.Now.
	Now func() time.Time
}

// Handler answers the discovery queries. It is a dns.Handler and is safe
// for concurrent use.
type Handler struct {
	zone    string // the domain, lower case, fully qualified
	target  string // ucupdates-r2.<zone>
	v4, v6  []netip.Addr
	ttl     uint32
	soa     *dns.SOA
	limiter *limiter
	metrics *metrics
	logger  *zap.Logger
}

var _ dns.Handler = (*Handler)(nil)

// NewHandler returns a handler for cfg. It registers its metrics with
// cfg.Registerer, so it may be called once per registry.
func NewHandler(cfg Config) (*Handler, error) {
	zone := dns.CanonicalName(strings.TrimSpace(cfg.Domain))
	if err := deviceupdate.ValidateDNSName(strings.TrimSuffix(zone, ".")); err != nil {
		return nil, fmt.Errorf("%w: domain %q is not a DNS domain: %s", ErrConfig, cfg.Domain, deviceupdate.ErrorMessage(err))
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Limit == (Limit{}) {
		cfg.Limit = DefaultLimit
	}
	if cfg.Limit.Rate <= 0 || cfg.Limit.Burst < 1 || cfg.Limit.MaxSources < 1 {
		return nil, fmt.Errorf("%w: rate limit %+v: want a positive rate, burst and table size", ErrConfig, cfg.Limit)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	h := &Handler{
		zone:    zone,
		target:  Label + "." + zone,
		ttl:     cfg.TTL,
		limiter: newLimiter(cfg.Limit, cfg.Now),
		logger:  cfg.Logger,
	}
	for _, a := range cfg.Addrs {
		a = a.Unmap()
		switch {
		case !a.IsValid() || a.IsUnspecified():
			return nil, fmt.Errorf("%w: %v is not an address to answer with", ErrConfig, a)
		case a.Is4():
			h.v4 = append(h.v4, a)
		default:
			h.v6 = append(h.v6, a.WithZone(""))
		}
	}
	h.soa = &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: NegativeTTL},
		Ns:      h.target,
		Mbox:    "hostmaster." + zone,
		Serial:  1, // nothing transfers the zone
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  NegativeTTL,
	}
	if cfg.Registerer != nil {
		m, err := newMetrics(cfg.Registerer)
		if err != nil {
			return nil, err
		}
		h.metrics = m
	}
	return h, nil
}

// Name returns the name the handler answers, fully qualified, lower case.
func (h *Handler) Name() string { return h.target }

// ServeDNS answers one query: it applies the source's rate limit, then
// writes Reply's answer, truncated to what the client can take over UDP.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	transport := "tcp"
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		transport = "udp"
	}
	if !h.limiter.allow(sourceAddr(w.RemoteAddr())) {
		h.metrics.limited(transport)
		h.logger.Debug("dns query rate limited", zap.String("transport", transport), zap.Stringer("remote", w.RemoteAddr()))
		if transport == "tcp" {
			_ = w.Close()
		}
		return
	}
	m := h.Reply(r)
	if m == nil {
		return
	}
	if transport == "udp" {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(min(max(opt.UDPSize(), dns.MinMsgSize), MaxUDPSize))
		}
		m.Truncate(size)
	}
	qtype, qname := "none", ""
	if len(r.Question) == 1 {
		qtype, qname = typeLabel(r.Question[0].Qtype), r.Question[0].Name
	}
	rcode := dns.RcodeToString[m.Rcode]
	h.metrics.query(transport, qtype, rcode)
	h.logger.Debug("dns query", zap.String("transport", transport), zap.Stringer("remote", w.RemoteAddr()),
		zap.String("name", qname), zap.String("type", qtype), zap.String("rcode", rcode), zap.Int("answers", len(m.Answer)))
	if err := w.WriteMsg(m); err != nil {
		h.logger.Debug("dns write failed", zap.Stringer("remote", w.RemoteAddr()), zap.Error(err))
	}
}

// Reply returns the answer to r, or nil when r gets none (it is itself a
// response). It decides every answer of the responder and touches neither
// the rate limiter nor the metrics.
func (h *Handler) Reply(r *dns.Msg) *dns.Msg {
	if r.Response {
		return nil
	}
	m := new(dns.Msg)
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	if len(r.Question) == 1 {
		q := r.Question[0]
		q.Name = dns.Fqdn(q.Name)
		m.Question = []dns.Question{q}
	}
	var opt *dns.OPT
	opts := 0
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opt = o
			opts++
		}
	}
	if opt != nil {
		m.SetEdns0(MaxUDPSize, false)
	}
	switch {
	case r.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		return m
	case len(r.Question) != 1 || opts > 1:
		m.Rcode = dns.RcodeFormatError
		return m
	case opt != nil && opt.Version() != 0:
		m.Rcode = dns.RcodeBadVers
		return m
	}
	m.CheckingDisabled = r.CheckingDisabled
	q := m.Question[0]
	name := strings.ToLower(q.Name)
	if q.Qclass != dns.ClassINET || !dns.IsSubDomain(h.zone, name) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	switch q.Qtype {
	case dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	switch {
	case name == h.target:
		h.addresses(m, q)
	case name == h.zone && q.Qtype == dns.TypeSOA:
		m.Answer = append(m.Answer, dns.Copy(h.soa))
	case name == h.zone:
		// the apex exists, but holds nothing else: NODATA
	default:
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, dns.Copy(h.soa))
	}
	return m
}

// addresses adds the A or AAAA answers for q, whose name is ours.
func (h *Handler) addresses(m *dns.Msg, q dns.Question) {
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: h.ttl}
	switch q.Qtype {
	case dns.TypeA:
		hdr.Rrtype = dns.TypeA
		for _, a := range h.v4 {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
		}
	case dns.TypeAAAA:
		hdr.Rrtype = dns.TypeAAAA
		for _, a := range h.v6 {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
}

// typeLabel is the metrics label of a query type: its mnemonic, or
// "other" for the unassigned, so that the label set stays bounded.
func typeLabel(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "other"
}

// sourceAddr returns the client address of a query, or the zero Addr.
func sourceAddr(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr()
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}
