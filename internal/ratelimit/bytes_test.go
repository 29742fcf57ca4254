package ratelimit_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/deviceupdate/deviceupdate/internal/ratelimit"
)

// TestReaderSharesOneRate: readers of one limiter together read at its
// rate, whatever their number; a nil limiter does not limit.
func TestReaderSharesOneRate(t *testing.T) {
	const bytesPerSecond = 2 << 20
	tests := []struct {
		name    string
		readers int
		each    int
	}{
		{"one reader", 1, 1 << 20},
		{"eight readers", 8, 128 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := rate.NewLimiter(bytesPerSecond, bytesPerSecond/20) // a burst of 50 ms, as a phone's WAN
			start := time.Now()
			var wg sync.WaitGroup
			for range tt.readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := ratelimit.NewReader(context.Background(), l, bytes.NewReader(make([]byte, tt.each)), 64<<10)
					n, err := io.Copy(io.Discard, r)
					if err != nil || n != int64(tt.each) {
						t.Errorf("read %d of %d: %v", n, tt.each, err)
					}
				}()
			}
			wg.Wait()
			// 1 MiB at 2 MiB/s: 0.5 s, less the burst of 0.05 s.
			if took := time.Since(start); took < 400*time.Millisecond || took > 3*time.Second {
				t.Errorf("1 MiB at 2 MiB/s took %v", took)
			}
		})
	}
	t.Run("nil does not limit", func(t *testing.T) {
		start := time.Now()
		if n, _ := io.Copy(io.Discard, ratelimit.NewReader(context.Background(), nil, bytes.NewReader(make([]byte, 64<<20)), 64<<10)); n != 64<<20 {
			t.Fatalf("read %d", n)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("64 MiB through a nil limiter took %v", took)
		}
	})
	t.Run("a cancelled reader stops waiting", func(t *testing.T) {
		l := rate.NewLimiter(64<<10, 32<<10)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := io.Copy(io.Discard, ratelimit.NewReader(ctx, l, bytes.NewReader(make([]byte, 1<<20)), 64<<10))
		if err != context.DeadlineExceeded {
			t.Fatalf("error %v, want the deadline", err)
		}
	})
}

// TestWaitN: the cases where WaitN does not wait for the limiter.
func TestWaitN(t *testing.T) {
	l := rate.NewLimiter(1, 10)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		l       *rate.Limiter
		n       int
		wantErr string
	}{
		{"within the burst", context.Background(), l, 10, ""},
		{"nil limiter", context.Background(), nil, 1 << 30, ""},
		{"nothing to book", context.Background(), l, 0, ""},
		{"more than the burst", context.Background(), rate.NewLimiter(1, 10), 11, "11 bytes at once is more than the burst of 10"},
		{"ended context", ended, nil, 1, "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ratelimit.WaitN(tt.ctx, tt.l, tt.n)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("WaitN = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
