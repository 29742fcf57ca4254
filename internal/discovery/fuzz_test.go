package discovery

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandler feeds raw messages through dns.Msg.Unpack into the handler,
// as the server does: it must never panic, and every answer it writes
// must pack.
func FuzzHandler(f *testing.F) {
	seeds := []*dns.Msg{
		query("ucupdates-r2.contoso.test.", dns.TypeA),
		query("UCUpdates-R2.Contoso.Test.", dns.TypeAAAA),
		query("other.contoso.test.", dns.TypeMX),
		query("contoso.test.", dns.TypeSOA),
		query("example.com.", dns.TypeA),
		query("ucupdates-r2.contoso.test.", dns.TypeANY),
	}
	withEDNS := query("ucupdates-r2.contoso.test.", dns.TypeA)
	withEDNS.SetEdns0(4096, true)
	seeds = append(seeds, withEDNS)
	axfr := new(dns.Msg)
	axfr.SetAxfr("contoso.test.")
	seeds = append(seeds, axfr)
	for _, m := range seeds {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	h := mustHandler(f, Config{Limit: Limit{Rate: 1e9, Burst: 1e9, MaxSources: 1}}) // the fuzzer is one fast source
	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(data); err != nil {
			return
		}
		for _, transport := range []string{"udp", "tcp"} {
			rec := newRecorder(transport, "192.0.2.1")
			h.ServeDNS(rec, req)
			if rec.writes == 0 && !req.Response {
				// Only a response goes unanswered; WriteMsg failing to pack means the
				// handler built an answer the wire cannot carry.
				t.Fatalf("%s: no answer to %v", transport, req)
			}
		}
	})
}
