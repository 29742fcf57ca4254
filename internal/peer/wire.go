package peer

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Discovery datagram layout (see the package documentation).
const (
	datagramMagic   = "DUPS"
	datagramVersion = 1
	datagramSize    = 86
)

// msgType is a datagram's type.
type msgType uint8

const (
	msgQuery msgType = 1 // who is the root of this tree?
	msgClaim msgType = 2 // I am the root of this tree
)

// datagram is one discovery message.
type datagram struct {
	Type  msgType
	Tree  treeID
	From  netip.AddrPort // the sender's TCP address
	Nonce uint64         // random, never zero
	Echo  uint64         // a claim: the nonce of the query it answers, or 0
	Time  int64          // the sender's clock, Unix milliseconds
	Have  uint32         // a claim: how many chunks the sender holds; 0 in a query
}

// appendDatagram appends d's wire form to b.
func appendDatagram(b []byte, d *datagram) []byte {
	b = append(b, datagramMagic...)
	b = append(b, datagramVersion, byte(d.Type), 0, 0)
	b = append(b, d.Tree[:]...)
	b = appendAddrPort(b, d.From)
	b = binary.BigEndian.AppendUint64(b, d.Nonce)
	b = binary.BigEndian.AppendUint64(b, d.Echo)
	b = binary.BigEndian.AppendUint64(b, uint64(d.Time))
	b = binary.BigEndian.AppendUint32(b, d.Have)
	return b
}

// parseDatagram parses one datagram. It accepts exactly the form
// appendDatagram writes, so that a parsed datagram appends to the same
// bytes; anything else is an error wrapping ErrFormat.
func parseDatagram(b []byte) (datagram, error) {
	var d datagram
	if len(b) != datagramSize {
		return d, fmt.Errorf("parse datagram: %d bytes, want %d: %w", len(b), datagramSize, ErrFormat)
	}
	if string(b[:4]) != datagramMagic {
		return d, fmt.Errorf("parse datagram: bad magic: %w", ErrFormat)
	}
	if b[4] != datagramVersion {
		return d, fmt.Errorf("parse datagram: version %d: %w", b[4], ErrFormat)
	}
	d.Type = msgType(b[5])
	if d.Type != msgQuery && d.Type != msgClaim {
		return d, fmt.Errorf("parse datagram: type %d: %w", b[5], ErrFormat)
	}
	if b[6] != 0 || b[7] != 0 {
		return d, fmt.Errorf("parse datagram: reserved bytes set: %w", ErrFormat)
	}
	copy(d.Tree[:], b[8:40])
	from, err := parseAddrPort(b[40:58])
	if err != nil {
		return d, fmt.Errorf("parse datagram: %w", err)
	}
	d.From = from
	d.Nonce = binary.BigEndian.Uint64(b[58:66])
	d.Echo = binary.BigEndian.Uint64(b[66:74])
	d.Time = int64(binary.BigEndian.Uint64(b[74:82]))
	d.Have = binary.BigEndian.Uint32(b[82:86])
	if d.Nonce == 0 {
		return d, fmt.Errorf("parse datagram: zero nonce: %w", ErrFormat)
	}
	if d.Type == msgQuery && (d.Echo != 0 || d.Have != 0) {
		return d, fmt.Errorf("parse datagram: query with echo or have set: %w", ErrFormat)
	}
	return d, nil
}

// addrPortSize is the wire size of an address: 16 bytes of IPv6 (IPv4 as
// IPv4-mapped) and a 2-byte port.
const addrPortSize = 18

func appendAddrPort(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().As16()
	b = append(b, ip[:]...)
	return binary.BigEndian.AppendUint16(b, a.Port())
}

// parseAddrPort parses an address a node can be reached at: unicast, with
// a port. b must hold addrPortSize bytes.
func parseAddrPort(b []byte) (netip.AddrPort, error) {
	if len(b) < addrPortSize {
		return netip.AddrPort{}, fmt.Errorf("address: short: %w", ErrFormat)
	}
	ip := netip.AddrFrom16([16]byte(b[:16])).Unmap()
	port := binary.BigEndian.Uint16(b[16:18])
	if ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("address %s: not a unicast address and port: %w", netip.AddrPortFrom(ip, port), ErrFormat)
	}
	return netip.AddrPortFrom(ip, port), nil
}

// canonAddrPort is the form a parsed address has: IPv4 unmapped, no zone.
func canonAddrPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
}

// lessAddr orders addresses: by IP, then by port.
func lessAddr(a, b netip.AddrPort) bool {
	return a.Compare(b) < 0
}
