package handler

import (
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkThrottle measures the sign-in throttle's part of a Basic
// sign-in that is not remembered (admit, then done): from one source or
// from a full table of sources, each signing in, and from a source over
// its budget, refused without a check as a guessing attack is. The
// parallel runs have a source per goroutine, as concurrent clients do.
//
//	go test -run '^$' -bench Throttle -count 6 ./internal/handler/
func BenchmarkThrottle(b *testing.B) {
	tests := []struct {
		name    string
		sources int
		failed  bool
	}{
		{"one source", 1, false},
		{"a full table", authMaxSources, false},
		{"over its budget", 1, true},
	}
	addrs := func(base byte, n int) []netip.Addr {
		a := make([]netip.Addr, n)
		for i := range a {
			a[i] = netip.AddrFrom4([4]byte{10, base, byte(i >> 8), byte(i)})
		}
		return a
	}
	for _, tt := range tests {
		run := func(th *authThrottle, srcs []netip.Addr, i int) {
			src, verdict := th.admit(srcs[i%len(srcs)])
			if verdict == admitted {
				th.done(src, tt.failed)
			}
		}
		b.Run(tt.name, func(b *testing.B) {
			th := newAuthThrottle(time.Now)
			srcs := addrs(0, tt.sources)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				run(th, srcs, i)
				i++
			}
		})
		b.Run(tt.name+"/parallel", func(b *testing.B) {
			th := newAuthThrottle(time.Now)
			var next atomic.Int32
			per := max(1, tt.sources/runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				srcs := addrs(byte(next.Add(1)), per)
				i := 0
				for pb.Next() {
					run(th, srcs, i)
					i++
				}
			})
		})
	}
}
