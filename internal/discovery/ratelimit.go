package discovery

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/deviceupdate/deviceupdate/internal/ratelimit"
)

// Limit is the per-source rate limit: a token bucket of Burst queries,
// refilled at Rate queries a second, for each source. A source is an
// IPv4 address or an IPv6 /64 (one host may hold a whole /64). The table
// of sources holds at most MaxSources; sources idle long enough for their
// bucket to be full again are pruned, and while the table is full of
// active sources, new ones share one bucket.
type Limit struct {
	Rate       float64 // queries a second, per source
	Burst      int     // queries a source may send at once
	MaxSources int     // sources tracked at once
}

// DefaultLimit allows a source 20 queries a second, 40 at once, and tracks
// up to 10000 sources (about 1.4 MiB). A phone asks once at boot; a
// resolver in front of thousands of phones caches the answer for its TTL.
var DefaultLimit = Limit{Rate: 20, Burst: 40, MaxSources: 10000}

type limiter struct {
	now func() time.Time

	mu      sync.Mutex
	sources *ratelimit.Sources[*rate.Limiter]
}

func newLimiter(l Limit, now func() time.Time) *limiter {
	fresh := func() *rate.Limiter { return rate.NewLimiter(rate.Limit(l.Rate), l.Burst) }
	// A bucket full again may be forgotten: a new source starts full.
	full := func(b *rate.Limiter, now time.Time) bool { return b.TokensAt(now) >= float64(l.Burst) }
	return &limiter{now: now, sources: ratelimit.NewSources(l.MaxSources, fresh, full, now())}
}

// allow reports whether a query from addr is within its source's limit.
func (l *limiter) allow(addr netip.Addr) bool {
	now := l.now()
	l.mu.Lock()
	b := l.sources.Get(addr, now)
	l.mu.Unlock()
	return b.AllowN(now, 1)
}
