// Package loadgen replays phone polls against a server, as a boot storm of
// many distinct phones would: each request comes from another phone (its
// own MAC), over a few keep-alive connections, for a time or a count.
package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options shape a run.
type Options struct {
	// URLs are the poll endpoints: poll n goes to URLs[n % len(URLs)], so
	// that the polls spread evenly over a pool's front ends, as a load
	// balancer would spread them.
	URLs        []string
	Phones      int           // distinct phones, polled round-robin
	Concurrency int           // requests in flight (connections); the cap on them with Rate
	Duration    time.Duration // how long to run, when Requests is 0
	Requests    int           // how many polls, when not 0
	// Rate, when not 0, starts polls at this many per second whatever the
	// answers' speed (an open loop, as phones booting do), and latency is
	// counted from each poll's scheduled start, so a server that falls
	// behind shows it. A poll that finds Concurrency polls in flight
	// fails as dropped.
	Rate float64
	// NewConnections gives every poll its own connection, as distinct
	// phones have, instead of keep-alive connections.
	NewConnections bool
	Model          string
	Version        string // the version the phones run
	TLS            *tls.Config
}

// Result is what a run measured. Times are in seconds.
type Result struct {
	Requests   int64   `json:"requests"`
	OK         int64   `json:"ok"`
	Busy       int64   `json:"busy"`    // 503 answers with Retry-After
	Failed     int64   `json:"failed"`  // other statuses, 503 without Retry-After, transport errors
	Dropped    int64   `json:"dropped"` // with Rate: not started, Concurrency in flight
	Seconds    float64 `json:"seconds"` // how long the run took
	PerSecond  float64 `json:"perSecond"`
	P50Seconds float64 `json:"p50Seconds"` // latencies: the median,
	P99Seconds float64 `json:"p99Seconds"` // the 99th percentile
	MaxSeconds float64 `json:"maxSeconds"` // and the slowest
}

// Body returns the poll of phone i.
func Body(i int, model, version string) []byte {
	return []byte(fmt.Sprintf(`<Request><DeviceType>UCPhone</DeviceType><MacAddress>02-00-%02X-%02X-%02X-%02X</MacAddress>`+
		`<Brand>Polycom</Brand><Model>%s</Model><Revision>A</Revision><Locale>ENU</Locale><Trigger>periodic</Trigger>`+
		`<Modules><Module UpdateType="CPE" Filename="CPE.nbt" Version="%s"/></Modules></Request>`,
		byte(i>>24), byte(i>>16), byte(i>>8), byte(i), model, version))
}

// counters gather a run's outcomes.
type counters struct {
	ok, busy, failed, dropped atomic.Int64
	mu                        sync.Mutex
	lat                       []time.Duration
}

func (c *counters) record(status int, retryAfter bool, took time.Duration) {
	switch {
	case status == http.StatusOK:
		c.ok.Add(1)
	case status == http.StatusServiceUnavailable && retryAfter:
		c.busy.Add(1)
	default:
		c.failed.Add(1)
	}
	c.mu.Lock()
	c.lat = append(c.lat, took)
	c.mu.Unlock()
}

func (c *counters) result(elapsed time.Duration) Result {
	sort.Slice(c.lat, func(i, j int) bool { return c.lat[i] < c.lat[j] })
	r := Result{OK: c.ok.Load(), Busy: c.busy.Load(), Failed: c.failed.Load(), Dropped: c.dropped.Load(), Seconds: elapsed.Seconds()}
	r.Requests = r.OK + r.Busy + r.Failed + r.Dropped
	r.PerSecond = float64(r.OK+r.Busy) / elapsed.Seconds()
	if n := len(c.lat); n > 0 {
		r.P50Seconds, r.P99Seconds, r.MaxSeconds = c.lat[n/2].Seconds(), c.lat[n*99/100].Seconds(), c.lat[n-1].Seconds()
	}
	return r
}

// Run polls until the count or the time is reached, or ctx ends.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Phones <= 0 || o.Concurrency <= 0 || o.Rate < 0 {
		return Result{}, fmt.Errorf("loadgen: phones and concurrency must be positive")
	}
	if len(o.URLs) == 0 {
		return Result{}, fmt.Errorf("loadgen: no poll endpoint")
	}
	tr := &http.Transport{TLSClientConfig: o.TLS, MaxIdleConnsPerHost: o.Concurrency, MaxConnsPerHost: o.Concurrency, ForceAttemptHTTP2: false,
		DisableKeepAlives: o.NewConnections, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	if o.Duration > 0 && o.Requests == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	var c counters
	var raw []*endpoint
	if o.NewConnections {
		for _, u := range o.URLs {
			e, err := newEndpoint(u, o.TLS)
			if err != nil {
				return Result{}, err
			}
			raw = append(raw, e)
		}
	}
	// send polls the n-th endpoint and returns the answer's status and
	// whether it carried Retry-After.
	send := func(n int64, body []byte) (int, bool, error) {
		if raw != nil {
			return raw[n%int64(len(raw))].poll(ctx, body)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.URLs[n%int64(len(o.URLs))], bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/xml")
		resp, err := client.Do(req)
		if err != nil {
			return 0, false, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After") != "", nil
	}
	poll := func(n int64, since time.Time) {
		status, retryAfter, err := send(n, Body(int(n%int64(o.Phones)), o.Model, o.Version))
		if err != nil {
			if ctx.Err() == nil {
				c.failed.Add(1)
			}
			return
		}
		c.record(status, retryAfter, time.Since(since))
	}
	start := time.Now()
	if o.Rate > 0 {
		runOpen(ctx, o, start, poll, &c)
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range o.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					n := next.Add(1) - 1
					if o.Requests > 0 && n >= int64(o.Requests) {
						return
					}
					poll(n, time.Now())
				}
			}()
		}
		wg.Wait()
	}
	return c.result(time.Since(start)), nil
}

// runOpen starts poll n at start + n/Rate, at most Concurrency at once.
func runOpen(ctx context.Context, o Options, start time.Time, poll func(int64, time.Time), c *counters) {
	slots := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := int64(0); o.Requests == 0 || n < int64(o.Requests); n++ {
		at := start.Add(time.Duration(float64(n) / o.Rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			c.dropped.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			poll(n, at)
		}()
	}
}
