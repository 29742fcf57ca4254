package peer

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzParseDatagram feeds discovery datagrams to the parser: it must never
// panic, and what it accepts must append to the same bytes.
func FuzzParseDatagram(f *testing.F) {
	for _, d := range testDatagrams() {
		f.Add(appendDatagram(nil, &d))
	}
	f.Add([]byte{})
	f.Add([]byte("DUPS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDatagram(b)
		if err != nil {
			return
		}
		if out := appendDatagram(nil, &d); !bytes.Equal(out, b) {
			t.Fatalf("parsed %+v, appends to\n%x\nnot\n%x", d, out, b)
		}
	})
}

// FuzzFrames feeds a byte stream to the frame reader and every control
// frame parser: they must never panic nor read past their limits.
func FuzzFrames(f *testing.F) {
	a := netip.MustParseAddrPort("10.0.0.5:4051")
	b := netip.MustParseAddrPort("[2001:db8::7]:4051")
	for _, frame := range [][]byte{
		(&joinMsg{Tree: treeID{1}, From: a, Root: true, Have: 3, Avoid: []netip.AddrPort{b}}).marshal(),
		(&placeMsg{Status: statusOK, Parent: b}).marshal(),
		(&getMsg{Tree: treeID{2}, From: a, First: 5}).marshal(),
		(&acceptMsg{Status: statusOK, Path: []netip.AddrPort{a, b}}).marshal(),
		(&haveMsg{Have: 4, Avail: 4}).marshal(),
		frame(framePath, appendPath(nil, []netip.AddrPort{b})),
		append(appendFrameHeader(nil, frameChunk, 6), 0, 0, 0, 1, 'h', 'i'),
	} {
		f.Add(frame)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bytes.NewReader(stream)
		buf := make([]byte, maxControl)
		for {
			typ, p, err := readFrame(r, buf)
			if err != nil {
				return
			}
			if len(p) > len(buf) {
				t.Fatalf("payload of %d bytes", len(p))
			}
			switch typ {
			case frameJoin:
				if m, err := parseJoin(p); err == nil && !bytes.Equal(m.marshal()[frameHeaderSize:], p) {
					t.Fatalf("join %+v does not round-trip", m)
				}
			case framePlace:
				parsePlace(p)
			case frameGet:
				parseGet(p)
			case frameAccept:
				parseAccept(p)
			case frameHave:
				parseHave(p)
			case framePath:
				parsePath(p)
			}
		}
	})
}
