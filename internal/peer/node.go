package peer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Config configures a Node. Zero durations and counts take the defaults
// named in their comments.
type Config struct {
	Addr netip.Addr // this phone's address: its TCP listener binds Addr:Port, and peers reach it there
	// Port is the TCP port for transfers: DefaultPort (4051) when zero; a
	// negative Port lets the system choose one (see [Node.AddrPort]), for
	// tests.
	Port int
	// Discovery carries the discovery datagrams. The Node owns it from
	// NewNode on and closes it in Close (or when NewNode fails).
	Discovery Discovery
	// StoreAndForward is Cisco's way: a node serves a file to its children
	// only once it has all of it (for the benchmark).
	StoreAndForward bool
	Logger          *zap.Logger // may be nil

	OfferTimeout time.Duration // how long a query waits for a root's claim: 200 ms
	Offers       int           // how many timed-out queries before a node becomes the root: 3
	// StallTimeout drops a parent that sends nothing for this long, and
	// bounds every connect, handshake and write: 2 s. Parents send a
	// heartbeat every quarter of it while they wait for chunks.
	StallTimeout time.Duration
	// ProgressTimeout drops a parent whose own progress (what its
	// heartbeats report) and sends have not moved for this long: 2 min.
	ProgressTimeout time.Duration
	// AnnounceInterval is how often a root repeats its claim unasked, so
	// that roots that did not hear each other meet: 5 s.
	AnnounceInterval time.Duration
	// MaxClockSkew bounds how far an unsolicited claim's time may be from
	// the node's clock: 60 s.
	MaxClockSkew time.Duration
	// UploadRate limits the bytes per second the node sends to all its
	// children together, to model a phone's link in simulations; zero
	// means no limit.
	UploadRate int64

	// corrupt, a test hook, changes a chunk after it is read back for a
	// child: a lying peer.
	corrupt func(index int, b []byte)
	// retryBase is the first wait after the Source fails: 100 ms, doubling.
	retryBase time.Duration
}

// DefaultOfferTimeout is how long a query waits for a root's claim when
// Config.OfferTimeout is not set.
const DefaultOfferTimeout = 200 * time.Millisecond

func (c *Config) setDefaults() {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.OfferTimeout <= 0 {
		c.OfferTimeout = DefaultOfferTimeout
	}
	if c.Offers <= 0 {
		c.Offers = 3
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 2 * time.Second
	}
	if c.ProgressTimeout <= 0 {
		c.ProgressTimeout = 2 * time.Minute
	}
	if c.AnnounceInterval <= 0 {
		c.AnnounceInterval = 5 * time.Second
	}
	if c.MaxClockSkew <= 0 {
		c.MaxClockSkew = time.Minute
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.retryBase <= 0 {
		c.retryBase = 100 * time.Millisecond
	}
}

// Node is one phone's peer-sharing agent: a TCP listener that serves files
// to children and answers roots' JOINs, and a discovery loop. Its methods
// are safe for concurrent use.
type Node struct {
	cfg    Config
	self   netip.AddrPort
	ln     net.Listener
	log    *zap.Logger
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	upload *rate.Limiter // nil: no UploadRate
	slots  chan struct{} // bounds the connections served at once

	claims  *seenSet // claims accepted: (sender, nonce)
	queries *seenSet // query nonces heard lately, which claims may echo

	mu     sync.Mutex
	files  map[treeID]*file
	closed bool

	maxKids  atomic.Int32 // the most children any file had at once (for tests)
	accepted atomic.Int64 // children accepted (for tests)
}

// maxConns bounds the TCP connections a node handles at once: at most
// MaxChildren children per file, and short JOINs, of which a root gets
// many at once; a joiner turned away tries again.
const maxConns = 512

// NewNode starts the TCP listener on cfg.Addr:cfg.Port and the discovery
// loop.
func NewNode(cfg Config) (*Node, error) {
	cfg.setDefaults()
	fail := func(err error) (*Node, error) {
		if cfg.Discovery != nil {
			cfg.Discovery.Close()
		}
		return nil, fmt.Errorf("new peer node %s: %w", cfg.Addr, err)
	}
	if cfg.Discovery == nil {
		return fail(errors.New("no discovery"))
	}
	if !cfg.Addr.IsValid() || cfg.Addr.IsUnspecified() || cfg.Addr.IsMulticast() {
		return fail(errors.New("the address must be the phone's unicast address"))
	}
	if cfg.Port > 65535 {
		return fail(fmt.Errorf("port %d out of range", cfg.Port))
	}
	cfg.Addr = cfg.Addr.Unmap().WithZone("")
	port := max(cfg.Port, 0)
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", netip.AddrPortFrom(cfg.Addr, uint16(port)).String())
	if err != nil {
		return fail(err)
	}
	n := &Node{
		cfg:     cfg,
		self:    canonAddrPort(ln.Addr().(*net.TCPAddr).AddrPort()),
		ln:      ln,
		upload:  uploadLimiter(cfg.UploadRate),
		slots:   make(chan struct{}, maxConns),
		claims:  newSeenSet(2 * cfg.MaxClockSkew),
		queries: newSeenSet(30 * time.Second),
		files:   make(map[treeID]*file),
	}
	n.log = cfg.Logger.With(zap.Stringer("node", n.self))
	n.ctx, n.cancel = context.WithCancelCause(context.Background())
	n.wg.Add(2)
	go n.acceptLoop()
	go n.discoveryLoop()
	return n, nil
}

// AddrPort returns the TCP address the node listens on and announces.
func (n *Node) AddrPort() netip.AddrPort { return n.self }

// Close stops the node: it closes the listener and the Discovery, aborts
// every Fetch (which returns ErrClosed) and every transfer, and waits for
// its goroutines to end.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	files := n.files
	n.files = map[treeID]*file{}
	n.mu.Unlock()
	n.cancel(ErrClosed)
	err := errors.Join(n.ln.Close(), n.cfg.Discovery.Close())
	for _, f := range files {
		f.stop(ErrClosed)
	}
	n.wg.Wait()
	if err != nil {
		return fmt.Errorf("close peer node %s: %w", n.self, err)
	}
	return nil
}

// Release stops serving the file named by k (every manifest of it): its
// children are dropped, a claim to be its root is withdrawn, and an
// unfinished Fetch of it returns ErrReleased. When Release returns, the
// node no longer touches the file's destination, but for such a Fetch
// until it returns.
func (n *Node) Release(k Key) {
	n.mu.Lock()
	var fs []*file
	for id, f := range n.files {
		if f.m.Key == k {
			delete(n.files, id)
			fs = append(fs, f)
		}
	}
	n.mu.Unlock()
	for _, f := range fs {
		f.stop(ErrReleased)
	}
}

// register makes a file state for a new Fetch, replacing a finished one of
// the same tree.
func (n *Node) register(m Manifest, dst io.WriterAt) (*file, error) {
	id := m.tree()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	old := n.files[id]
	if old != nil && old.isFetching() {
		n.mu.Unlock()
		return nil, ErrBusy
	}
	f := newFile(n, id, m, dst)
	n.files[id] = f
	n.mu.Unlock()
	if old != nil {
		old.stop(ErrReleased)
	}
	return f, nil
}

// unregister forgets f, if it is still the file of its tree, and stops it.
func (n *Node) unregister(f *file, cause error) {
	n.mu.Lock()
	if n.files[f.id] == f {
		delete(n.files, f.id)
	}
	n.mu.Unlock()
	f.stop(cause)
}

func (n *Node) lookup(id treeID) *file {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.files[id]
}

func (n *Node) acceptLoop() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			if n.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			n.log.Warn("accept failed", zap.Error(err))
			if !sleepCtx(n.ctx, 50*time.Millisecond) {
				return
			}
			continue
		}
		select {
		case n.slots <- struct{}{}:
		default:
			n.log.Debug("too many connections", zap.Stringer("peer", c.RemoteAddr()))
			c.Close()
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer func() { <-n.slots }()
			n.handleConn(c)
		}()
	}
}

func (n *Node) discoveryLoop() {
	defer n.wg.Done()
	for {
		b, from, err := n.cfg.Discovery.Receive()
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			n.log.Debug("discovery receive failed", zap.Error(err))
			if !sleepCtx(n.ctx, 50*time.Millisecond) {
				return
			}
			continue
		}
		n.onDatagram(b, from, time.Now())
	}
}

// onDatagram checks one discovery datagram and hands it to its file. It
// drops, without a word, malformed datagrams, the node's own, those whose
// claimed address is not their source's, claims seen before, claims that
// echo a query nobody sent lately, unsolicited claims from another time,
// and datagrams about trees the node is not in.
func (n *Node) onDatagram(b []byte, from netip.AddrPort, now time.Time) {
	d, err := parseDatagram(b)
	if err != nil {
		return
	}
	if d.From == n.self || d.From.Addr() != from.Addr().Unmap().WithZone("") {
		return
	}
	switch d.Type {
	case msgQuery:
		n.queries.add(seenKey{nonce: d.Nonce}, now)
	case msgClaim:
		if d.Echo != 0 {
			if !n.queries.has(seenKey{nonce: d.Echo}, now) {
				return
			}
		} else if skew := now.Sub(time.UnixMilli(d.Time)); skew > n.cfg.MaxClockSkew || skew < -n.cfg.MaxClockSkew {
			return
		}
		if !n.claims.add(seenKey{from: d.From, nonce: d.Nonce}, now) {
			return
		}
	}
	if f := n.lookup(d.Tree); f != nil {
		f.onDatagram(d)
	}
}

// broadcast sends one datagram about tree id.
func (n *Node) broadcast(typ msgType, id treeID, echo uint64, have int) uint64 {
	d := datagram{Type: typ, Tree: id, From: n.self, Nonce: nonce(), Echo: echo, Time: time.Now().UnixMilli(), Have: uint32(have)}
	if typ == msgQuery {
		n.queries.add(seenKey{nonce: d.Nonce}, time.Now())
	}
	if err := n.cfg.Discovery.Broadcast(appendDatagram(make([]byte, 0, datagramSize), &d)); err != nil {
		n.log.Debug("discovery broadcast failed", zap.Error(err))
	}
	return d.Nonce
}

func nonce() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

func shortID(id treeID) string { return hex.EncodeToString(id[:6]) }

// sleepCtx sleeps for d, or until ctx is done: it reports whether it slept
// the whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// seenSet remembers keys for between one and two windows, in two bounded
// generations: a flood of new keys can evict old ones early (letting a
// replay through, which the protocol tolerates) but never grow it.
type seenSet struct {
	mu        sync.Mutex
	window    time.Duration
	cur, prev map[seenKey]struct{}
	since     time.Time
}

type seenKey struct {
	from  netip.AddrPort
	nonce uint64
}

// maxSeen bounds each generation of a seenSet.
const maxSeen = 4096

func newSeenSet(window time.Duration) *seenSet {
	return &seenSet{window: window, cur: map[seenKey]struct{}{}, prev: map[seenKey]struct{}{}}
}

func (s *seenSet) rotate(now time.Time) {
	if now.Sub(s.since) > s.window || len(s.cur) >= maxSeen {
		s.prev, s.cur, s.since = s.cur, make(map[seenKey]struct{}), now
	}
}

// add records k and reports whether it was new.
func (s *seenSet) add(k seenKey, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate(now)
	_, a := s.cur[k]
	_, b := s.prev[k]
	if a || b {
		return false
	}
	s.cur[k] = struct{}{}
	return true
}

func (s *seenSet) has(k seenKey, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate(now)
	_, a := s.cur[k]
	_, b := s.prev[k]
	return a || b
}
