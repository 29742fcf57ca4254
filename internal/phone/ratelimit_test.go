package phone_test

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/phone"
)

// TestLimiterSharesOneRate: readers of one limiter together read at its
// rate, whatever their number; a nil limiter does not limit.
func TestLimiterSharesOneRate(t *testing.T) {
	const rate = 2 << 20 // bytes per second
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
			l := phone.NewLimiter(rate)
			start := time.Now()
			var wg sync.WaitGroup
			for range tt.readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := io.Copy(io.Discard, l.Reader(context.Background(), bytes.NewReader(make([]byte, tt.each))))
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
		var l *phone.Limiter
		start := time.Now()
		if n, _ := io.Copy(io.Discard, l.Reader(context.Background(), bytes.NewReader(make([]byte, 64<<20)))); n != 64<<20 {
			t.Fatalf("read %d", n)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("64 MiB through a nil limiter took %v", took)
		}
	})
	t.Run("a cancelled reader stops waiting", func(t *testing.T) {
		l := phone.NewLimiter(64 << 10)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := io.Copy(io.Discard, l.Reader(ctx, bytes.NewReader(make([]byte, 1<<20))))
		if err != context.DeadlineExceeded {
			t.Fatalf("error %v, want the deadline", err)
		}
	})
}

func TestSimAddrs(t *testing.T) {
	tests := []struct {
		name      string
		first     string
		n         int
		want      []string // first and last
		wantError bool
	}{
		{"from .1", "127.0.1.1", 3, []string{"127.0.1.1", "127.0.1.3"}, false},
		{"over a .255 and a .0", "127.0.1.254", 3, []string{"127.0.1.254", "127.0.2.2"}, false},
		{"past 127/8", "127.255.255.253", 3, nil, true},
		{"not loopback", "10.0.0.1", 1, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := phone.SimAddrs(netip.MustParseAddr(tt.first), tt.n)
			if tt.wantError {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || len(got) != tt.n || got[0].String() != tt.want[0] || got[len(got)-1].String() != tt.want[1] {
				t.Fatalf("got %v, %v; want %d from %s to %s", got, err, tt.n, tt.want[0], tt.want[1])
			}
		})
	}
}
