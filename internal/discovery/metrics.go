package discovery

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the responder's Prometheus metrics. A nil *metrics counts
// nothing, for handlers built without a registry.
type metrics struct {
	queries   *prometheus.CounterVec
	limitedC  *prometheus.CounterVec
	malformed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deviceupdate_dns_queries_total",
			Help: "DNS queries answered by the discovery responder, by transport, query type and response code.",
		}, []string{"transport", "qtype", "rcode"}),
		limitedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deviceupdate_dns_rate_limited_total",
			Help: "DNS queries left unanswered because their source exceeded its rate limit, by transport.",
		}, []string{"transport"}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deviceupdate_dns_malformed_total",
			Help: "DNS messages that could not be parsed (answered FORMERR when their header was readable).",
		}),
	}
	for _, c := range []prometheus.Collector{m.queries, m.limitedC, m.malformed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register dns metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) query(transport, qtype, rcode string) {
	if m != nil {
		m.queries.WithLabelValues(transport, qtype, rcode).Inc()
	}
}

func (m *metrics) limited(transport string) {
	if m != nil {
		m.limitedC.WithLabelValues(transport).Inc()
	}
}

func (m *metrics) invalid() {
	if m != nil {
		m.malformed.Inc()
	}
}
