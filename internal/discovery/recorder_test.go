package discovery

import (
	"net"

	"github.com/miekg/dns"
)

// recorder is a dns.ResponseWriter that keeps what the handler wrote,
// for handler tests without sockets.
type recorder struct {
	remote net.Addr
	msg    *dns.Msg // the last message written
	size   int      // its length on the wire
	writes int
	closed bool
}

var _ dns.ResponseWriter = (*recorder)(nil)

// newRecorder returns a recorder for a query from ip over transport
// ("udp" or "tcp").
func newRecorder(transport, ip string) *recorder {
	a := net.ParseIP(ip)
	if transport == "tcp" {
		return &recorder{remote: &net.TCPAddr{IP: a, Port: 40000}}
	}
	return &recorder{remote: &net.UDPAddr{IP: a, Port: 40000}}
}

func (r *recorder) LocalAddr() net.Addr {
	if _, ok := r.remote.(*net.TCPAddr); ok {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}

func (r *recorder) RemoteAddr() net.Addr { return r.remote }

func (r *recorder) WriteMsg(m *dns.Msg) error {
	// Pack and unpack, as the wire would: what a client sees.
	b, err := m.Pack()
	if err != nil {
		return err
	}
	got := new(dns.Msg)
	if err := got.Unpack(b); err != nil {
		return err
	}
	r.msg, r.size = got, len(b)
	r.writes++
	return nil
}

func (r *recorder) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	r.msg, r.size = m, len(b)
	r.writes++
	return len(b), nil
}

func (r *recorder) Close() error        { r.closed = true; return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}
