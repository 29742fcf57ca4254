package discovery

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// TestServer runs the responder on 127.0.0.1:0 and asks it over UDP and
// TCP, as a resolver would.
func TestServer(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.UDPAddr().String() != s.TCPAddr().String() || s.Addr() != s.UDPAddr().String() {
		t.Fatalf("udp %v and tcp %v differ", s.UDPAddr(), s.TCPAddr())
	}
	reg := prometheus.NewRegistry()
	failed := make(chan error, 2)
	if err := s.Start(mustHandler(t, Config{Registerer: reg}), failed); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = s.Shutdown(context.Background())
		}
	})

	for _, transport := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: transport, Timeout: 5 * time.Second}
		for _, tc := range []struct {
			name  string
			qtype uint16
			rcode int
			n     int
		}{
			{"UCUpdates-R2.Contoso.Test.", dns.TypeA, dns.RcodeSuccess, 1},
			{"ucupdates-r2.contoso.test.", dns.TypeAAAA, dns.RcodeSuccess, 1},
			{"other.contoso.test.", dns.TypeA, dns.RcodeNameError, 0},
			{"example.com.", dns.TypeA, dns.RcodeRefused, 0},
		} {
			in, _, err := c.Exchange(query(tc.name, tc.qtype), s.Addr())
			if err != nil {
				t.Fatalf("%s %s %s: %v", transport, tc.name, dns.TypeToString[tc.qtype], err)
			}
			if in.Rcode != tc.rcode || len(in.Answer) != tc.n {
				t.Errorf("%s %s %s: %s with %d answers, want %s with %d", transport, tc.name, dns.TypeToString[tc.qtype],
					dns.RcodeToString[in.Rcode], len(in.Answer), dns.RcodeToString[tc.rcode], tc.n)
			}
		}
	}

	// A message that does not parse gets FORMERR from the header, and is counted.
	conn, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	garbage := []byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff} // a question cut short
	if _, err := conn.Write(garbage); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var reply dns.Msg
	if err := reply.Unpack(buf[:n]); err != nil || reply.Rcode != dns.RcodeFormatError || reply.Id != 0x1234 {
		t.Errorf("answer to garbage: %v %v", err, &reply)
	}
	if got := gather(t, reg)["deviceupdate_dns_malformed_total"]; got != 1 {
		t.Errorf("malformed_total = %v, want 1", got)
	}

	stopped = true
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		t.Errorf("a transport reported a failure at shutdown: %v", err)
	default:
	}
	// Both ports are free again.
	again, err := Listen(s.Addr())
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	_ = again.Shutdown(context.Background())
}

// TestListenPortInUse: a taken port is refused with an error that
// errors.Is recognises, before anything serves.
func TestListenPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Listen(ln.Addr().String())
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Listen on a taken port: %v, want EADDRINUSE", err)
	}
	if _, err := Listen("no-port"); err == nil {
		t.Fatal("Listen accepted an address without a port")
	}
}

// TestShutdownWithoutStart releases what Listen bound.
func TestShutdownWithoutStart(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	again, err := Listen(addr)
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	_ = again.Shutdown(context.Background())
}
