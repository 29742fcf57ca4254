package peer

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

const mib = 1 << 20

// TestShare: eight nodes fetch an 8 MiB file; the server sends it about
// once and nobody serves more than two children.
func TestShare(t *testing.T) {
	data, m := testFile(t, 8*mib, mib)
	// Eight nodes start at once and elect one root among themselves: give
	// the election the product's default wait, not the tests' short one, so
	// a loaded machine (a CI runner, a race build) does not time it out and
	// make every node its own root.
	c := newCluster(t, 8, func(_ int, cfg *Config) { cfg.OfferTimeout = DefaultOfferTimeout })
	src := &memSource{data: data}
	res := fetchAll(testContext(t), c.nodes, m, src)
	server, _ := checkResults(t, res, data)
	if got := src.read.Load(); got != server {
		t.Errorf("source counted %d bytes, stats %d", got, server)
	}
	if limit := int64(1.25 * float64(len(data))); server > limit {
		t.Errorf("server sent %d bytes, more than 1.25 copies (%d)", server, limit)
	}
	for i, n := range c.nodes {
		if k := n.maxKids.Load(); k > MaxChildren {
			t.Errorf("node %d had %d children", i, k)
		}
	}
}

// TestStoreAndForward: Cisco's way works too.
func TestStoreAndForward(t *testing.T) {
	data, m := testFile(t, 4*mib, 512<<10)
	c := newCluster(t, 6, func(i int, cfg *Config) { cfg.StoreAndForward = true })
	src := &memSource{data: data}
	res := fetchAll(testContext(t), c.nodes, m, src)
	server, _ := checkResults(t, res, data)
	if limit := int64(1.25 * float64(len(data))); server > limit {
		t.Errorf("server sent %d bytes, more than 1.25 copies (%d)", server, limit)
	}
}

// TestServeAfterFetch: a node that joins after everyone finished gets the
// file from the tree, and Release stops a node serving.
func TestServeAfterFetch(t *testing.T) {
	data, m := testFile(t, 2*mib, 256<<10)
	c := newCluster(t, 3, nil)
	ctx := testContext(t)
	src := &memSource{data: data}
	checkResults(t, fetchAll(ctx, c.nodes[:2], m, src), data)
	before := src.read.Load()
	res := collect([]chan result{fetchAsync(ctx, c.nodes[2], m, src)})
	checkResults(t, res, data)
	if res[0].st.PeerBytes != int64(len(data)) || src.read.Load() != before {
		t.Errorf("late node: %+v, server read %d more bytes", res[0].st, src.read.Load()-before)
	}

	// Released everywhere: a new node finds no root and reads the server.
	for _, n := range c.nodes {
		n.Release(m.Key)
	}
	res = collect([]chan result{fetchAsync(ctx, c.nodes[0], m, src)})
	checkResults(t, res, data)
	if !res[0].st.Root || res[0].st.ServerBytes != int64(len(data)) {
		t.Errorf("after release: %+v", res[0].st)
	}
}

// TestLyingPeer: a parent that flips bits in what it forwards is dropped
// by its children, which still end with the right bytes.
func TestLyingPeer(t *testing.T) {
	for _, liar := range []int{0, 1} {
		name := map[int]string{0: "root", 1: "inner"}[liar]
		t.Run(name, func(t *testing.T) {
			data, m := testFile(t, 4*mib, 256<<10)
			var lies atomic.Int64
			c := newCluster(t, 7, func(i int, cfg *Config) {
				if i == liar {
					cfg.corrupt = func(_ int, b []byte) { b[len(b)/2] ^= 0x40; lies.Add(1) }
				}
			})
			ctx := testContext(t)
			src := &memSource{data: data}
			slow := rateLimit(src, 16*mib)
			chs := startStaged(t, c, m, slow)
			res := collect(chs)
			checkResults(t, res, data)
			bad := 0
			for _, r := range res {
				bad += r.st.BadChunks
			}
			if lies.Load() == 0 || bad == 0 {
				t.Errorf("the liar sent %d chunks, %d bad chunks detected", lies.Load(), bad)
			}
			_ = ctx
		})
	}
}

// startStaged starts node 0, which becomes the root, then node 1, which
// attaches under it, then the others: node 1 then serves children.
func startStaged(t *testing.T, c *cluster, m Manifest, src Source) []chan result {
	t.Helper()
	ctx := testContext(t)
	chs := []chan result{fetchAsync(ctx, c.nodes[0], m, src)}
	waitFor(t, "node 0 to be root", func() bool { return isRoot(c.nodes[0], &m) })
	chs = append(chs, fetchAsync(ctx, c.nodes[1], m, src))
	waitFor(t, "node 1 to attach", func() bool { return c.nodes[0].accepted.Load() > 0 })
	for _, n := range c.nodes[2:] {
		chs = append(chs, fetchAsync(ctx, n, m, src))
	}
	return chs
}

// TestParentVanishes: a parent (or the root) closes mid-transfer; its
// children re-attach or fall back and finish, losing no verified chunk.
func TestParentVanishes(t *testing.T) {
	for _, victim := range []int{0, 1} {
		name := map[int]string{0: "root", 1: "inner"}[victim]
		t.Run(name, func(t *testing.T) {
			data, m := testFile(t, 8*mib, 256<<10)
			c := newCluster(t, 7, nil)
			src := &memSource{data: data}
			chs := startStaged(t, c, m, rateLimit(src, 8*mib))
			waitFor(t, "the victim to serve", func() bool {
				h := fileHave(c.nodes[victim], &m)
				return fileChildren(c.nodes[victim], &m) > 0 && h >= 8 && h < len(m.Chunks)
			})
			c.nodes[victim].Close()
			res := collect(chs)
			if !errors.Is(res[victim].err, ErrClosed) && res[victim].err != nil {
				t.Errorf("victim: %v", res[victim].err)
			}
			checkResults(t, res, data, victim)
			for i, r := range res {
				if i == victim || r.err != nil {
					continue
				}
				// Every byte counted once, but for a chunk cut short at each change.
				if got, limit := r.st.ServerBytes+r.st.PeerBytes, int64(len(data))+int64(r.st.Reattached+1)*m.ChunkSize; got > limit {
					t.Errorf("node %d: %d bytes for a %d-byte file, %d reattachments", i, got, len(data), r.st.Reattached)
				}
			}
		})
	}
}

// TestForgedClaim: a forger answers every query, and claims unasked, that
// a dead address is the root holding the whole file. Nodes still finish.
func TestForgedClaim(t *testing.T) {
	data, m := testFile(t, 4*mib, 256<<10)
	c := newCluster(t, 6, nil)
	var peers []netip.AddrPort
	for i := range c.nodes {
		peers = append(peers, c.addrPort(i+1))
	}
	forger, err := NewUDPList(c.addrPort(forgerHost), peers)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // answer queries
		defer close(done)
		for {
			b, _, err := forger.Receive()
			if err != nil {
				return
			}
			q, err := parseDatagram(b)
			if err != nil || q.Type != msgQuery {
				continue
			}
			forgeClaim(forger, c.addrPort(forgerHost), q.Tree, q.Nonce, len(m.Chunks))
		}
	}()
	go func() { // and claim unasked
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				forgeClaim(forger, c.addrPort(forgerHost), m.tree(), 0, len(m.Chunks))
			}
		}
	}()
	defer func() {
		close(stop)
		forger.Close()
		<-done
	}()
	src := &memSource{data: data}
	res := fetchAll(testContext(t), c.nodes, m, src)
	server, _ := checkResults(t, res, data)
	if server > 2*int64(len(data)) {
		t.Errorf("server sent %d bytes", server)
	}
}

func forgeClaim(d Discovery, from netip.AddrPort, tree treeID, echo uint64, have int) {
	g := datagram{Type: msgClaim, Tree: tree, From: from, Nonce: nonce(), Echo: echo, Time: time.Now().UnixMilli(), Have: uint32(have)}
	d.Broadcast(appendDatagram(nil, &g))
}

// TestReplayedClaim: claims recorded from a root that has since gone are
// replayed to new nodes, from its address. Nodes still finish.
func TestReplayedClaim(t *testing.T) {
	data, m := testFile(t, 2*mib, 256<<10)
	src := &memSource{data: data}
	old := newCluster(t, 3, nil)
	for _, d := range old.discs {
		d.record.Store(true)
	}
	checkResults(t, fetchAll(testContext(t), old.nodes, m, src), data)
	var claims [][]byte
	var rootHost int
	for _, d := range old.discs {
		d.mu.Lock()
		for _, b := range d.got {
			if g, err := parseDatagram(b); err == nil && g.Type == msgClaim {
				claims = append(claims, b)
				rootHost = int(g.From.Addr().As4()[3])
			}
		}
		d.mu.Unlock()
	}
	old.close()
	if len(claims) == 0 {
		t.Fatal("no claims recorded")
	}

	// The same subnet, without the old root: a replayer sends from its
	// address.
	c := &cluster{t: t, prefix: old.prefix, port: old.port, base: old.base}
	var hosts []int
	for h := 1; h <= 3; h++ {
		if h != rootHost {
			hosts = append(hosts, h)
		}
	}
	var peers []netip.AddrPort
	for _, h := range hosts {
		peers = append(peers, c.addrPort(h))
	}
	for _, h := range hosts {
		d, err := NewUDPList(c.addrPort(h), append(peers, c.addrPort(rootHost)))
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(t)
		cfg.Addr, cfg.Port, cfg.Discovery = c.addr(h), int(c.port), d
		n, err := NewNode(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(c.close)
	replayer, err := NewUDPList(c.addrPort(rootHost), peers)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				replayer.Broadcast(claims[i%len(claims)])
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
		replayer.Close()
	}()
	checkResults(t, fetchAll(testContext(t), c.nodes, m, src), data)
}

// TestTwoRoots: two nodes that cannot hear each other both become roots;
// once they can, the tree heals and everyone finishes.
func TestTwoRoots(t *testing.T) {
	data, m := testFile(t, 8*mib, 256<<10)
	c := newCluster(t, 8, nil)
	ctx := testContext(t)
	src := &memSource{data: data}
	slow := rateLimit(src, 16*mib)
	c.discs[0].muted.Store(true)
	c.discs[1].muted.Store(true)
	chs := []chan result{fetchAsync(ctx, c.nodes[0], m, slow), fetchAsync(ctx, c.nodes[1], m, slow)}
	waitFor(t, "two roots", func() bool { return isRoot(c.nodes[0], &m) && isRoot(c.nodes[1], &m) })
	c.discs[0].muted.Store(false)
	c.discs[1].muted.Store(false)
	for _, n := range c.nodes[2:] {
		chs = append(chs, fetchAsync(ctx, n, m, slow))
	}
	res := collect(chs)
	server, _ := checkResults(t, res, data)
	if !res[0].st.Root || !res[1].st.Root {
		t.Errorf("nodes 0 and 1 were not both roots")
	}
	if server >= 2*int64(len(data)) {
		t.Errorf("server sent %d bytes: the roots did not merge", server)
	}
}

// TestRelease: Release aborts a Fetch of the file and stops serving it.
func TestRelease(t *testing.T) {
	data, m := testFile(t, 2*mib, 256<<10)
	c := newCluster(t, 1, nil)
	src := &memSource{data: data}
	ch := fetchAsync(testContext(t), c.nodes[0], m, rateLimit(src, mib))
	waitFor(t, "a chunk", func() bool { return fileHave(c.nodes[0], &m) > 0 })
	c.nodes[0].Release(m.Key)
	if r := <-ch; !errors.Is(r.err, ErrReleased) {
		t.Errorf("Fetch after Release: %v", r.err)
	}
	if state(c.nodes[0], &m) != nil {
		t.Errorf("file still registered")
	}
}

// TestFetchErrors: bad manifests, a source that disagrees with the
// manifest, a busy file, a closed node.
func TestFetchErrors(t *testing.T) {
	data, m := testFile(t, mib, 256<<10)
	c := newCluster(t, 1, func(i int, cfg *Config) { cfg.Offers, cfg.retryBase = 1, time.Millisecond })
	n := c.nodes[0]
	ctx := testContext(t)

	bad := m
	bad.Chunks = bad.Chunks[1:]
	if _, err := n.Fetch(ctx, bad, &memSource{data: data}, newMemFile(m.Size)); !errors.Is(err, ErrManifest) {
		t.Errorf("short chunk list: %v", err)
	}

	lying := &memSource{data: append([]byte(nil), data...)}
	lying.data[300<<10] ^= 1
	if _, err := n.Fetch(ctx, m, lying, newMemFile(m.Size)); !errors.Is(err, ErrChunkHash) {
		t.Errorf("lying source: %v", err)
	}

	wrongSum := manifestFor(data, 256<<10, "other.nbt")
	wrongSum.Key.SHA256 = "00" + wrongSum.Key.SHA256[2:]
	if _, err := n.Fetch(ctx, wrongSum, &memSource{data: data}, newMemFile(m.Size)); !errors.Is(err, ErrFileHash) {
		t.Errorf("wrong file hash: %v", err)
	}

	ch := fetchAsync(ctx, n, m, rateLimit(&memSource{data: data}, mib))
	waitFor(t, "fetch started", func() bool { return state(n, &m) != nil })
	if _, err := n.Fetch(ctx, m, &memSource{data: data}, newMemFile(m.Size)); !errors.Is(err, ErrBusy) {
		t.Errorf("second fetch: %v", err)
	}
	n.Close()
	if r := <-ch; !errors.Is(r.err, ErrClosed) {
		t.Errorf("fetch of a closed node: %v", r.err)
	}
	if _, err := n.Fetch(ctx, m, &memSource{data: data}, newMemFile(m.Size)); !errors.Is(err, ErrClosed) {
		t.Errorf("fetch on a closed node: %v", err)
	}
}

// writeOnly hides a destination's ReadAt.
type writeOnly struct{ w *memFile }

func (w writeOnly) WriteAt(p []byte, off int64) (int, error) { return w.w.WriteAt(p, off) }

// TestWriteOnlyDestination: a destination that cannot be read back is
// filled and checked; the node serves nobody from it.
func TestWriteOnlyDestination(t *testing.T) {
	data, m := testFile(t, mib+12345, 256<<10)
	c := newCluster(t, 2, nil)
	ctx := testContext(t)
	src := &memSource{data: data}
	dst := newMemFile(m.Size)
	if _, err := c.nodes[0].Fetch(ctx, m, src, writeOnly{dst}); err != nil {
		t.Fatal(err)
	}
	if string(dst.bytes()) != string(data) {
		t.Fatal("wrong bytes")
	}
	res := collect([]chan result{fetchAsync(ctx, c.nodes[1], m, src)})
	checkResults(t, res, data)
	if res[0].st.PeerBytes != 0 {
		t.Errorf("got %d bytes from a node that cannot read its file", res[0].st.PeerBytes)
	}
}

// TestEmptyFile: a file of no bytes has no chunks.
func TestEmptyFile(t *testing.T) {
	_, m := testFile(t, 0, mib)
	c := newCluster(t, 1, nil)
	if _, err := c.nodes[0].Fetch(testContext(t), m, &memSource{}, newMemFile(0)); err != nil {
		t.Fatal(err)
	}
}
