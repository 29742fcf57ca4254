package handler

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// blockingPolls holds each poll until release is closed.
type blockingPolls struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingPolls) Poll(context.Context, deviceupdate.PollRequest, string) (*deviceupdate.PollAnswer, error) {
	b.entered <- struct{}{}
	<-b.release
	return &deviceupdate.PollAnswer{PollInterval: 86400}, nil
}

func (b *blockingPolls) OpenFile(context.Context, string) (*deviceupdate.Download, error) {
	return nil, deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no such update file")
}

const pollXML = `<Request><DeviceType>UCPhone</DeviceType><MacAddress>0004f2aabbcc</MacAddress><Brand>Polycom</Brand>
<Model>CX600</Model><Revision>A</Revision><Locale>ENU</Locale></Request>`

// TestPollsPastTheLimitGet503: with the poll limit reached, a poll is
// answered 503 with Retry-After at once, and served again once a slot frees.
func TestPollsPastTheLimitGet503(t *testing.T) {
	polls := &blockingPolls{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s, err := New(Config{Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Store: &fakePinger{}, Polls: polls, PollLimit: 1, HTTPPort: "80"})
	if err != nil {
		t.Fatal(err)
	}
	do := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/RequestHandler/ucdevice.upx", strings.NewReader(pollXML))
		rec := httptest.NewRecorder()
		s.Internal().ServeHTTP(rec, req)
		return rec
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var first *httptest.ResponseRecorder
	go func() { defer wg.Done(); first = do() }()
	<-polls.entered // the first poll holds the only slot

	rec := do()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "30" {
		t.Fatalf("poll past the limit: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	close(polls.release)
	wg.Wait()
	if first.Code != http.StatusOK || !strings.Contains(first.Body.String(), "<NumOfFiles>0</NumOfFiles>") {
		t.Fatalf("held poll: %d %s", first.Code, first.Body)
	}
	go func() { <-polls.entered }()
	if rec := do(); rec.Code != http.StatusOK {
		t.Errorf("poll after the slot freed: %d", rec.Code)
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		name, scheme, host, port, want string
	}{
		{"default http port omitted", "http", "updates.example", "80", "http://updates.example"},
		{"default https port omitted", "https", "updates.example", "443", "https://updates.example"},
		{"listener port added", "https", "updates.example", "8443", "https://updates.example:8443"},
		{"configured port wins", "http", "updates.example:8080", "80", "http://updates.example:8080"},
		{"ipv6 from the request", "https", "::1", "443", "https://[::1]"},
		{"ipv6 with a port", "http", "::1", "8080", "http://[::1]:8080"},
		{"bracketed ipv6 setting", "https", "[2001:db8::1]", "8443", "https://[2001:db8::1]:8443"},
		{"bracketed ipv6 setting with a port", "https", "[2001:db8::1]:9443", "8443", "https://[2001:db8::1]:9443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := baseURL(tt.scheme, tt.host, tt.port); got != tt.want {
				t.Errorf("baseURL(%q, %q, %q) = %q, want %q", tt.scheme, tt.host, tt.port, got, tt.want)
			}
		})
	}
}

func (b *blockingPolls) ChunkList(context.Context, string) (*deviceupdate.ChunkList, error) {
	return nil, deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no chunks")
}
