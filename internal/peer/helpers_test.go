package peer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/time/rate"

	"github.com/deviceupdate/deviceupdate/internal/ratelimit"
)

// memFile is a fixed-size in-memory destination.
type memFile struct {
	mu sync.RWMutex
	b  []byte
}

func newMemFile(size int64) *memFile { return &memFile{b: make([]byte, size)} }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, io.ErrShortWrite
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) bytes() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return bytes.Clone(m.b)
}

// memSource serves data and counts the bytes read from it.
type memSource struct {
	data  []byte
	read  atomic.Int64
	opens atomic.Int64
}

func (s *memSource) Open(ctx context.Context, off int64) (io.ReadCloser, error) {
	s.opens.Add(1)
	if off < 0 || off > int64(len(s.data)) {
		return nil, io.ErrUnexpectedEOF
	}
	return &countReader{ctx: ctx, r: bytes.NewReader(s.data[off:]), n: &s.read}, nil
}

type countReader struct {
	ctx context.Context
	r   io.Reader
	n   *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countReader) Close() error { return nil }

// testFile makes a file of size random bytes and its manifest.
func testFile(t testing.TB, size, chunk int64) ([]byte, Manifest) {
	t.Helper()
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(size), byte(chunk)})
	r.Read(data)
	return data, manifestFor(data, chunk, "CPE.nbt")
}

func manifestFor(data []byte, chunk int64, name string) Manifest {
	sum := sha256.Sum256(data)
	m := Manifest{
		Key:       Key{Model: "CX600", UpdateType: "CPE", Version: "4.0.7577.4366", Name: name, SHA256: hex.EncodeToString(sum[:])},
		Size:      int64(len(data)),
		ChunkSize: chunk,
	}
	for off := int64(0); off < int64(len(data)); off += chunk {
		m.Chunks = append(m.Chunks, sha256.Sum256(data[off:min(off+chunk, int64(len(data)))]))
	}
	return m
}

// cluster is N nodes on 127.A.B.1..N of a random subnet, with discovery
// by NewUDPList on one random port, which their TCP listeners use too.
type cluster struct {
	t      testing.TB
	prefix [3]byte
	port   uint16
	nodes  []*Node
	discs  []*testDisc
	base   int // goroutines before the cluster
}

// forgerHost is the host number of an address every node's discovery
// sends to, where tests put a forger.
const forgerHost = 200

func (c *cluster) addr(host int) netip.Addr {
	return netip.AddrFrom4([4]byte{c.prefix[0], c.prefix[1], c.prefix[2], byte(host)})
}

func (c *cluster) addrPort(host int) netip.AddrPort { return netip.AddrPortFrom(c.addr(host), c.port) }

// testConfig is the configuration of node i before tweaks.
func testConfig(t testing.TB) Config {
	cfg := Config{
		OfferTimeout:     40 * time.Millisecond,
		Offers:           3,
		StallTimeout:     time.Second,
		AnnounceInterval: 300 * time.Millisecond,
		Logger:           zap.NewNop(),
	}
	if os.Getenv("PEER_TEST_LOG") != "" {
		cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.DebugLevel))
	}
	return cfg
}

func newCluster(t testing.TB, n int, tweak func(i int, cfg *Config)) *cluster {
	t.Helper()
	base := runtime.NumGoroutine()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		c := &cluster{t: t, base: base, port: uint16(20000 + rand.IntN(40000)),
			prefix: [3]byte{127, byte(1 + rand.IntN(250)), byte(1 + rand.IntN(250))}}
		if lastErr = c.start(n, tweak); lastErr == nil {
			t.Cleanup(c.close)
			return c
		}
		c.closeNodes()
	}
	t.Fatalf("start cluster: %v", lastErr)
	return nil
}

func (c *cluster) start(n int, tweak func(i int, cfg *Config)) error {
	var peers []netip.AddrPort
	for i := 0; i < n; i++ {
		peers = append(peers, c.addrPort(i+1))
	}
	peers = append(peers, c.addrPort(forgerHost))
	for i := 0; i < n; i++ {
		d, err := NewUDPList(c.addrPort(i+1), peers)
		if err != nil {
			return err
		}
		td := &testDisc{Discovery: d}
		cfg := testConfig(c.t)
		cfg.Addr, cfg.Port, cfg.Discovery = c.addr(i+1), int(c.port), td
		if tweak != nil {
			tweak(i, &cfg)
		}
		node, err := NewNode(cfg)
		if err != nil {
			return err
		}
		c.nodes = append(c.nodes, node)
		c.discs = append(c.discs, td)
	}
	return nil
}

func (c *cluster) closeNodes() {
	for _, n := range c.nodes {
		n.Close()
	}
}

// close closes every node and checks that their goroutines ended.
func (c *cluster) close() {
	c.closeNodes()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > c.base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			c.t.Errorf("%d goroutines left, %d before; stacks:\n%s", runtime.NumGoroutine(), c.base, leakedStacks(buf))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leakedStacks keeps the stacks of this package's goroutines.
func leakedStacks(all []byte) string {
	var out []string
	for _, g := range strings.Split(string(all), "\n\n") {
		if strings.Contains(g, "internal/peer.") && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// testDisc wraps a Discovery: it can be muted (it then neither sends nor
// delivers), and records what it receives.
type testDisc struct {
	Discovery
	muted  atomic.Bool
	record atomic.Bool
	mu     sync.Mutex
	got    [][]byte
}

func (d *testDisc) Broadcast(b []byte) error {
	if d.muted.Load() {
		return nil
	}
	return d.Discovery.Broadcast(b)
}

func (d *testDisc) Receive() ([]byte, netip.AddrPort, error) {
	for {
		b, from, err := d.Discovery.Receive()
		if err != nil || !d.muted.Load() {
			if err == nil && d.record.Load() {
				d.mu.Lock()
				d.got = append(d.got, bytes.Clone(b))
				d.mu.Unlock()
			}
			return b, from, err
		}
	}
}

// result is one node's Fetch.
type result struct {
	st  Stats
	err error
	dst *memFile
}

// fetchAsync starts node's Fetch.
func fetchAsync(ctx context.Context, node *Node, m Manifest, src Source) chan result {
	ch := make(chan result, 1)
	go func() {
		dst := newMemFile(m.Size)
		st, err := node.Fetch(ctx, m, src, dst)
		ch <- result{st, err, dst}
	}()
	return ch
}

// fetchAll runs every node's Fetch at once.
func fetchAll(ctx context.Context, nodes []*Node, m Manifest, src Source) []result {
	chs := make([]chan result, len(nodes))
	for i, n := range nodes {
		chs[i] = fetchAsync(ctx, n, m, src)
	}
	return collect(chs)
}

func collect(chs []chan result) []result {
	out := make([]result, len(chs))
	for i, ch := range chs {
		out[i] = <-ch
	}
	return out
}

// checkResults checks that every node but those in skip fetched data.
func checkResults(t *testing.T, res []result, data []byte, skip ...int) (server, peer int64) {
	t.Helper()
	roots := 0
	for i, r := range res {
		if contains(skip, i) {
			continue
		}
		if r.err != nil {
			t.Errorf("node %d: %v", i, r.err)
			continue
		}
		if !bytes.Equal(r.dst.bytes(), data) {
			t.Errorf("node %d: wrong bytes", i)
		}
		server += r.st.ServerBytes
		peer += r.st.PeerBytes
		if r.st.Root {
			roots++
		}
		t.Logf("node %d: %+v", i, r.st)
	}
	t.Logf("server %d bytes (%.2f copies), peers %d bytes, %d roots", server, float64(server)/float64(len(data)), peer, roots)
	return server, peer
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// state returns node's file of m, or nil.
func state(n *Node, m *Manifest) *file { return n.lookup(m.tree()) }

func fileHave(n *Node, m *Manifest) int {
	if f := state(n, m); f != nil {
		return f.next()
	}
	return 0
}

func fileChildren(n *Node, m *Manifest) int {
	if f := state(n, m); f != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.children
	}
	return 0
}

func isRoot(n *Node, m *Manifest) bool {
	if f := state(n, m); f != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.root != nil
	}
	return false
}

// rateLimitPiece is the most a rate-limited read returns at once, so that
// readers sharing a limiter interleave finely.
const rateLimitPiece = 32 << 10

// rateLimit returns a Source that reads src at most bytesPerSecond in
// total, over all the readers it opens together: a site's WAN link, for
// benchmarks and simulations. A rate of zero or less means no limit.
func rateLimit(src Source, bytesPerSecond int64) Source {
	if bytesPerSecond <= 0 {
		return src
	}
	return &limitedSource{src: src, l: rate.NewLimiter(rate.Limit(bytesPerSecond), rateLimitPiece)}
}

type limitedSource struct {
	src Source
	l   *rate.Limiter
}

func (s *limitedSource) Open(ctx context.Context, offset int64) (io.ReadCloser, error) {
	rc, err := s.src.Open(ctx, offset)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{ratelimit.NewReader(ctx, s.l, rc, rateLimitPiece), rc}, nil
}
