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
	URL         string        // the poll endpoint
	Phones      int           // distinct phones, polled round-robin
	Concurrency int           // requests in flight (connections)
	Duration    time.Duration // how long to run, when Requests is 0
	Requests    int           // how many polls, when not 0
	Model       string
	Version     string // the version the phones run
	TLS         *tls.Config
}

// Result is what a run measured.
type Result struct {
	Requests  int64         `json:"requests"`
	OK        int64         `json:"ok"`
	Busy      int64         `json:"busy"`   // 503 answers
	Failed    int64         `json:"failed"` // other statuses and transport errors
	Elapsed   time.Duration `json:"elapsedNs"`
	PerSecond float64       `json:"perSecond"`
	P50       time.Duration `json:"p50Ns"`
	P99       time.Duration `json:"p99Ns"`
}

// Body returns the poll of phone i.
func Body(i int, model, version string) []byte {
	return []byte(fmt.Sprintf(`<Request><DeviceType>UCPhone</DeviceType><MacAddress>02-00-%02X-%02X-%02X-%02X</MacAddress>`+
		`<Brand>Polycom</Brand><Model>%s</Model><Revision>A</Revision><Locale>ENU</Locale><Trigger>periodic</Trigger>`+
		`<Modules><Module UpdateType="CPE" Filename="CPE.nbt" Version="%s"/></Modules></Request>`,
		byte(i>>24), byte(i>>16), byte(i>>8), byte(i), model, version))
}

// Run polls until the count or the time is reached, or ctx ends.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Phones <= 0 || o.Concurrency <= 0 {
		return Result{}, fmt.Errorf("loadgen: phones and concurrency must be positive")
	}
	tr := &http.Transport{TLSClientConfig: o.TLS, MaxIdleConnsPerHost: o.Concurrency, MaxConnsPerHost: o.Concurrency, ForceAttemptHTTP2: false,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	if o.Duration > 0 && o.Requests == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	var next, ok, busy, failed atomic.Int64
	lat := make([][]time.Duration, o.Concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				if o.Requests > 0 && n >= int64(o.Requests) {
					return
				}
				body := Body(int(n%int64(o.Phones)), o.Model, o.Version)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, bytes.NewReader(body))
				req.Header.Set("Content-Type", "text/xml")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[w] = append(lat[w], time.Since(t0))
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusServiceUnavailable:
					busy.Add(1)
				default:
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := Result{OK: ok.Load(), Busy: busy.Load(), Failed: failed.Load(), Elapsed: elapsed}
	r.Requests = r.OK + r.Busy + r.Failed
	r.PerSecond = float64(r.OK+r.Busy) / elapsed.Seconds()
	if len(all) > 0 {
		r.P50, r.P99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r, nil
}
