package peer

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// file is a node's state for one tree: what it holds of the file, whom it
// serves it to, and, while it is the root, the tree's membership.
type file struct {
	n     *Node
	id    treeID
	m     Manifest
	count int // chunks
	dst   io.WriterAt
	rdst  io.ReaderAt // dst, when it can be read back: then the node serves children
	log   *zap.Logger

	ctx    context.Context // done once the file is released, replaced or the node closes
	cancel context.CancelCauseFunc
	events chan datagram       // discovery datagrams for the running Fetch
	kick   chan struct{}       // a query for the root loop to answer
	yield  chan netip.AddrPort // a root this root yielded to, for the running Fetch to join
	wg     sync.WaitGroup

	mu          sync.Mutex
	have        int           // chunks 0..have-1 are verified and written
	changed     chan struct{} // closed when have grows
	path        []netip.AddrPort
	pathChanged chan struct{} // closed when path changes
	pathGen     int
	children    int                    // children served now
	kids        map[netip.AddrPort]int // the same, by address (a child may reconnect before its old connection ends)
	fetching    bool
	root        *membership // non-nil while the node is the root
	stopRoot    context.CancelFunc
	echo        uint64 // the latest query for the root loop to answer
}

func newFile(n *Node, id treeID, m Manifest, dst io.WriterAt) *file {
	f := &file{
		n:           n,
		id:          id,
		m:           m,
		count:       len(m.Chunks),
		dst:         dst,
		log:         n.log.With(zap.String("tree", shortID(id)), zap.String("file", m.Key.Name)),
		events:      make(chan datagram, 64),
		kick:        make(chan struct{}, 1),
		yield:       make(chan netip.AddrPort, 1),
		changed:     make(chan struct{}),
		pathChanged: make(chan struct{}),
		fetching:    true,
		kids:        map[netip.AddrPort]int{},
	}
	f.rdst, _ = dst.(io.ReaderAt)
	f.ctx, f.cancel = context.WithCancelCause(n.ctx)
	return f
}

// stop ends everything the file runs (root loop, transfers to children)
// and waits for it.
func (f *file) stop(cause error) {
	f.mu.Lock() // so that nothing joins f.wg once it is cancelled
	f.cancel(cause)
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *file) isFetching() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetching
}

func (f *file) next() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.have
}

func (f *file) complete() bool { return f.next() >= f.count }

// available is how many chunks the node may send now: all it has, or,
// store-and-forward, none until it has them all.
func (f *file) available(have int) int {
	if f.n.cfg.StoreAndForward && have < f.count {
		return 0
	}
	return have
}

// commit writes verified chunk i (the next one) and offers it to children.
func (f *file) commit(i int, b []byte) error {
	if _, err := f.dst.WriteAt(b, int64(i)*f.m.ChunkSize); err != nil {
		return fmt.Errorf("write chunk %d: %w", i, err)
	}
	f.mu.Lock()
	if i == f.have {
		f.have++
		close(f.changed)
		f.changed = make(chan struct{})
	}
	f.mu.Unlock()
	return nil
}

// setPath records the node's ancestors, root first.
func (f *file) setPath(path []netip.AddrPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Equal(path, f.path) {
		return
	}
	f.path = path
	f.pathGen++
	close(f.pathChanged)
	f.pathChanged = make(chan struct{})
}

// onDatagram takes a discovery datagram about this tree: a root answers
// queries; the running Fetch sees everything.
func (f *file) onDatagram(d datagram) {
	select {
	case f.events <- d:
	default:
	}
	if d.Type != msgQuery {
		return
	}
	f.mu.Lock()
	isRoot := f.root != nil
	if isRoot {
		f.echo = d.Nonce
	}
	f.mu.Unlock()
	if isRoot {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
}

// drainEvents forgets the datagrams that came while nobody listened.
func (f *file) drainEvents() {
	for {
		select {
		case <-f.events:
		default:
			return
		}
	}
}

// becomeRoot makes the node the tree's root: it keeps the membership,
// answers queries and announces itself.
func (f *file) becomeRoot() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.root != nil || f.ctx.Err() != nil {
		return
	}
	f.root = newMembership(f.n.self)
	for k := range f.kids { // children from the tree it was in
		f.root.attach(k, f.n.self)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	f.stopRoot = cancel
	f.path = nil
	f.pathGen++
	close(f.pathChanged)
	f.pathChanged = make(chan struct{})
	f.wg.Add(1)
	go f.rootLoop(ctx)
	f.log.Info("became root")
}

// resign gives up the root's role.
func (f *file) resign() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resignLocked()
}

func (f *file) resignLocked() {
	if f.root == nil {
		return
	}
	f.root = nil
	f.stopRoot()
	f.log.Info("resigned as root")
}

// rootLoop claims the tree: at once, every AnnounceInterval, and in answer
// to queries, at most once per quarter OfferTimeout.
func (f *file) rootLoop(ctx context.Context) {
	defer f.wg.Done()
	cfg := &f.n.cfg
	f.n.broadcast(msgClaim, f.id, 0, f.next())
	last := time.Now()
	tick := time.NewTicker(cfg.AnnounceInterval)
	defer tick.Stop()
	gap := cfg.OfferTimeout / 4
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f.n.broadcast(msgClaim, f.id, 0, f.next())
			last = time.Now()
		case <-f.kick:
			if wait := gap - time.Since(last); wait > 0 && !sleepCtx(ctx, wait) {
				return
			}
			f.mu.Lock()
			echo := f.echo
			f.mu.Unlock()
			f.n.broadcast(msgClaim, f.id, echo, f.next())
			last = time.Now()
		}
	}
}

// place answers a JOIN. Another root's JOIN proposes to merge two trees:
// the lower address decides. When the joiner holds more chunks than this
// unfinished root, this root yields (it resigns, and its Fetch joins the
// other); else the joiner is placed like any node, and resigns.
func (f *file) place(j *joinMsg) placeMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.root == nil || j.From == f.n.self {
		return placeMsg{Status: statusNotRoot}
	}
	if j.Root && f.have < f.count && int64(j.Have) > int64(f.have) && lessAddr(f.n.self, j.From) {
		select {
		case f.yield <- j.From:
			f.resignLocked()
			f.log.Info("yielding to a root that holds more", zap.Stringer("root", j.From), zap.Uint32("its_chunks", j.Have), zap.Int("chunks", f.have))
			return placeMsg{Status: statusYield}
		default: // already yielding
			return placeMsg{Status: statusNotRoot}
		}
	}
	parent, ok := f.root.place(j.From, j.Avoid)
	if !ok {
		return placeMsg{Status: statusTreeFull}
	}
	return placeMsg{Status: statusOK, Parent: parent}
}

// membership is the root's view of its tree: every member's parent.
// Members report dead, lying or full nodes when they join again, and the
// root forgets those.
type membership struct {
	self   netip.AddrPort
	parent map[netip.AddrPort]netip.AddrPort
	seq    map[netip.AddrPort]uint64 // join order, to break ties
	next   uint64
}

// maxMembers bounds a tree's membership.
const maxMembers = 8192

func newMembership(self netip.AddrPort) *membership {
	return &membership{self: self, parent: map[netip.AddrPort]netip.AddrPort{}, seq: map[netip.AddrPort]uint64{}}
}

// attach records child under parent.
func (ms *membership) attach(child, parent netip.AddrPort) {
	if len(ms.parent) >= maxMembers && ms.parent[child] == (netip.AddrPort{}) {
		return
	}
	ms.parent[child] = parent
	ms.seq[child] = ms.next
	ms.next++
}

func (ms *membership) forget(a netip.AddrPort) {
	delete(ms.parent, a)
	delete(ms.seq, a)
}

// place attaches joiner under the shallowest member (the root included)
// with a free slot that joiner does not avoid, earliest joined first. The
// joiner's previous place is forgotten, and with it its subtree, which
// cannot then be chosen (no cycle).
func (ms *membership) place(joiner netip.AddrPort, avoid []netip.AddrPort) (netip.AddrPort, bool) {
	ms.forget(joiner)
	skip := map[netip.AddrPort]bool{}
	for _, a := range avoid {
		skip[a] = true
		if a != ms.self {
			ms.forget(a)
		}
	}
	if len(ms.parent) >= maxMembers {
		return netip.AddrPort{}, false
	}
	kids := make(map[netip.AddrPort][]netip.AddrPort, len(ms.parent))
	for c, p := range ms.parent {
		kids[p] = append(kids[p], c)
	}
	queue := []netip.AddrPort{ms.self}
	seen := map[netip.AddrPort]bool{ms.self: true}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		ks := kids[x]
		if !skip[x] && len(ks) < MaxChildren {
			ms.attach(joiner, x)
			return x, true
		}
		slices.SortFunc(ks, func(a, b netip.AddrPort) int { return cmp.Compare(ms.seq[a], ms.seq[b]) })
		for _, k := range ks {
			if !seen[k] {
				seen[k] = true
				queue = append(queue, k)
			}
		}
	}
	return netip.AddrPort{}, false
}
