package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// An endpoint sends polls each on a connection of its own (NewConnections).
// It writes the request itself and reads the answer with http.ReadResponse
// instead of going through an http.Transport: for a connection used once,
// the Transport's pool and its two goroutines per connection cost the load
// generator as much CPU as the server spent answering (335 µs a poll in
// scripts/pool-storm.sh), so on a shared machine the tool crowded out
// what it measured. BenchmarkNewConnection compares the two.
type endpoint struct {
	addr   string // host:port to dial
	tls    *tls.Config
	header []byte // the request line and headers up to Content-Length's value
}

// pollTimeout bounds one poll, as the Transport client's Timeout does.
const pollTimeout = 30 * time.Second

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

func newEndpoint(raw string, cfg *tls.Config) (*endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	e := &endpoint{addr: u.Host}
	switch u.Scheme {
	case "http":
		if u.Port() == "" {
			e.addr = net.JoinHostPort(u.Hostname(), "80")
		}
	case "https":
		if u.Port() == "" {
			e.addr = net.JoinHostPort(u.Hostname(), "443")
		}
		e.tls = &tls.Config{}
		if cfg != nil {
			e.tls = cfg.Clone()
		}
		if e.tls.ServerName == "" {
			e.tls.ServerName = u.Hostname()
		}
		e.tls.NextProtos = []string{"http/1.1"}
	default:
		return nil, fmt.Errorf("loadgen: %q is not an http or https address", raw)
	}
	e.header = fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: deviceupdate-phone-load\r\n"+
		"Content-Type: text/xml\r\nConnection: close\r\nContent-Length: ", u.RequestURI(), u.Host)
	return e, nil
}

// poll sends body on a new connection and returns the answer's status and
// whether it carried Retry-After.
func (e *endpoint) poll(ctx context.Context, body []byte) (status int, retryAfter bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if e.tls != nil {
		tc := tls.Client(conn, e.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return 0, false, err
		}
		conn = tc
	}
	req := make([]byte, 0, len(e.header)+len(body)+16)
	req = append(req, e.header...)
	req = strconv.AppendInt(req, int64(len(body)), 10)
	req = append(req, "\r\n\r\n"...)
	req = append(req, body...)
	if _, err := conn.Write(req); err != nil {
		return 0, false, err
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(conn)
	defer func() { br.Reset(nil); readers.Put(br) }()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, false, err
	}
	return resp.StatusCode, resp.Header.Get("Retry-After") != "", nil
}
