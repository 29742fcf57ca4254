package upx_test

import (
	"io"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/loadgen"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// BenchmarkParseRequest compares the scanner (new) with the encoding/xml
// reference (std) on the load generator's poll and on the SPEC example.
func BenchmarkParseRequest(b *testing.B) {
	bodies := []struct {
		name string
		data []byte
	}{
		{"loadgen", loadgen.Body(42, "CX600", "4.0.7577.4100")},
		{"spec", []byte(specRequest)},
	}
	parsers := []struct {
		name  string
		parse func([]byte) (deviceupdate.PollRequest, error)
	}{
		{"std", upx.ParseRequestStd},
		{"new", upx.ParseRequest},
	}
	for _, body := range bodies {
		for _, p := range parsers {
			b.Run(body.name+"/"+p.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body.data)))
				for b.Loop() {
					if _, err := p.parse(body.data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkMarshalResponse compares encoding/xml (std) with AppendXML
// into a reused buffer, and WriteTo.
func BenchmarkMarshalResponse(b *testing.B) {
	responses := []struct {
		name string
		r    *upx.Response
	}{
		{"offer", offerResponse()},
		{"nooffer", &upx.Response{PollIntervalSeconds: 86400, PeerSharing: &upx.PeerSharing{Port: upx.PeerPort}}},
	}
	for _, res := range responses {
		b.Run(res.name+"/std", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := upx.MarshalStd(res.r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(res.name+"/AppendXML", func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = res.r.AppendXML(buf[:0])
			}
		})
		b.Run(res.name+"/WriteTo", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := res.r.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
