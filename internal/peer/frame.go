package peer

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
)

// TCP frame types (see the package documentation).
const (
	frameJoin   byte = 1
	framePlace  byte = 2
	frameGet    byte = 3
	frameAccept byte = 4
	frameChunk  byte = 5
	frameHave   byte = 6
	framePath   byte = 7
)

// Status codes of PLACE and ACCEPT frames.
const (
	statusOK       byte = 0
	statusNotRoot  byte = 1 // PLACE: I am not the root of that tree
	statusTreeFull byte = 2 // PLACE: the tree has no room for another member
	statusYield    byte = 6 // PLACE to a root's JOIN: you hold more; I resign and join you
	statusUnknown  byte = 3 // ACCEPT: I do not serve that tree (or from there)
	statusFull     byte = 4 // ACCEPT: I already serve MaxChildren children
	statusCycle    byte = 5 // ACCEPT: you are my ancestor
)

const (
	frameHeaderSize = 5    // type and payload length
	maxControl      = 2048 // the largest payload of any frame but CHUNK
	maxDepth        = 64   // the longest ancestor path a node accepts
	maxAvoid        = 32   // the most addresses a JOIN may list
)

// readFrame reads one frame into buf: a payload longer than len(buf) is an
// error wrapping ErrFormat, read no further.
func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var h [frameHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if uint64(n) > uint64(len(buf)) {
		return 0, nil, fmt.Errorf("read frame: type %d with a %d-byte payload, over %d: %w", h[0], n, len(buf), ErrFormat)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return h[0], buf[:n], nil
}

// appendFrameHeader appends a frame header for a payload of n bytes.
func appendFrameHeader(b []byte, typ byte, n int) []byte {
	b = append(b, typ)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

// frame builds a whole control frame.
func frame(typ byte, payload []byte) []byte {
	return append(appendFrameHeader(make([]byte, 0, frameHeaderSize+len(payload)), typ, len(payload)), payload...)
}

// joinMsg asks a root where to attach: JOIN.
type joinMsg struct {
	Tree  treeID
	From  netip.AddrPort   // the joiner's TCP address
	Root  bool             // the joiner is a root of the tree too, and proposes to merge
	Have  uint32           // a root joiner's chunks
	Avoid []netip.AddrPort // nodes the joiner found dead, lying or full
}

// joinFlagRoot is JOIN's flag for Root.
const joinFlagRoot = 1

func (m *joinMsg) marshal() []byte {
	b := append([]byte(nil), m.Tree[:]...)
	b = appendAddrPort(b, m.From)
	var flags byte
	if m.Root {
		flags |= joinFlagRoot
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, m.Have)
	avoid := m.Avoid
	if len(avoid) > maxAvoid {
		avoid = avoid[len(avoid)-maxAvoid:]
	}
	b = append(b, byte(len(avoid)))
	for _, a := range avoid {
		b = appendAddrPort(b, a)
	}
	return frame(frameJoin, b)
}

func parseJoin(p []byte) (joinMsg, error) {
	var m joinMsg
	if len(p) < 32+addrPortSize+6 {
		return m, fmt.Errorf("parse join: short: %w", ErrFormat)
	}
	copy(m.Tree[:], p)
	from, err := parseAddrPort(p[32:])
	if err != nil {
		return m, fmt.Errorf("parse join: %w", err)
	}
	m.From = from
	p = p[32+addrPortSize:]
	if p[0]&^joinFlagRoot != 0 {
		return m, fmt.Errorf("parse join: flags %#x: %w", p[0], ErrFormat)
	}
	m.Root = p[0]&joinFlagRoot != 0
	m.Have = binary.BigEndian.Uint32(p[1:])
	if !m.Root && m.Have != 0 {
		return m, fmt.Errorf("parse join: have without the root flag: %w", ErrFormat)
	}
	p = p[5:]
	n := int(p[0])
	p = p[1:]
	if n > maxAvoid || len(p) != n*addrPortSize {
		return m, fmt.Errorf("parse join: %d avoided addresses in %d bytes: %w", n, len(p), ErrFormat)
	}
	m.Avoid, err = parseAddrs(p, n)
	if err != nil {
		return m, fmt.Errorf("parse join: %w", err)
	}
	return m, nil
}

// placeMsg answers a JOIN: PLACE.
type placeMsg struct {
	Status byte
	Parent netip.AddrPort // when Status is statusOK
}

func (m *placeMsg) marshal() []byte {
	b := []byte{m.Status}
	if m.Status == statusOK {
		b = appendAddrPort(b, m.Parent)
	}
	return frame(framePlace, b)
}

func parsePlace(p []byte) (placeMsg, error) {
	var m placeMsg
	if len(p) < 1 {
		return m, fmt.Errorf("parse place: short: %w", ErrFormat)
	}
	m.Status = p[0]
	switch {
	case m.Status == statusOK && len(p) == 1+addrPortSize:
		parent, err := parseAddrPort(p[1:])
		if err != nil {
			return m, fmt.Errorf("parse place: %w", err)
		}
		m.Parent = parent
	case (m.Status == statusNotRoot || m.Status == statusTreeFull || m.Status == statusYield) && len(p) == 1:
	default:
		return m, fmt.Errorf("parse place: status %d in %d bytes: %w", m.Status, len(p), ErrFormat)
	}
	return m, nil
}

// getMsg asks a parent for the file from chunk First on: GET.
type getMsg struct {
	Tree  treeID
	From  netip.AddrPort // the child's TCP address
	First uint32
}

func (m *getMsg) marshal() []byte {
	b := append([]byte(nil), m.Tree[:]...)
	b = appendAddrPort(b, m.From)
	b = binary.BigEndian.AppendUint32(b, m.First)
	return frame(frameGet, b)
}

func parseGet(p []byte) (getMsg, error) {
	var m getMsg
	if len(p) != 32+addrPortSize+4 {
		return m, fmt.Errorf("parse get: %d bytes: %w", len(p), ErrFormat)
	}
	copy(m.Tree[:], p)
	from, err := parseAddrPort(p[32:])
	if err != nil {
		return m, fmt.Errorf("parse get: %w", err)
	}
	m.From = from
	m.First = binary.BigEndian.Uint32(p[32+addrPortSize:])
	return m, nil
}

// acceptMsg answers a GET: ACCEPT, with the parent's path (its ancestors,
// root first, and itself last) when Status is statusOK.
type acceptMsg struct {
	Status byte
	Path   []netip.AddrPort
}

func (m *acceptMsg) marshal() []byte {
	return frame(frameAccept, appendPath([]byte{m.Status}, m.Path))
}

func parseAccept(p []byte) (acceptMsg, error) {
	var m acceptMsg
	if len(p) < 2 {
		return m, fmt.Errorf("parse accept: short: %w", ErrFormat)
	}
	m.Status = p[0]
	if m.Status != statusOK && m.Status != statusUnknown && m.Status != statusFull && m.Status != statusCycle {
		return m, fmt.Errorf("parse accept: status %d: %w", m.Status, ErrFormat)
	}
	path, err := parsePath(p[1:])
	if err != nil {
		return m, fmt.Errorf("parse accept: %w", err)
	}
	if m.Status == statusOK && len(path) == 0 {
		return m, fmt.Errorf("parse accept: empty path: %w", ErrFormat)
	}
	m.Path = path
	return m, nil
}

func appendPath(b []byte, path []netip.AddrPort) []byte {
	b = append(b, byte(len(path)))
	for _, a := range path {
		b = appendAddrPort(b, a)
	}
	return b
}

// parsePath parses a count and that many addresses, at most maxDepth.
func parsePath(p []byte) ([]netip.AddrPort, error) {
	if len(p) < 1 {
		return nil, fmt.Errorf("path: short: %w", ErrFormat)
	}
	n := int(p[0])
	p = p[1:]
	if n > maxDepth || len(p) != n*addrPortSize {
		return nil, fmt.Errorf("path: %d addresses in %d bytes: %w", n, len(p), ErrFormat)
	}
	return parseAddrs(p, n)
}

func parseAddrs(p []byte, n int) ([]netip.AddrPort, error) {
	if n == 0 {
		return nil, nil
	}
	out := make([]netip.AddrPort, n) // n is at most 255 and len(p) was checked
	for i := range out {
		a, err := parseAddrPort(p[i*addrPortSize:])
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

// haveMsg is a parent's heartbeat: HAVE. Have is how many chunks it holds
// verified, Avail how many of them it is willing to send now (all of them,
// or, store-and-forward, none until it has the whole file).
type haveMsg struct {
	Have, Avail uint32
}

func (m *haveMsg) marshal() []byte {
	b := binary.BigEndian.AppendUint32(nil, m.Have)
	return frame(frameHave, binary.BigEndian.AppendUint32(b, m.Avail))
}

func parseHave(p []byte) (haveMsg, error) {
	if len(p) != 8 {
		return haveMsg{}, fmt.Errorf("parse have: %d bytes: %w", len(p), ErrFormat)
	}
	m := haveMsg{Have: binary.BigEndian.Uint32(p), Avail: binary.BigEndian.Uint32(p[4:])}
	if m.Avail > m.Have {
		return m, fmt.Errorf("parse have: %d available of %d: %w", m.Avail, m.Have, ErrFormat)
	}
	return m, nil
}
