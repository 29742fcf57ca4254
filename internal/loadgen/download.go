package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DownloadOptions shape a download run: Clients clients, each on its own
// connection, fetch URL whole at once, as a site's phones do after an
// approval.
type DownloadOptions struct {
	URL     string
	Clients int
	TLS     *tls.Config
	// MaxRetryWait caps how long a client told 503 waits before trying
	// again (it waits Retry-After, at most this).
	MaxRetryWait time.Duration
}

// DownloadResult is what a download run measured.
type DownloadResult struct {
	Clients   int     `json:"clients"`
	Completed int64   `json:"completed"` // downloads of the whole file
	Busy      int64   `json:"busy"`      // 503 answers, retried
	Failed    int64   `json:"failed"`
	Error     string  `json:"error,omitempty"` // the first failure's
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"` // how long the run took
	MiBPerSec float64 `json:"mibPerSecond"`
}

// Download runs the clients until each has the file or failed.
func Download(ctx context.Context, o DownloadOptions) (DownloadResult, error) {
	if o.Clients <= 0 {
		return DownloadResult{}, fmt.Errorf("loadgen: clients must be positive")
	}
	tr := &http.Transport{TLSClientConfig: o.TLS, DisableKeepAlives: true, ForceAttemptHTTP2: false,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var completed, busy, failed, total atomic.Int64
	var firstErr atomic.Pointer[string]
	fetch := func() (retry time.Duration, err error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			return max(time.Duration(secs)*time.Second, 10*time.Millisecond), nil
		}
		n, err := io.Copy(io.Discard, resp.Body)
		total.Add(n)
		if err == nil && (resp.StatusCode != http.StatusOK || n != resp.ContentLength) {
			err = fmt.Errorf("status %d, %d of %d bytes", resp.StatusCode, n, resp.ContentLength)
		}
		return 0, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				retry, err := fetch()
				switch {
				case err != nil:
					failed.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					return
				case retry == 0:
					completed.Add(1)
					return
				}
				busy.Add(1)
				if o.MaxRetryWait > 0 {
					retry = min(retry, o.MaxRetryWait)
				}
				select {
				case <-ctx.Done():
				case <-time.After(retry):
				}
			}
		}()
	}
	wg.Wait()
	r := DownloadResult{Clients: o.Clients, Completed: completed.Load(), Busy: busy.Load(), Failed: failed.Load(),
		Bytes: total.Load(), Seconds: time.Since(start).Seconds()}
	r.MiBPerSec = float64(r.Bytes) / (1 << 20) / r.Seconds
	if p := firstErr.Load(); p != nil {
		r.Error = *p
	}
	return r, nil
}
