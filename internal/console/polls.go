package console

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pollRoute marks the routes of the phones' polls in the request metric.
const pollRoute = "ucdevice.upx"

// pollsAnswered sums deviceupdate_http_requests_total over the poll
// routes of every listener.
func pollsAnswered(g prometheus.Gatherer) (uint64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "deviceupdate_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && strings.HasSuffix(l.GetValue(), pollRoute) {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return uint64(n), nil
}

// pollRate turns the running count of polls into a rate: it keeps a few
// samples of the count, taken when the dashboard is shown, and divides
// by the time since the oldest one of the last ten minutes.
type pollRate struct {
	mu      sync.Mutex
	samples []pollSample
}

type pollSample struct {
	at time.Time
	n  uint64
}

const (
	rateWindow  = 10 * time.Minute
	rateSamples = 64
)

func newPollRate() *pollRate { return &pollRate{} }

func (p *pollRate) perMinute(now time.Time, n uint64) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.samples) > 1 && now.Sub(p.samples[1].at) > rateWindow || len(p.samples) >= rateSamples {
		p.samples = p.samples[1:]
	}
	var out string
	if len(p.samples) == 0 || now.Sub(p.samples[0].at) < 10*time.Second || n < p.samples[0].n {
		out = fmt.Sprintf("measuring (%d answered so far)", n)
	} else {
		first := p.samples[0]
		out = fmt.Sprintf("%.1f (over the last %s)", float64(n-first.n)/now.Sub(first.at).Minutes(), now.Sub(first.at).Round(time.Second))
	}
	if len(p.samples) == 0 || now.Sub(p.samples[len(p.samples)-1].at) >= 10*time.Second {
		p.samples = append(p.samples, pollSample{now, n})
	}
	return out
}
