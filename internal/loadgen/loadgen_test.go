package loadgen

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// pollServer answers every poll with answer and counts the connections
// and the polls that arrived whole.
type pollServer struct {
	*httptest.Server
	conns, whole atomic.Int64
}

func newPollServer(t *testing.T, secure bool, answer func(w http.ResponseWriter)) *pollServer {
	t.Helper()
	s := &pollServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil && r.Method == http.MethodPost && r.URL.Path == "/RequestHandler/ucdevice.upx" &&
			r.Header.Get("Content-Type") == "text/xml" && strings.HasPrefix(string(body), "<Request>") &&
			strings.HasSuffix(string(body), "</Request>") && r.ContentLength == int64(len(body)) {
			s.whole.Add(1)
		}
		answer(w)
	})
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if secure {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func TestRun(t *testing.T) {
	ok := func(w http.ResponseWriter) { _, _ = io.WriteString(w, "<Response/>") }
	busy := func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	bare503 := func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }
	refused := func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadRequest) }
	tests := []struct {
		name           string
		secure, newCon bool
		rate           float64
		slots          int // Concurrency; 4 when 0
		answer         func(http.ResponseWriter)
		want           Result // only the counts are compared
		wantConns      int64  // 0: not checked
	}{
		{name: "keep-alive answered", answer: ok, want: Result{Requests: 40, OK: 40}},
		{name: "own connections answered", newCon: true, answer: ok, want: Result{Requests: 40, OK: 40}, wantConns: 40},
		{name: "own connections over TLS", secure: true, newCon: true, answer: ok, want: Result{Requests: 40, OK: 40}, wantConns: 40},
		// As many slots as polls: none can be dropped however slow the machine.
		{name: "open loop on own connections", newCon: true, rate: 2000, slots: 40, answer: ok, want: Result{Requests: 40, OK: 40}, wantConns: 40},
		{name: "busy with Retry-After", newCon: true, answer: busy, want: Result{Requests: 40, Busy: 40}},
		{name: "503 without Retry-After fails", newCon: true, answer: bare503, want: Result{Requests: 40, Failed: 40}},
		{name: "refused fails", answer: refused, want: Result{Requests: 40, Failed: 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newPollServer(t, tt.secure, tt.answer)
			slots := tt.slots
			if slots == 0 {
				slots = 4
			}
			o := Options{URLs: []string{srv.URL + "/RequestHandler/ucdevice.upx"}, Phones: 10, Concurrency: slots, Requests: 40,
				Rate: tt.rate, NewConnections: tt.newCon, Model: "CX600", Version: "4.0.7577.4100"}
			if tt.secure {
				o.TLS = srv.Client().Transport.(*http.Transport).TLSClientConfig
			}
			r, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			got := Result{Requests: r.Requests, OK: r.OK, Busy: r.Busy, Failed: r.Failed, Dropped: r.Dropped}
			if got != tt.want {
				t.Fatalf("counts = %+v, want %+v", got, tt.want)
			}
			if srv.whole.Load() != 40 {
				t.Errorf("%d of 40 polls reached the server whole", srv.whole.Load())
			}
			if tt.wantConns != 0 && srv.conns.Load() != tt.wantConns {
				t.Errorf("%d connections for 40 polls, want %d", srv.conns.Load(), tt.wantConns)
			}
			if r.OK+r.Busy > 0 && (r.P50Seconds <= 0 || r.MaxSeconds < r.P99Seconds || r.P99Seconds < r.P50Seconds) {
				t.Errorf("latencies p50 %v p99 %v max %v are not ordered", r.P50Seconds, r.P99Seconds, r.MaxSeconds)
			}
		})
	}
}

func TestRunRefusesBadEndpoints(t *testing.T) {
	for _, u := range []string{"ftp://127.0.0.1/x", "://nothing"} {
		_, err := Run(context.Background(), Options{URLs: []string{u}, Phones: 1, Concurrency: 1, Requests: 1, NewConnections: true})
		if err == nil {
			t.Errorf("%q: no error", u)
		}
	}
}

func TestUnreachableServerFails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r, err := Run(context.Background(), Options{URLs: []string{"http://" + addr + "/x"}, Phones: 1, Concurrency: 1, Requests: 3, NewConnections: true})
	if err != nil || r.Failed != 3 || r.OK != 0 {
		t.Fatalf("result %+v, %v; want 3 failed", r, err)
	}
}

// BenchmarkNewConnection polls a do-nothing server, each poll on its own
// connection, through the endpoint the load generator uses and through an
// http.Transport with keep-alives off. Server and client share the
// process, so the difference between the two is the client's.
func BenchmarkNewConnection(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "<Response/>")
	}))
	defer srv.Close()
	body := Body(1, "CX600", "4.0.7577.4100")
	b.Run("endpoint", func(b *testing.B) {
		e, err := newEndpoint(srv.URL+"/RequestHandler/ucdevice.upx", nil)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if st, _, err := e.poll(context.Background(), body); err != nil || st != http.StatusOK {
				b.Fatal(st, err)
			}
		}
	})
	b.Run("transport", func(b *testing.B) {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
		for b.Loop() {
			resp, err := c.Post(srv.URL+"/RequestHandler/ucdevice.upx", "text/xml", strings.NewReader(string(body)))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
