package poll_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/handler"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
	"github.com/deviceupdate/deviceupdate/internal/loadgen"
	"github.com/deviceupdate/deviceupdate/internal/pgstore"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
	"github.com/deviceupdate/deviceupdate/internal/poll"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// BenchmarkPollHandler measures one poll through the real handler stack
// (request ID, access log, metrics, parse, decide, record, render).
func BenchmarkPollHandler(b *testing.B) {
	dir := b.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	benchPolls(b, db, dir)
}

// BenchmarkPollStore measures BenchmarkPollHandler's polls on each store:
// the embedded bbolt one and a pool's PostgreSQL (SPEC §11 asks 0.8x of
// bbolt's polls/s at least). A poll reads the decision inputs from memory,
// so the store costs in the inventory's flush, every second, of the
// devices that polled, which runs beside the polls.
func BenchmarkPollStore(b *testing.B) {
	b.Run("store=bbolt", BenchmarkPollHandler)
	b.Run("store=postgres", func(b *testing.B) {
		db, err := pgstore.Open(context.Background(), pgtest.DB(b), pgstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		benchPolls(b, db, b.TempDir())
	})
}

// benchPolls polls db's poll service, through the real handler stack, as
// 1000 phones, the inventory recording into db with serve's interval.
func benchPolls(b *testing.B, db store.Store, dir string) {
	log, _ := audit.OpenRequestLog(dir, "bench")
	rec := inventory.New(db, log, zap.NewNop(), inventory.DefaultInterval)
	defer rec.Close()
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	svc := &poll.Service{DB: db, Recorder: rec, Files: updatestore.New(dir, nil)}
	h, err := handler.New(handler.Config{Logger: logger, Registry: prometheus.NewRegistry(), Store: db, Polls: svc, HTTPPort: "80"})
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = loadgen.Body(i, "CX600", "4.0.7577.4100")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/RequestHandler/ucdevice.upx", bytes.NewReader(bodies[i%len(bodies)]))
		w := httptest.NewRecorder()
		h.Internal().ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body)
		}
	}
}

// BenchmarkPollRollout measures polls of a model under a running staged
// rollout (waves 50,100: half the phones are offered its version, the
// others the approved one), through the real handler stack; against
// BenchmarkPollOffer/sharing=false, the same polls without a rollout, it
// is the cost of deciding by the rollout.
func BenchmarkPollRollout(b *testing.B) {
	f := goldenFixture(b)
	f.set(b, deviceupdate.ScopeGlobal, map[string]string{"PeerFirmwareSharing": "false"})
	o := deviceupdate.RolloutOptions{Waves: []int{50, 100}, Soak: time.Hour, MaxFailures: 0.1}
	if _, err := f.db.StartRollout(deviceupdate.RuleID(cx600), o, "bench", f.now); err != nil {
		b.Fatal(err)
	}
	bodies := make([]string, 1000)
	for i := range bodies {
		bodies[i] = string(loadgen.Body(i, "CX600", "4.0.7577.4100"))
	}
	f.post(b, "updates.example", "192.0.2.10", bodies[0])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.post(b, "updates.example", "192.0.2.10", bodies[i%len(bodies)])
	}
}

// BenchmarkPollOffer measures a poll answered with an offer of three
// files, through the real handler stack, with peer sharing off and on
// (each file's chunk list named in the answer).
func BenchmarkPollOffer(b *testing.B) {
	for _, sharing := range []string{"false", "true"} {
		b.Run("sharing="+sharing, func(b *testing.B) {
			f := goldenFixture(b)
			f.set(b, deviceupdate.ScopeGlobal, map[string]string{"PeerFirmwareSharing": sharing})
			bodies := make([]string, 1000)
			for i := range bodies {
				bodies[i] = string(loadgen.Body(i, "CX600", "4.0.7577.4100"))
			}
			f.post(b, "updates.example", "192.0.2.10", bodies[0]) // the chunk lists are read once
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.post(b, "updates.example", "192.0.2.10", bodies[i%len(bodies)])
			}
		})
	}
}

// BenchmarkPollRolloutStore measures polls under a staged rollout in its first
// wave (50%), of devices already offered its version or outside the wave:
// the polls of a fleet once the wave's offers are made. On a pool's
// store (postgres), these must reach the database no more than on the
// embedded one.
func BenchmarkPollRolloutStore(b *testing.B) {
	for _, backend := range []string{"bbolt", "postgres"} {
		b.Run("store="+backend, func(b *testing.B) {
			svc := rolloutBench(b, backend)
			reqs := make([]deviceupdate.PollRequest, 1000)
			for i := range reqs {
				reqs[i] = request("CX600", fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16, i>>8&0xff, i&0xff), "", "4.0.7577.4100")
				if _, err := svc.Poll(context.Background(), reqs[i], outside); err != nil { // the wave's offers
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := svc.Poll(context.Background(), reqs[i%len(reqs)], outside); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// rolloutBench is a poll service on backend's store with CX600's rule
// under a running 50,100 rollout, as serve wires it.
func rolloutBench(b *testing.B, backend string) *poll.Service {
	dir := b.TempDir()
	var db store.Store
	var offers store.SharedOffers
	switch backend {
	case "bbolt":
		bdb, err := store.Open(dir, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		db = bdb
	default:
		pdb, err := pgstore.Open(context.Background(), pgtest.Start(b), pgstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		db, offers = pdb, pdb
	}
	b.Cleanup(func() { db.Close() })
	startRollout(b, db, deviceupdate.RolloutOptions{Waves: []int{50, 100}, Soak: time.Hour, MaxFailures: 0.1}, time.Now())
	log, _ := audit.OpenRequestLog(dir, "bench")
	rec := inventory.New(db, log, zap.NewNop(), time.Second)
	b.Cleanup(func() { rec.Close() })
	return &poll.Service{DB: db, Recorder: rec, Files: updatestore.New(dir, nil), Offers: offers}
}
