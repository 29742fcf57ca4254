package discovery

import (
	"net/netip"
	"sync"
	"time"
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
// up to 10000 sources (under 1 MiB). A phone asks once at boot; a
// resolver in front of thousands of phones caches the answer for its TTL.
var DefaultLimit = Limit{Rate: 20, Burst: 40, MaxSources: 10000}

// pruneEvery is how often idle sources are dropped from the table.
const pruneEvery = time.Minute

type bucket struct {
	tokens float64
	last   time.Time
}

// take refills the bucket for the time since its last use and takes a
// token if there is one.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(burst, b.tokens+el.Seconds()*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

type limiter struct {
	rate, burst float64
	max         int
	idle        time.Duration // after this long unused, a bucket is full again
	now         func() time.Time

	mu        sync.Mutex
	sources   map[netip.Addr]*bucket
	overflow  bucket
	lastPrune time.Time
}

func newLimiter(l Limit, now func() time.Time) *limiter {
	t := now()
	return &limiter{
		rate:      l.Rate,
		burst:     float64(l.Burst),
		max:       l.MaxSources,
		idle:      time.Duration(float64(l.Burst) / l.Rate * float64(time.Second)),
		now:       now,
		sources:   make(map[netip.Addr]*bucket),
		overflow:  bucket{tokens: float64(l.Burst), last: t},
		lastPrune: t,
	}
}

// allow reports whether a query from addr is within its source's limit.
func (l *limiter) allow(addr netip.Addr) bool {
	key := sourceKey(addr)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastPrune) >= pruneEvery {
		l.prune(now)
	}
	b, ok := l.sources[key]
	if !ok {
		if len(l.sources) >= l.max {
			l.prune(now)
		}
		if len(l.sources) >= l.max {
			return l.overflow.take(now, l.rate, l.burst)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.sources[key] = b
	}
	return b.take(now, l.rate, l.burst)
}

// prune drops the sources whose buckets have refilled: forgetting them
// changes nothing, as a new source starts with a full bucket.
func (l *limiter) prune(now time.Time) {
	for k, b := range l.sources {
		if now.Sub(b.last) >= l.idle {
			delete(l.sources, k)
		}
	}
	l.lastPrune = now
}

// size returns the number of sources tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources)
}

// sourceKey is the address a source is counted under: an IPv4 address
// itself, an IPv6 address's /64.
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return a
}
