package phone

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestNewWANLimiter: the link's rate is the one asked, and its burst 50 ms
// of it but at least 32 KiB, as phone sim --wan-rate always had.
func TestNewWANLimiter(t *testing.T) {
	tests := []struct {
		name      string
		rate      float64
		wantBurst int
	}{
		{"4 MiB/s: 50 ms", 4 << 20, 209715},
		{"64 KiB/s: at least 32 KiB", 64 << 10, 32 << 10},
		{"640 KiB/s: exactly 32 KiB", 640 << 10, 32 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewWANLimiter(tt.rate)
			if l.Limit() != rate.Limit(tt.rate) || l.Burst() != tt.wantBurst {
				t.Errorf("rate %v, burst %d; want %v and %d", l.Limit(), l.Burst(), tt.rate, tt.wantBurst)
			}
		})
	}
	t.Run("no WAN reads the body itself", func(t *testing.T) {
		body := bytes.NewReader(nil)
		if r := wanReader(context.Background(), nil, body); r != body {
			t.Errorf("got %T, want the body", r)
		}
	})
}

// zeros reads as endless zeros, 4 KiB at most per Read, as a socket might.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	n := min(len(p), 4096)
	clear(p[:n])
	return n, nil
}

// BenchmarkWANRate: N phones share a WAN limiter of 4 MiB/s (phone sim
// --wan-rate) and read 8 MiB in all; it reports the rate achieved over
// the rate asked, which the burst of 50 ms puts a little above 1.
//
//	go test -run '^$' -bench WANRate -benchtime 3x ./internal/phone/
func BenchmarkWANRate(b *testing.B) {
	const rate, total = 4 << 20, 8 << 20
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			var ratio float64
			for b.Loop() {
				wan := NewWANLimiter(rate)
				start := time.Now()
				var wg sync.WaitGroup
				for range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						io.Copy(io.Discard, io.LimitReader(wanReader(context.Background(), wan, zeros{}), total/int64(n)))
					}()
				}
				wg.Wait()
				ratio += float64(total) / time.Since(start).Seconds() / rate
			}
			b.ReportMetric(ratio/float64(b.N), "achieved/asked")
		})
	}
}
