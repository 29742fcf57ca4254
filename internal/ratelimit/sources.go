// Package ratelimit holds what the service's rate limits share on top of
// golang.org/x/time/rate: a bounded table of state kept per key (Table)
// or per client address (Sources), the failure budgets that throttle
// sign-ins before their password check (FailureBudgets), and the pacing
// of bytes read or written through a limiter that counts bytes
// (NewReader, WaitN).
package ratelimit

import (
	"net/netip"
	"time"
)

// Sources is a Table keyed by source: an IPv4 address, or an IPv6 /64
// (one host may hold a whole /64), as SourceKey says. Like a Table, it is
// not safe for concurrent use.
type Sources[V any] struct {
	t *Table[netip.Addr, V]
}

// NewSources returns an empty table of at most max sources, as NewTable.
func NewSources[V any](max int, fresh func() V, idle func(v V, now time.Time) bool, now time.Time) *Sources[V] {
	return &Sources[V]{NewTable[netip.Addr](max, fresh, idle, now)}
}

// Get returns the value of addr's source, as Table.Get.
func (s *Sources[V]) Get(addr netip.Addr, now time.Time) V { return s.t.Get(SourceKey(addr), now) }

// Len returns the number of sources tracked.
func (s *Sources[V]) Len() int { return s.t.Len() }

// SourceKey returns the address a source is counted under: an IPv4
// address itself (also when written IPv4-mapped), an IPv6 address's /64.
func SourceKey(a netip.Addr) netip.Addr {
	if a = a.Unmap(); !a.Is6() {
		return a
	}
	p, _ := a.WithZone("").Prefix(64) // never fails for an IPv6 address
	return p.Addr()
}
