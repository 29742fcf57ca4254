package discovery

import (
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// packWriter packs each answer into a reused buffer, as the UDP server
// does before it writes, and keeps nothing.
type packWriter struct {
	remote net.Addr
	buf    []byte
}

func (w *packWriter) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *packWriter) RemoteAddr() net.Addr { return w.remote }
func (w *packWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.PackBuffer(w.buf)
	w.buf = b[:0]
	return err
}
func (w *packWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *packWriter) Close() error                { return nil }
func (w *packWriter) TsigStatus() error           { return nil }
func (w *packWriter) TsigTimersOnly(bool)         {}
func (w *packWriter) Hijack()                     {}

// sourceWriters returns writers for n sources, 10.0.0.0 onwards.
func sourceWriters(n int) []*packWriter {
	ws := make([]*packWriter, n)
	for i := range ws {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		ws[i] = &packWriter{remote: net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 40000))}
	}
	return ws
}

// BenchmarkServeDNS measures the responder answering A queries, rate
// limit included: from one source or from 10 000 (a full table), within
// the limit or past it, on one goroutine and on all.
//
//	go test -run '^$' -bench ServeDNS -count 6 ./internal/discovery/
func BenchmarkServeDNS(b *testing.B) {
	open := Limit{Rate: 1e9, Burst: 1 << 30, MaxSources: DefaultLimit.MaxSources}
	tests := []struct {
		name    string
		limit   Limit
		sources int
	}{
		{"one source", open, 1},
		{"10000 sources", open, 10000},
		{"past the limit", Limit{Rate: 1, Burst: 1, MaxSources: 10}, 1},
	}
	q := query("ucupdates-r2.contoso.test.", dns.TypeA)
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			h := mustHandler(b, Config{Limit: tt.limit})
			ws := sourceWriters(tt.sources)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h.ServeDNS(ws[i%len(ws)], q)
				i++
			}
		})
		b.Run(tt.name+"/parallel", func(b *testing.B) {
			h := mustHandler(b, Config{Limit: tt.limit})
			// Writers for each goroutine, as each query has its own.
			sets := make([][]*packWriter, runtime.GOMAXPROCS(0))
			for i := range sets {
				sets[i] = sourceWriters(tt.sources)
			}
			var next atomic.Int32
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ws := sets[next.Add(1)-1]
				q := q.Copy()
				i := 0
				for pb.Next() {
					h.ServeDNS(ws[i%len(ws)], q)
					i++
				}
			})
		})
	}
}
