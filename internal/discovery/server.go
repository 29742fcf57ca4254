package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Server runs a Handler over UDP and TCP on one address. Listen binds
// both sockets, so that a refused port is known before anything starts;
// Start serves; Shutdown stops.
type Server struct {
	pc         net.PacketConn
	ln         net.Listener
	transports []*transport
	stopping   atomic.Bool
	wg         sync.WaitGroup
}

type transport struct {
	name    string // "udp" or "tcp"
	addr    net.Addr
	srv     *dns.Server
	ready   chan struct{} // closed once the dns.Server serves
	exited  chan struct{} // closed once it returned
	err     error         // what it returned, set before exited is closed
	started bool
}

// bindAttempts bounds the search for a port free for both UDP and TCP
// when the address asks for any port.
const bindAttempts = 20

// Listen binds UDP and TCP on addr (host:port). With port 0, both get
// the same free port.
func Listen(addr string) (*Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen dns %s: %w", addr, err)
	}
	attempts := 1
	if port == "0" {
		attempts = bindAttempts
	}
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen dns udp %s: %w", addr, err)
		}
		tcpAddr := net.JoinHostPort(host, strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
		ln, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return &Server{pc: pc, ln: ln}, nil
		}
		_ = pc.Close()
		if i+1 >= attempts || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen dns tcp %s: %w", tcpAddr, err)
		}
	}
}

// UDPAddr returns the bound UDP address.
func (s *Server) UDPAddr() net.Addr { return s.pc.LocalAddr() }

// TCPAddr returns the bound TCP address.
func (s *Server) TCPAddr() net.Addr { return s.ln.Addr() }

// Addr returns the bound address, host:port, shared by UDP and TCP.
func (s *Server) Addr() string { return s.pc.LocalAddr().String() }

// Start serves h on both sockets and returns once both serve. A transport
// that stops on its own later is reported on failed, without blocking;
// failed may be nil.
func (s *Server) Start(h *Handler, failed chan<- error) error {
	if s.transports != nil {
		return errors.New("dns server already started")
	}
	mk := func(name string, addr net.Addr) *transport {
		t := &transport{name: name, addr: addr, ready: make(chan struct{}), exited: make(chan struct{})}
		t.srv = &dns.Server{
			Handler:           h,
			UDPSize:           MaxUDPSize,
			ReadTimeout:       2 * time.Second,
			WriteTimeout:      2 * time.Second,
			MsgAcceptFunc:     accept,
			MsgInvalidFunc:    func([]byte, error) { h.metrics.invalid() },
			NotifyStartedFunc: func() { close(t.ready) },
		}
		return t
	}
	udp, tcp := mk("udp", s.pc.LocalAddr()), mk("tcp", s.ln.Addr())
	udp.srv.PacketConn = s.pc
	tcp.srv.Listener = s.ln
	s.transports = []*transport{udp, tcp}
	for _, t := range s.transports {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t.err = t.srv.ActivateAndServe()
			close(t.exited)
			if s.stopping.Load() || failed == nil {
				return
			}
			err := t.err
			if err == nil {
				err = errors.New("stopped serving")
			}
			select {
			case failed <- fmt.Errorf("dns %s listener %s: %w", t.name, t.addr, err):
			default:
			}
		}()
	}
	for _, t := range s.transports {
		select {
		case <-t.ready:
			t.started = true
		case <-t.exited:
			err := t.err
			_ = s.Shutdown(context.Background())
			return fmt.Errorf("start dns %s listener %s: %w", t.name, t.addr, err)
		}
	}
	return nil
}

// Shutdown stops both transports, waits for the queries in flight (until
// ctx ends) and closes the sockets. It may be called without Start, to
// release what Listen bound.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	var errs []error
	for _, t := range s.transports {
		if !t.started {
			continue
		}
		if err := t.srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop dns %s listener: %w", t.name, err))
		}
	}
	// The sockets of a transport that never started; closing twice is harmless.
	_ = s.pc.Close()
	_ = s.ln.Close()
	s.wg.Wait()
	return errors.Join(errs...)
}

// accept hands every query to the handler, which answers malformed ones
// itself after the rate limit; responses (the QR bit) are ignored.
func accept(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}
