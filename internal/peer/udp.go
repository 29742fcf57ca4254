package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// maxDatagram is the read buffer of a discovery socket; longer datagrams
// are truncated (and then rejected by the parser).
const maxDatagram = 512

// udpDiscovery is a Discovery over UDP sockets.
type udpDiscovery struct {
	conn    *net.UDPConn // bound to the phone's address; sends
	self    netip.AddrPort
	targets []netip.AddrPort

	// extra receives broadcasts when conn is bound to a unicast address,
	// which Linux delivers only to sockets bound to the wildcard or the
	// broadcast address. When set, both sockets feed in.
	extra *net.UDPConn
	in    chan inbound
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

type inbound struct {
	b    []byte
	from netip.AddrPort
}

var _ Discovery = (*udpDiscovery)(nil)

// NewUDPBroadcast binds UDP addr (e.g. 10.0.0.5:4051 or 0.0.0.0:4051,
// SO_BROADCAST and SO_REUSEADDR set) and broadcasts to bcast (e.g.
// 10.0.0.255:4051 or 255.255.255.255:4051): real broadcast, for real
// networks and network namespaces.
//
// Linux delivers broadcasts only to sockets bound to the wildcard address
// or to the broadcast address itself, so when addr is a unicast address a
// second socket is bound to bcast to receive them; datagrams then leave
// from addr, and the node's own come back and are ignored.
func NewUDPBroadcast(addr, bcast netip.AddrPort) (Discovery, error) {
	if !bcast.IsValid() || bcast.Port() == 0 {
		return nil, fmt.Errorf("udp broadcast %s: invalid broadcast address", bcast)
	}
	conn, err := listenUDP(addr)
	if err != nil {
		return nil, fmt.Errorf("udp broadcast %s: %w", addr, err)
	}
	d := &udpDiscovery{conn: conn, self: localAddrPort(conn), targets: []netip.AddrPort{bcast}}
	if !addr.Addr().IsUnspecified() {
		extra, err := listenUDP(netip.AddrPortFrom(bcast.Addr(), d.self.Port()))
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("udp broadcast %s: receive on %s: %w", addr, bcast, err)
		}
		d.extra = extra
		d.in = make(chan inbound, 64)
		d.done = make(chan struct{})
		d.wg.Add(2)
		go d.pump(conn)
		go d.pump(extra)
	}
	return d, nil
}

// NewUDPList binds UDP addr and "broadcasts" by sending a unicast copy to
// each of peers: for N agents on loopback addresses in one process
// (loopback has no broadcast). Same wire format.
func NewUDPList(addr netip.AddrPort, peers []netip.AddrPort) (Discovery, error) {
	conn, err := listenUDP(addr)
	if err != nil {
		return nil, fmt.Errorf("udp list %s: %w", addr, err)
	}
	d := &udpDiscovery{conn: conn, self: localAddrPort(conn)}
	for _, p := range peers {
		if canonAddrPort(p) != d.self {
			d.targets = append(d.targets, p)
		}
	}
	return d, nil
}

func listenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	network := "udp4"
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: setSockopts}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

func localAddrPort(c *net.UDPConn) netip.AddrPort {
	return canonAddrPort(c.LocalAddr().(*net.UDPAddr).AddrPort())
}

// Broadcast sends b to the broadcast address or to every peer. It tries
// every target and returns the errors joined.
func (d *udpDiscovery) Broadcast(b []byte) error {
	var errs []error
	for _, t := range d.targets {
		if _, err := d.conn.WriteToUDPAddrPort(b, t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	return nil
}

// Receive returns the next datagram not sent by this socket.
func (d *udpDiscovery) Receive() ([]byte, netip.AddrPort, error) {
	if d.in != nil {
		select {
		case m := <-d.in:
			return m.b, m.from, nil
		case <-d.done:
			return nil, netip.AddrPort{}, fmt.Errorf("receive: %w", net.ErrClosed)
		}
	}
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := d.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil, netip.AddrPort{}, fmt.Errorf("receive: %w", err)
		}
		if from = canonAddrPort(from); from != d.self {
			return buf[:n:n], from, nil
		}
	}
}

// pump feeds one socket's datagrams to Receive, dropping them when it
// lags behind.
func (d *udpDiscovery) pump(c *net.UDPConn) {
	defer d.wg.Done()
	for {
		buf := make([]byte, maxDatagram)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if from = canonAddrPort(from); from == d.self {
			continue
		}
		select {
		case d.in <- inbound{buf[:n:n], from}:
		case <-d.done:
			return
		default:
		}
	}
}

// Close closes the sockets; a Receive waiting returns an error wrapping
// net.ErrClosed.
func (d *udpDiscovery) Close() error {
	var err error
	d.once.Do(func() {
		if d.done != nil {
			close(d.done)
		}
		err = d.conn.Close()
		if d.extra != nil {
			err = errors.Join(err, d.extra.Close())
		}
		d.wg.Wait()
	})
	return err
}
