package discovery

import (
	"net/netip"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/ratelimit"
)

// size returns the number of sources tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sources.Len()
}

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLimiter(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	tests := []struct {
		name  string
		limit Limit
		steps func(t *testing.T, l *limiter, c *fakeClock)
	}{
		{
			name: "burst then refill", limit: Limit{Rate: 2, Burst: 3, MaxSources: 10},
			steps: func(t *testing.T, l *limiter, c *fakeClock) {
				expect(t, l, a, true, true, true, false, false)
				c.advance(500 * time.Millisecond) // one token at 2/s
				expect(t, l, a, true, false)
				c.advance(time.Hour) // refills to the burst, no further
				expect(t, l, a, true, true, true, false)
			},
		},
		{
			name: "sources are independent", limit: Limit{Rate: 1, Burst: 1, MaxSources: 10},
			steps: func(t *testing.T, l *limiter, c *fakeClock) {
				expect(t, l, a, true, false)
				expect(t, l, b, true, false)
			},
		},
		{
			name: "an IPv4-mapped address is the IPv4 source", limit: Limit{Rate: 1, Burst: 1, MaxSources: 10},
			steps: func(t *testing.T, l *limiter, c *fakeClock) {
				expect(t, l, netip.MustParseAddr("::ffff:192.0.2.1"), true)
				expect(t, l, a, false)
			},
		},
		{
			name: "an IPv6 /64 is one source", limit: Limit{Rate: 1, Burst: 1, MaxSources: 10},
			steps: func(t *testing.T, l *limiter, c *fakeClock) {
				expect(t, l, netip.MustParseAddr("2001:db8:1:2::1"), true)
				expect(t, l, netip.MustParseAddr("2001:db8:1:2:ffff::9"), false)
				expect(t, l, netip.MustParseAddr("2001:db8:1:3::1"), true)
			},
		},
		{
			name: "a full table sends new sources to the shared bucket", limit: Limit{Rate: 1, Burst: 2, MaxSources: 2},
			steps: func(t *testing.T, l *limiter, c *fakeClock) {
				expect(t, l, a, true)
				expect(t, l, b, true)
				for _, s := range []string{"198.51.100.1", "198.51.100.2"} {
					expect(t, l, netip.MustParseAddr(s), true) // the shared bucket's two tokens
				}
				expect(t, l, netip.MustParseAddr("198.51.100.3"), false)
				if n := l.size(); n != 2 {
					t.Errorf("table holds %d sources, want 2", n)
				}
			},
		},
		{
			name: "idle sources are pruned to make room", limit: Limit{Rate: 1, Burst: 2, MaxSources: 2},
			steps: func(t *testing.T, l *limiter, c *fakeClock) {
				expect(t, l, a, true)
				expect(t, l, b, true)
				c.advance(2 * time.Second) // both buckets full again
				expect(t, l, netip.MustParseAddr("198.51.100.1"), true, true, false)
				if n := l.size(); n != 1 {
					t.Errorf("table holds %d sources after pruning, want 1", n)
				}
			},
		},
		{
			name: "the table is pruned every minute", limit: Limit{Rate: 10, Burst: 10, MaxSources: 100},
			steps: func(t *testing.T, l *limiter, c *fakeClock) {
				for i := range 50 {
					expect(t, l, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), true)
				}
				c.advance(ratelimit.PruneEvery)
				expect(t, l, a, true)
				if n := l.size(); n != 1 {
					t.Errorf("table holds %d sources a minute later, want 1", n)
				}
			},
		},
		{
			name: "a clock stepping back takes nothing", limit: Limit{Rate: 1, Burst: 1, MaxSources: 10},
			steps: func(t *testing.T, l *limiter, c *fakeClock) {
				expect(t, l, a, true)
				c.advance(-time.Hour)
				expect(t, l, a, false)
				c.advance(time.Hour + time.Second)
				expect(t, l, a, true)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			tt.steps(t, newLimiter(tt.limit, c.now), c)
		})
	}
}

// expect asks the limiter once per element of want about addr.
func expect(t *testing.T, l *limiter, addr netip.Addr, want ...bool) {
	t.Helper()
	for i, w := range want {
		if got := l.allow(addr); got != w {
			t.Fatalf("%v query %d: allowed %v, want %v", addr, i+1, got, w)
		}
	}
}
