package peer

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func testDatagrams() []datagram {
	tree := treeID{1, 2, 3, 31: 9}
	return []datagram{
		{Type: msgQuery, Tree: tree, From: netip.MustParseAddrPort("10.0.0.5:4051"), Nonce: 1, Time: 1700000000000},
		{Type: msgClaim, Tree: tree, From: netip.MustParseAddrPort("10.0.0.1:4051"), Nonce: 0xfeedface, Echo: 7, Time: 1700000000001, Have: 12},
		{Type: msgClaim, Tree: tree, From: netip.MustParseAddrPort("[2001:db8::1]:4051"), Nonce: ^uint64(0), Time: -1, Have: ^uint32(0)},
	}
}

func TestDatagramRoundTrip(t *testing.T) {
	for _, d := range testDatagrams() {
		b := appendDatagram(nil, &d)
		if len(b) != datagramSize {
			t.Fatalf("%d bytes", len(b))
		}
		got, err := parseDatagram(b)
		if err != nil {
			t.Fatalf("parse %+v: %v", d, err)
		}
		if got != d {
			t.Errorf("got %+v, want %+v", got, d)
		}
	}
}

func TestParseDatagramErrors(t *testing.T) {
	valid := testDatagrams()[1]
	tests := []struct {
		name    string
		corrupt func(b []byte) []byte
	}{
		{"empty", func(b []byte) []byte { return nil }},
		{"short", func(b []byte) []byte { return b[:datagramSize-1] }},
		{"long", func(b []byte) []byte { return append(b, 0) }},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"version", func(b []byte) []byte { b[4] = 2; return b }},
		{"type zero", func(b []byte) []byte { b[5] = 0; return b }},
		{"type unknown", func(b []byte) []byte { b[5] = 3; return b }},
		{"reserved", func(b []byte) []byte { b[7] = 1; return b }},
		{"unspecified address", func(b []byte) []byte { clear(b[40:56]); return b }},
		{"multicast address", func(b []byte) []byte {
			a := netip.MustParseAddr("::ffff:224.0.0.1").As16()
			copy(b[40:56], a[:])
			return b
		}},
		{"broadcast address", func(b []byte) []byte {
			a := netip.MustParseAddr("::ffff:255.255.255.255").As16()
			copy(b[40:56], a[:])
			return b
		}},
		{"port zero", func(b []byte) []byte { b[56], b[57] = 0, 0; return b }},
		{"zero nonce", func(b []byte) []byte { clear(b[58:66]); return b }},
		{"query with echo", func(b []byte) []byte { b[5] = byte(msgQuery); return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.corrupt(appendDatagram(nil, &valid))
			if _, err := parseDatagram(b); !errors.Is(err, ErrFormat) {
				t.Errorf("got %v, want ErrFormat", err)
			}
		})
	}
}

func TestFramesRoundTrip(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.5:4051")
	b := netip.MustParseAddrPort("10.0.0.6:4051")
	tree := treeID{7}
	read := func(t *testing.T, wire []byte, want byte) []byte {
		t.Helper()
		typ, p, err := readFrame(bytes.NewReader(wire), make([]byte, maxControl))
		if err != nil || typ != want {
			t.Fatalf("frame %d, %v; want %d", typ, err, want)
		}
		return p
	}
	t.Run("join", func(t *testing.T) {
		for _, j := range []joinMsg{{Tree: tree, From: a}, {Tree: tree, From: a, Root: true, Have: 9, Avoid: []netip.AddrPort{b, a}}} {
			got, err := parseJoin(read(t, j.marshal(), frameJoin))
			if err != nil || got.Tree != j.Tree || got.From != j.From || got.Root != j.Root || got.Have != j.Have || len(got.Avoid) != len(j.Avoid) {
				t.Errorf("got %+v, %v; want %+v", got, err, j)
			}
		}
	})
	t.Run("join avoids at most maxAvoid", func(t *testing.T) {
		j := joinMsg{Tree: tree, From: a, Avoid: make([]netip.AddrPort, maxAvoid+5)}
		for i := range j.Avoid {
			j.Avoid[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}), 4051)
		}
		got, err := parseJoin(read(t, j.marshal(), frameJoin))
		if err != nil || len(got.Avoid) != maxAvoid || got.Avoid[maxAvoid-1] != j.Avoid[len(j.Avoid)-1] {
			t.Errorf("got %d avoided, %v", len(got.Avoid), err)
		}
	})
	t.Run("place", func(t *testing.T) {
		for _, m := range []placeMsg{{Status: statusOK, Parent: b}, {Status: statusNotRoot}, {Status: statusTreeFull}, {Status: statusYield}} {
			got, err := parsePlace(read(t, m.marshal(), framePlace))
			if err != nil || got != m {
				t.Errorf("got %+v, %v; want %+v", got, err, m)
			}
		}
	})
	t.Run("get", func(t *testing.T) {
		m := getMsg{Tree: tree, From: a, First: 42}
		got, err := parseGet(read(t, m.marshal(), frameGet))
		if err != nil || got != m {
			t.Errorf("got %+v, %v", got, err)
		}
	})
	t.Run("accept", func(t *testing.T) {
		m := acceptMsg{Status: statusOK, Path: []netip.AddrPort{a, b}}
		got, err := parseAccept(read(t, m.marshal(), frameAccept))
		if err != nil || got.Status != statusOK || len(got.Path) != 2 || got.Path[1] != b {
			t.Errorf("got %+v, %v", got, err)
		}
		if _, err := parseAccept(read(t, (&acceptMsg{Status: statusOK}).marshal(), frameAccept)); !errors.Is(err, ErrFormat) {
			t.Errorf("ok without a path: %v", err)
		}
	})
	t.Run("have", func(t *testing.T) {
		m := haveMsg{Have: 5, Avail: 3}
		got, err := parseHave(read(t, m.marshal(), frameHave))
		if err != nil || got != m {
			t.Errorf("got %+v, %v", got, err)
		}
		if _, err := parseHave(read(t, (&haveMsg{Have: 1, Avail: 2}).marshal(), frameHave)); !errors.Is(err, ErrFormat) {
			t.Errorf("more available than held: %v", err)
		}
	})
}

func TestReadFrameLimit(t *testing.T) {
	wire := appendFrameHeader(nil, frameChunk, 1<<30)
	if _, _, err := readFrame(bytes.NewReader(wire), make([]byte, 100)); !errors.Is(err, ErrFormat) {
		t.Errorf("oversized frame: %v", err)
	}
	wire = append(appendFrameHeader(nil, frameHave, 8), 1, 2, 3)
	if _, _, err := readFrame(bytes.NewReader(wire), make([]byte, 100)); err == nil {
		t.Errorf("truncated frame: no error")
	}
	long := make([]byte, 1+(maxDepth+1)*addrPortSize)
	long[0] = maxDepth + 1
	if _, err := parsePath(long); !errors.Is(err, ErrFormat) {
		t.Errorf("path too deep: %v", err)
	}
}

func TestManifestValidate(t *testing.T) {
	_, good := testFile(t, 3*1000+1, 1000)
	tests := []struct {
		name   string
		modify func(m *Manifest)
		ok     bool
	}{
		{"good", func(m *Manifest) {}, true},
		{"uppercase hash", func(m *Manifest) { m.Key.SHA256 = "AB" + m.Key.SHA256[2:] }, false},
		{"short hash", func(m *Manifest) { m.Key.SHA256 = m.Key.SHA256[2:] }, false},
		{"negative size", func(m *Manifest) { m.Size = -1 }, false},
		{"zero chunk size", func(m *Manifest) { m.ChunkSize = 0 }, false},
		{"huge chunk size", func(m *Manifest) { m.ChunkSize = MaxChunkSize + 1 }, false},
		{"missing chunk", func(m *Manifest) { m.Chunks = m.Chunks[:3] }, false},
		{"extra chunk", func(m *Manifest) { m.Chunks = append(m.Chunks, [32]byte{}) }, false},
		{"too many chunks", func(m *Manifest) { m.Size, m.ChunkSize = 1<<62, 1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good
			m.Chunks = append([][32]byte(nil), good.Chunks...)
			tt.modify(&m)
			err := m.validate()
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrManifest) {
				t.Errorf("got %v", err)
			}
		})
	}
	other := good
	other.ChunkSize = 2000
	if good.tree() == other.tree() {
		t.Error("manifests with different chunk sizes share a tree")
	}
}

func TestMembership(t *testing.T) {
	ap := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 4051)
	}
	ms := newMembership(ap(1))
	parentOf := map[int]int{}
	for i := 2; i <= 15; i++ {
		p, ok := ms.place(ap(i), nil)
		if !ok {
			t.Fatalf("node %d: no place", i)
		}
		parentOf[i] = int(p.Addr().As4()[3])
	}
	// A complete binary tree, filled level by level.
	for i := 2; i <= 15; i++ {
		if want := i / 2; parentOf[i] != want {
			t.Errorf("node %d under %d, want %d", i, parentOf[i], want)
		}
	}
	// Node 2 dies: its children's next parent avoids it, and its slot... is gone with it.
	p, ok := ms.place(ap(4), []netip.AddrPort{ap(2)})
	if !ok || p == ap(2) {
		t.Errorf("re-placed under %v, %v", p, ok)
	}
	if _, known := ms.parent[ap(2)]; known {
		t.Error("avoided node still a member")
	}
	// A node joining again moves: its subtree can never be its parent.
	p, _ = ms.place(ap(3), nil)
	for q := p; q != ap(1); q = ms.parent[q] {
		if q == ap(3) {
			t.Fatalf("node 3 placed in its own subtree")
		}
	}
	// Avoiding the root places elsewhere.
	if p, ok := ms.place(ap(20), []netip.AddrPort{ap(1)}); !ok || p == ap(1) {
		t.Errorf("placed under %v, %v", p, ok)
	}
}

func TestOnDatagramFilters(t *testing.T) {
	_, m := testFile(t, 1000, 1000)
	c := newCluster(t, 1, nil)
	n := c.nodes[0]
	f := newFile(n, m.tree(), m, newMemFile(m.Size))
	n.mu.Lock()
	n.files[f.id] = f
	n.mu.Unlock()
	defer n.unregister(f, ErrReleased)

	peer := netip.MustParseAddrPort("127.0.0.9:4051")
	now := time.Now()
	claim := func(mod func(d *datagram)) []byte {
		d := datagram{Type: msgClaim, Tree: f.id, From: peer, Nonce: nonce(), Time: now.UnixMilli(), Have: 1}
		if mod != nil {
			mod(&d)
		}
		return appendDatagram(nil, &d)
	}
	got := func() bool {
		select {
		case <-f.events:
			return true
		default:
			return false
		}
	}
	tests := []struct {
		name string
		b    []byte
		from netip.AddrPort
		want bool
	}{
		{"fresh claim", claim(nil), peer, true},
		{"garbage", []byte("DUPS garbage"), peer, false},
		{"source is not the claimed address", claim(nil), netip.MustParseAddrPort("127.0.0.10:4051"), false},
		{"own datagram", claim(func(d *datagram) { d.From = n.self }), n.self, false},
		{"old unsolicited claim", claim(func(d *datagram) { d.Time = now.Add(-time.Hour).UnixMilli() }), peer, false},
		{"future unsolicited claim", claim(func(d *datagram) { d.Time = now.Add(time.Hour).UnixMilli() }), peer, false},
		{"claim echoing an unknown query", claim(func(d *datagram) { d.Echo = 12345 }), peer, false},
		{"other tree", claim(func(d *datagram) { d.Tree[0]++ }), peer, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n.onDatagram(tt.b, tt.from, now)
			if g := got(); g != tt.want {
				t.Errorf("delivered %v, want %v", g, tt.want)
			}
		})
	}

	t.Run("replay", func(t *testing.T) {
		b := claim(nil)
		n.onDatagram(b, peer, now)
		n.onDatagram(b, peer, now.Add(time.Second))
		if !got() || got() {
			t.Error("want the claim once")
		}
	})
	t.Run("echo of a query heard", func(t *testing.T) {
		q := datagram{Type: msgQuery, Tree: f.id, From: netip.MustParseAddrPort("127.0.0.11:4051"), Nonce: 777, Time: 0}
		n.onDatagram(appendDatagram(nil, &q), q.From, now)
		got()
		n.onDatagram(claim(func(d *datagram) { d.Echo = 777; d.Time = 0 }), peer, now)
		if !got() {
			t.Error("claim answering a query dropped")
		}
	})
}

// TestUDPBroadcast sends real broadcasts on loopback, where Linux has a
// broadcast route for 127.255.255.255.
func TestUDPBroadcast(t *testing.T) {
	port := uint16(30000 + time.Now().UnixNano()%20000)
	bcast := netip.AddrPortFrom(netip.MustParseAddr("127.255.255.255"), port)
	a, err := NewUDPBroadcast(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.61"), port), bcast)
	if err != nil {
		t.Skipf("no broadcast here: %v", err)
	}
	defer a.Close()
	b, err := NewUDPBroadcast(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.62"), port), bcast)
	if err != nil {
		t.Skipf("no broadcast here: %v", err)
	}
	got := make(chan netip.AddrPort, 1)
	go func() {
		for {
			msg, from, err := b.Receive()
			if err != nil {
				close(got)
				return
			}
			if string(msg) == "hello" {
				got <- from
			}
		}
	}()
	deadline := time.After(2 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-tick.C:
			if err := a.Broadcast([]byte("hello")); err != nil {
				t.Skipf("no broadcast here: %v", err)
			}
		case from := <-got:
			if from.Addr() != netip.MustParseAddr("127.0.0.61") {
				t.Errorf("from %v", from)
			}
			done = true
		case <-deadline:
			t.Skip("no broadcast delivered on loopback")
		}
	}
	b.Close()
	if _, ok := <-got; ok {
		t.Error("Receive after Close succeeded")
	}
}
