package handler

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the request metrics every listener reports.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
	// authFailures counts external requests refused for want of valid
	// credentials, by reason (see requireExternal).
	authFailures *prometheus.CounterVec
	// authThrottled counts external sign-ins refused without a password
	// check, by reason (see externalPrincipal).
	authThrottled *prometheus.CounterVec
	// slowCuts counts clients cut off for sending or reading too slowly,
	// by kind: poll, upload, download.
	slowCuts *prometheus.CounterVec

	// series caches the children of requests and duration by their
	// labels: a label lookup hashes every value, a map of a small struct
	// does not allocate.
	series sync.Map // seriesKey → *seriesPair
}

type seriesKey struct {
	listener, method, route string
	code                    int
}

type seriesPair struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// observe counts one answered request and its time.
func (m *httpMetrics) observe(listener, method, route string, code int, seconds float64) {
	switch method {
	case "GET", "HEAD", "POST", "PUT", "DELETE":
	default:
		method = "other" // a client's made-up methods must not grow the series without end
	}
	k := seriesKey{listener, method, route, code}
	p, ok := m.series.Load(k)
	if !ok {
		p, _ = m.series.LoadOrStore(k, &seriesPair{
			requests: m.requests.WithLabelValues(listener, method, route, strconv.Itoa(code)),
			duration: m.duration.WithLabelValues(listener, route),
		})
	}
	sp := p.(*seriesPair)
	sp.requests.Inc()
	sp.duration.Observe(seconds)
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deviceupdate_http_requests_total",
			Help: "HTTP requests answered, by listener, method, route and status code.",
		}, []string{"listener", "method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "deviceupdate_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by listener and route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60},
		}, []string{"listener", "route"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "deviceupdate_http_requests_in_flight",
			Help: "HTTP requests being answered now, by listener.",
		}, []string{"listener"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deviceupdate_external_auth_failures_total",
			Help: "External phone requests refused with 401, by reason: no_credentials, unsupported_scheme, bad_credentials, bad_certificate.",
		}, []string{"reason"}),
		authThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deviceupdate_external_auth_throttled_total",
			Help: "External HTTP Basic sign-ins refused without a password check, by reason: failures (the source address failed too often lately; 401), in_flight (the source has as many checks running as it may; 503), wait (no password check free within 2 s; 503).",
		}, []string{"reason"}),
		slowCuts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deviceupdate_slow_clients_cut_total",
			Help: "Clients cut off for being too slow, by kind: poll (body not in within its deadline), upload (below the minimum rate), download (no progress for the stall timeout).",
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inflight, m.authFailures, m.authThrottled, m.slowCuts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register http metrics: %w", err)
		}
	}
	return m, nil
}
