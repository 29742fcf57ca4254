package ratelimit_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/ratelimit"
)

func TestSourceKey(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"IPv4", "192.0.2.1", "192.0.2.1"},
		{"IPv4-mapped", "::ffff:192.0.2.1", "192.0.2.1"},
		{"IPv6: its /64", "2001:db8:1:2:ffff::9", "2001:db8:1:2::"},
		{"a zone is dropped", "fe80::1%eth0", "fe80::"},
		{"IPv6 loopback", "::1", "::"},
		{"the zero address", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in, want netip.Addr
			if tt.in != "" {
				in, want = netip.MustParseAddr(tt.in), netip.MustParseAddr(tt.want)
			}
			if got := ratelimit.SourceKey(in); got != want {
				t.Errorf("SourceKey(%s) = %s, want %s", in, got, want)
			}
		})
	}
}

// uses counts the Gets of a source; it may be forgotten once it has
// been used more than once (any rule would do).
type uses struct{ n int }

func TestSources(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	get := func(s *ratelimit.Sources[*uses], addr netip.Addr, now time.Time) *uses {
		u := s.Get(addr, now)
		u.n++
		return u
	}
	tests := []struct {
		name  string
		steps func(t *testing.T, s *ratelimit.Sources[*uses])
	}{
		{"one value per source", func(t *testing.T, s *ratelimit.Sources[*uses]) {
			get(s, a, start)
			get(s, netip.MustParseAddr("::ffff:192.0.2.1"), start)
			if u := get(s, b, start); u.n != 1 {
				t.Errorf("a second source shares the first's value: %d uses", u.n)
			}
			if u := get(s, a, start); u.n != 3 || s.Len() != 2 {
				t.Errorf("the first source: %d uses, %d sources; want 3 and 2", u.n, s.Len())
			}
		}},
		{"a full table shares the overflow value", func(t *testing.T, s *ratelimit.Sources[*uses]) {
			get(s, a, start)
			get(s, b, start)
			get(s, c, start)
			if u := get(s, netip.MustParseAddr("198.51.100.1"), start); u.n != 2 || s.Len() != 2 {
				t.Errorf("sources past the table: %d uses of one value, %d sources; want 2 and 2", u.n, s.Len())
			}
		}},
		{"a full table forgets what it may", func(t *testing.T, s *ratelimit.Sources[*uses]) {
			get(s, a, start)
			get(s, a, start) // may be forgotten now
			get(s, b, start)
			if u := get(s, c, start); u.n != 1 || s.Len() != 2 {
				t.Errorf("a new source: %d uses, %d sources; want a fresh value and 2", u.n, s.Len())
			}
			if u := get(s, a, start); u.n != 1 {
				t.Errorf("a forgotten source comes back with %d uses, want a fresh value", u.n)
			}
		}},
		{"a client changing its address within its /64 is one source", func(t *testing.T, s *ratelimit.Sources[*uses]) {
			for i := range 1000 {
				get(s, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 8: byte(i >> 8), 15: byte(i)}), start)
			}
			if s.Len() != 1 {
				t.Errorf("%d sources, want 1", s.Len())
			}
		}},
		{"a full table grows no more", func(t *testing.T, s *ratelimit.Sources[*uses]) {
			get(s, a, start)
			get(s, b, start)
			for i := range 1000 {
				get(s, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), start.Add(time.Duration(i)*time.Second))
			}
			if s.Len() != 2 {
				t.Errorf("%d sources, want 2", s.Len())
			}
		}},
		{"pruned every minute", func(t *testing.T, s *ratelimit.Sources[*uses]) {
			get(s, a, start)
			get(s, a, start)
			get(s, b, start.Add(ratelimit.PruneEvery-time.Nanosecond))
			if s.Len() != 2 {
				t.Fatalf("%d sources before the minute, want 2", s.Len())
			}
			get(s, b, start.Add(ratelimit.PruneEvery))
			if s.Len() != 1 {
				t.Errorf("%d sources a minute later, want 1", s.Len())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.steps(t, ratelimit.NewSources(2, func() *uses { return new(uses) }, func(u *uses, _ time.Time) bool { return u.n > 1 }, start))
		})
	}
}
