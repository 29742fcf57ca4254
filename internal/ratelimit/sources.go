// Package ratelimit holds what the service's rate limits share on top of
// golang.org/x/time/rate: a bounded table of state kept per client
// address (Sources), and the pacing of bytes read or written through a
// limiter that counts bytes (NewReader, WaitN).
package ratelimit

import (
	"net/netip"
	"time"
)

// PruneEvery is how often a Sources table forgets the sources it may.
const PruneEvery = time.Minute

// Sources keeps a value per source: an IPv4 address, or an IPv6 /64 (one
// host may hold a whole /64), as SourceKey says. It holds at most max
// sources. Sources whose value idle says may be forgotten are pruned
// every PruneEvery and when the table is full; while it is full of
// active sources, new ones share one overflow value. Forgetting a source
// must change nothing: a new one starts with a fresh value, as it was.
//
// Like a map, a Sources is not safe for concurrent use: its user guards
// it, and the values Get returns, with a lock of its own.
type Sources[V any] struct {
	max       int
	fresh     func() V
	idle      func(v V, now time.Time) bool
	m         map[netip.Addr]V
	overflow  V
	lastPrune time.Time
}

// NewSources returns an empty table of at most max sources, whose values
// fresh makes and idle says when they may be forgotten, pruned first at
// now plus PruneEvery.
func NewSources[V any](max int, fresh func() V, idle func(v V, now time.Time) bool, now time.Time) *Sources[V] {
	return &Sources[V]{max: max, fresh: fresh, idle: idle, m: make(map[netip.Addr]V), overflow: fresh(), lastPrune: now}
}

// Get returns the value of addr's source, adding a fresh one, or the
// shared overflow value when the table is full of sources that may not
// be forgotten.
func (s *Sources[V]) Get(addr netip.Addr, now time.Time) V {
	if now.Sub(s.lastPrune) >= PruneEvery {
		s.prune(now)
	}
	key := SourceKey(addr)
	if v, ok := s.m[key]; ok {
		return v
	}
	if len(s.m) >= s.max {
		s.prune(now)
	}
	if len(s.m) >= s.max {
		return s.overflow
	}
	v := s.fresh()
	s.m[key] = v
	return v
}

// Len returns the number of sources tracked.
func (s *Sources[V]) Len() int { return len(s.m) }

func (s *Sources[V]) prune(now time.Time) {
	for k, v := range s.m {
		if s.idle(v, now) {
			delete(s.m, k)
		}
	}
	s.lastPrune = now
}

// SourceKey returns the address a source is counted under: an IPv4
// address itself (also when written IPv4-mapped), an IPv6 address's /64.
func SourceKey(a netip.Addr) netip.Addr {
	if a = a.Unmap(); !a.Is6() {
		return a
	}
	p, _ := a.WithZone("").Prefix(64) // never fails for an IPv6 address
	return p.Addr()
}
