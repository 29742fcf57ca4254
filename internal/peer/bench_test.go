package peer

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkTree measures the time until all of N phones have a file (8 or
// 32 MiB) that the server sends over a 4 MiB/s WAN link, each phone
// sending at most 100 Mbit/s to its children together, with the default
// election timings: pipelined (ours) against store-and-forward (Cisco's).
// It reports the seconds until all are done, that time in WAN transfers of
// the file (size / WAN rate), and the copies the server sent.
//
//	go test -run '^$' -bench Tree -benchtime 1x ./internal/peer/
func BenchmarkTree(b *testing.B) {
	const (
		chunk  = 1 << 20
		wan    = 4 << 20
		upload = 100e6 / 8
	)
	for _, size := range []int64{8 << 20, 32 << 20} {
		data, m := testFile(b, size, chunk)
		for _, n := range []int{8, 32} {
			for _, sf := range []bool{false, true} {
				mode := map[bool]string{false: "pipelined", true: "store-and-forward"}[sf]
				b.Run(fmt.Sprintf("size=%dMiB/N=%d/%s", size>>20, n, mode), func(b *testing.B) {
					benchTree(b, n, sf, data, m, wan, upload)
				})
			}
		}
	}
}

func benchTree(b *testing.B, n int, sf bool, data []byte, m Manifest, wan, upload int64) {
	var total time.Duration
	var server int64
	for i := 0; i < b.N; i++ {
		c := newCluster(b, n, func(_ int, cfg *Config) {
			*cfg = Config{Addr: cfg.Addr, Port: cfg.Port, Discovery: cfg.Discovery, Logger: cfg.Logger,
				StoreAndForward: sf, UploadRate: upload}
		})
		src := &memSource{data: data}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start := time.Now()
		res := fetchAll(ctx, c.nodes, m, rateLimit(src, wan))
		total += time.Since(start)
		cancel()
		for j, r := range res {
			if r.err != nil {
				b.Fatalf("node %d: %v", j, r.err)
			}
		}
		server += src.read.Load()
		c.close()
	}
	secs := total.Seconds() / float64(b.N)
	size := float64(len(data))
	b.ReportMetric(secs, "s/all-done")
	b.ReportMetric(secs/(size/float64(wan)), "WAN-transfers")
	b.ReportMetric(float64(server)/float64(b.N)/size, "server-copies")
}
