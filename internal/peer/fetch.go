package peer

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"go.uber.org/zap"
)

const (
	// maxJoinAttempts bounds the parents a node tries under one root before
	// it looks for a root again.
	maxJoinAttempts = 8
	// maxFailures is how many attempts in a row may bring no verified chunk
	// (dead roots and parents, liars, full trees) before a node gives up on
	// the tree and reads the rest from the server.
	maxFailures = 6
	// maxSourceFails is how many times in a row opening or reading the
	// Source may fail before Fetch does.
	maxSourceFails = 5
	// maxBusyRetries is how many times a node joins again a root that
	// closed the connection without an answer (too busy).
	maxBusyRetries = 4
)

// Fetch obtains the file named by m: as the tree's root it reads it from
// src, else from its parent in the tree, re-attaching or falling back to
// src when a parent fails, stalls or sends a chunk whose hash is wrong. It
// writes only verified chunks to dst (at their offsets), serves them to
// its own children (at most two) as soon as they are verified (unless
// StoreAndForward), and returns when every chunk is written and verified
// and the whole file matches m.Key.SHA256. After Fetch returns the node
// keeps serving the file to children that are still joining until
// Release(key) or Close: dst must stay open until then.
//
// The node serves children by reading chunks back from dst, so dst should
// also be an io.ReaderAt (an *os.File is); when it is not, the node fetches
// the file but serves nobody. With a ReaderAt, the final check reads the
// file back too, and chunks that changed in dst are read again from src.
//
// A Fetch of a file the node is already fetching fails with ErrBusy; one of
// a file it fetched before starts over and replaces it. Fetch fails with
// ErrReleased or ErrClosed when the file is released or the node closed
// first, ErrChunkHash or ErrFileHash when src disagrees with m, and with
// src's error when src keeps failing.
func (n *Node) Fetch(ctx context.Context, m Manifest, src Source, dst io.WriterAt) (Stats, error) {
	var st Stats
	if err := m.validate(); err != nil {
		return st, fmt.Errorf("fetch %s: %w", m.Key.Name, err)
	}
	if src == nil || dst == nil {
		return st, fmt.Errorf("fetch %s: nil source or destination", m.Key.Name)
	}
	f, err := n.register(m, dst)
	if err != nil {
		return st, fmt.Errorf("fetch %s: %w", m.Key.Name, err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(f.ctx, func() { cancel(context.Cause(f.ctx)) })
	defer stop()

	start := time.Now()
	s := newSession(f, src, &st)
	err = s.run(ctx)
	if err == nil {
		err = s.verify(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		n.unregister(f, ErrReleased)
		f.log.Info("fetch failed", zap.Error(err))
		return st, fmt.Errorf("fetch %s: %w", m.Key.Name, err)
	}
	f.mu.Lock()
	f.fetching = false
	f.mu.Unlock()
	f.log.Info("fetched", zap.Duration("took", time.Since(start)), zap.Int64("server_bytes", st.ServerBytes),
		zap.Int64("peer_bytes", st.PeerBytes), zap.Bool("root", st.Root), zap.Int("bad_chunks", st.BadChunks),
		zap.Int("reattached", st.Reattached))
	return st, nil
}

// session is one Fetch's state.
type session struct {
	f   *file
	n   *Node
	src Source
	st  *Stats
	log *zap.Logger

	avoid     map[netip.AddrPort]bool // parents found dead, lying, stalled or full
	avoidList []netip.AddrPort        // the same, oldest first, for JOINs
	notRoot   map[netip.AddrPort]bool // claimed roots that are not (or no longer) roots
	cur       string                  // the current provider: "" (none yet), "server" or a parent's address
	failures  int                     // attempts in a row that brought no verified chunk
	buf       []byte                  // a frame's payload: a chunk and its index
	whole     hash.Hash               // the chunks committed so far, in order; nil once one came out of order
	wholeNext int                     // the chunk whole expects next
}

func newSession(f *file, src Source, st *Stats) *session {
	s := &session{
		f: f, n: f.n, src: src, st: st, log: f.log,
		avoid:   map[netip.AddrPort]bool{},
		notRoot: map[netip.AddrPort]bool{},
		buf:     make([]byte, max(4+int(f.m.ChunkSize), maxControl)),
	}
	// The whole file's hash is taken as chunks are committed, in order,
	// so a phone hashes each byte once more, not twice more after a
	// read-back.
	s.whole = sha256.New()
	return s
}

// commit writes a verified chunk.
func (s *session) commit(i int, b []byte) error {
	if err := s.f.commit(i, b); err != nil {
		return &fatalError{err}
	}
	if s.whole != nil {
		if i == s.wholeNext {
			s.whole.Write(b)
			s.wholeNext++
		} else {
			s.whole = nil // out of order: verify reads the file back instead
		}
	}
	return nil
}

// fatalError is an error of the node itself (its destination), which no
// other parent can cure.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// switchTo notes a change of provider.
func (s *session) switchTo(name string) {
	if s.cur != "" && s.cur != name {
		s.st.Reattached++
	}
	s.cur = name
}

// bad notes a parent that failed: it is neither a parent nor a root again.
func (s *session) bad(a netip.AddrPort) {
	s.notRoot[a] = true
	s.skip(a)
}

// skip notes a parent not to be attached to again.
func (s *session) skip(a netip.AddrPort) {
	if !s.avoid[a] {
		s.avoid[a] = true
		s.avoidList = append(s.avoidList, a)
	}
}

// run gets every chunk: it looks for the tree's root, joins it or becomes
// it, and goes on until the file is complete.
func (s *session) run(ctx context.Context) error {
	f := s.f
	for !f.complete() {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if s.failures >= maxFailures {
			s.log.Info("giving up on the tree; reading from the server", zap.Int("failures", s.failures))
			_, err := s.fromSource(ctx, false)
			return err
		}
		roots, err := s.elect(ctx)
		if err != nil {
			return err
		}
		if len(roots) == 0 {
			f.becomeRoot()
			s.st.Root = true
			d, err := s.fromSource(ctx, true)
			if err != nil {
				return err
			}
			if d != nil {
				if err := s.underRoot(ctx, d.root, d.parent); err != nil {
					return err
				}
			}
			continue
		}
		for _, r := range roots {
			if err := s.underRoot(ctx, r, netip.AddrPort{}); err != nil {
				return err
			}
			if f.complete() || s.failures >= maxFailures {
				break
			}
		}
	}
	return nil
}

// elect queries for the tree's root. It returns the roots that claimed it,
// best first (most chunks, then lowest address), or none when the node is
// to become the root: after Offers queries without a claim, and no query
// lately from a lower address, which is the one to become root. A node
// that keeps hearing lower queriers but no claim waits at most 3*Offers
// queries.
func (s *session) elect(ctx context.Context) ([]netip.AddrPort, error) {
	f, cfg := s.f, &s.n.cfg
	f.drainEvents()
	claims := map[netip.AddrPort]uint32{}
	var lowerSeen time.Time
	for round := 0; round < 3*cfg.Offers; round++ {
		s.n.broadcast(msgQuery, f.id, 0, 0)
		timer := time.NewTimer(cfg.OfferTimeout)
		end := time.Now().Add(cfg.OfferTimeout)
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, context.Cause(ctx)
			case d := <-f.events:
				if s.notRoot[d.From] || s.avoid[d.From] {
					continue
				}
				switch d.Type {
				case msgClaim:
					if len(claims) == 0 {
						// One claim is enough: wait a little for others.
						if rest := time.Until(end); rest > cfg.OfferTimeout/4 {
							timer.Reset(cfg.OfferTimeout / 4)
						}
					}
					claims[d.From] = max(claims[d.From], min(d.Have, uint32(f.count)))
				case msgQuery:
					if lessAddr(d.From, s.n.self) {
						lowerSeen = time.Now()
					}
				}
			case <-timer.C:
				break wait
			}
		}
		if len(claims) > 0 {
			roots := make([]netip.AddrPort, 0, len(claims))
			for a := range claims {
				roots = append(roots, a)
			}
			slices.SortFunc(roots, func(a, b netip.AddrPort) int {
				if c := cmp.Compare(claims[b], claims[a]); c != 0 {
					return c
				}
				return a.Compare(b)
			})
			s.log.Debug("roots found", zap.Stringers("roots", roots))
			return roots, nil
		}
		if round+1 >= cfg.Offers && (lowerSeen.IsZero() || time.Since(lowerSeen) > 2*cfg.OfferTimeout) {
			break
		}
	}
	return nil, nil
}

// underRoot gets chunks through the tree of root: it asks the root where
// to attach (unless parent is given) and streams from there, again after
// each failed parent, until the file is complete, the root fails, or
// maxJoinAttempts parents failed. Only the context's cause and the
// node's own errors are returned.
func (s *session) underRoot(ctx context.Context, root, parent netip.AddrPort) error {
	f := s.f
	for attempt := 0; attempt < maxJoinAttempts && !f.complete() && s.failures < maxFailures; attempt++ {
		if !parent.IsValid() {
			p, err := s.join(ctx, root, slices.Clone(s.avoidList), false)
			for busy := 0; errors.Is(err, errBusyPeer) && busy < maxBusyRetries; busy++ {
				// A root that many phones join at once turns some away: wait
				// a random while and try again.
				if !sleepCtx(ctx, rand.N(s.n.cfg.OfferTimeout)+time.Millisecond) {
					return context.Cause(ctx)
				}
				p, err = s.join(ctx, root, slices.Clone(s.avoidList), false)
			}
			if err != nil {
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				s.log.Debug("join failed", zap.Stringer("root", root), zap.Error(err))
				s.failures++
				if errors.Is(err, errNotRoot) || errors.Is(err, errTreeFull) {
					s.notRoot[root] = true
				} else {
					s.bad(root)
				}
				return nil
			}
			parent = p
		}
		before := f.next()
		err := s.stream(ctx, parent)
		if f.next() > before {
			s.failures = 0
		} else if err != nil {
			s.failures++
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var fe *fatalError
		if errors.As(err, &fe) {
			return fe.err
		}
		s.log.Info("parent failed", zap.Stringer("parent", parent), zap.Error(err))
		if errors.Is(err, errFull) || errors.Is(err, errUnknown) {
			s.skip(parent)
		} else {
			s.bad(parent)
		}
		if s.notRoot[root] {
			return nil
		}
		parent = netip.AddrPort{}
	}
	return nil
}

// dial connects to a peer from the node's own address.
func (s *session) dial(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Timeout: s.n.cfg.StallTimeout, LocalAddr: &net.TCPAddr{IP: s.n.self.Addr().AsSlice()}}
	c, err := d.DialContext(ctx, "tcp", to.String())
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", to, err)
	}
	return c, nil
}

// join asks root where to attach; asRoot proposes to merge this root's
// tree into root's.
func (s *session) join(ctx context.Context, root netip.AddrPort, avoid []netip.AddrPort, asRoot bool) (netip.AddrPort, error) {
	c, err := s.dial(ctx, root)
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.SetDeadline(time.Now().Add(s.n.cfg.StallTimeout))
	j := joinMsg{Tree: s.f.id, From: s.n.self, Avoid: avoid, Root: asRoot}
	if asRoot {
		j.Have = uint32(s.f.next())
	}
	if _, err := c.Write(j.marshal()); err != nil {
		return netip.AddrPort{}, fmt.Errorf("join %s: %w", root, err)
	}
	typ, p, err := readFrame(c, make([]byte, maxControl))
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			err = fmt.Errorf("%w: %w", errBusyPeer, err)
		}
		return netip.AddrPort{}, fmt.Errorf("join %s: %w", root, err)
	}
	if typ != framePlace {
		return netip.AddrPort{}, fmt.Errorf("join %s: frame %d: %w", root, typ, errProtocol)
	}
	pm, err := parsePlace(p)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("join %s: %w: %w", root, errProtocol, err)
	}
	switch pm.Status {
	case statusNotRoot:
		return netip.AddrPort{}, fmt.Errorf("join %s: %w", root, errNotRoot)
	case statusTreeFull:
		return netip.AddrPort{}, fmt.Errorf("join %s: %w", root, errTreeFull)
	case statusYield:
		if !asRoot {
			return netip.AddrPort{}, fmt.Errorf("join %s: yield to a child: %w", root, errProtocol)
		}
		return netip.AddrPort{}, fmt.Errorf("join %s: %w", root, errYield)
	}
	if pm.Parent == s.n.self {
		return netip.AddrPort{}, fmt.Errorf("join %s: placed under itself: %w", root, errProtocol)
	}
	return pm.Parent, nil
}

// stream gets chunks from parent until the file is complete (nil) or the
// parent fails.
func (s *session) stream(ctx context.Context, parent netip.AddrPort) error {
	f, cfg := s.f, &s.n.cfg
	c, err := s.dial(ctx, parent)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.SetWriteDeadline(time.Now().Add(cfg.StallTimeout))
	if _, err := c.Write((&getMsg{Tree: f.id, From: s.n.self, First: uint32(f.next())}).marshal()); err != nil {
		return fmt.Errorf("get from %s: %w", parent, err)
	}
	r := bufio.NewReaderSize(&deadlineReader{c: c, timeout: cfg.StallTimeout}, 64<<10)
	typ, p, err := readFrame(r, s.buf)
	if err != nil {
		return fmt.Errorf("get from %s: %w", parent, connErr(err))
	}
	if typ != frameAccept {
		return fmt.Errorf("get from %s: frame %d: %w", parent, typ, errProtocol)
	}
	am, err := parseAccept(p)
	if err != nil {
		return fmt.Errorf("get from %s: %w: %w", parent, errProtocol, err)
	}
	switch am.Status {
	case statusUnknown:
		return fmt.Errorf("get from %s: %w", parent, errUnknown)
	case statusFull:
		return fmt.Errorf("get from %s: %w", parent, errFull)
	case statusCycle:
		return fmt.Errorf("get from %s: %w", parent, errCycle)
	}
	if err := s.checkPath(am.Path, parent); err != nil {
		return err
	}
	f.setPath(am.Path)
	s.switchTo(parent.String())
	s.log.Debug("attached", zap.Stringer("parent", parent), zap.Int("first", f.next()))

	lastChunk := time.Now() // the last chunk received
	lastMove := lastChunk   // the last chunk, or the last time the parent reported progress
	parentHave := -1
	for !f.complete() {
		typ, p, err := readFrame(r, s.buf)
		if err != nil {
			return fmt.Errorf("stream from %s: %w", parent, connErr(err))
		}
		switch typ {
		case frameChunk:
			next := f.next()
			if len(p) < 4 || int64(binary.BigEndian.Uint32(p)) != int64(next) || len(p)-4 != f.m.chunkLen(next) {
				return fmt.Errorf("stream from %s: unexpected chunk frame: %w", parent, errProtocol)
			}
			data := p[4:]
			if sha256.Sum256(data) != f.m.Chunks[next] {
				s.st.BadChunks++
				return fmt.Errorf("stream from %s: chunk %d: %w", parent, next, errBadChunk)
			}
			if err := s.commit(next, data); err != nil {
				return err
			}
			s.st.PeerBytes += int64(len(data))
			lastChunk, lastMove = time.Now(), time.Now()
		case frameHave:
			h, err := parseHave(p)
			if err != nil || int(h.Have) > f.count {
				return fmt.Errorf("stream from %s: have %d: %w", parent, h.Have, errProtocol)
			}
			if int(h.Have) > parentHave {
				parentHave = int(h.Have)
				lastMove = time.Now()
			}
			if int(h.Avail) > f.next() && time.Since(lastChunk) > cfg.StallTimeout {
				return fmt.Errorf("stream from %s: holds back chunk %d: %w", parent, f.next(), errStall)
			}
			if time.Since(lastMove) > cfg.ProgressTimeout {
				return fmt.Errorf("stream from %s: no progress for %v: %w", parent, cfg.ProgressTimeout, errStall)
			}
		case framePath:
			path, err := parsePath(p)
			if err != nil {
				return fmt.Errorf("stream from %s: %w: %w", parent, errProtocol, err)
			}
			if err := s.checkPath(path, parent); err != nil {
				return err
			}
			f.setPath(path)
		default:
			return fmt.Errorf("stream from %s: frame %d: %w", parent, typ, errProtocol)
		}
	}
	return nil
}

// checkPath checks a parent's path: the parent last, the node nowhere.
func (s *session) checkPath(path []netip.AddrPort, parent netip.AddrPort) error {
	if len(path) == 0 || path[len(path)-1] != parent {
		return fmt.Errorf("path from %s does not end with it: %w", parent, errProtocol)
	}
	if slices.Contains(path, s.n.self) {
		return fmt.Errorf("path from %s: %w", parent, errCycle)
	}
	return nil
}

// connErr names a read timeout a stall.
func connErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %w", errStall, err)
	}
	return err
}

// demotion is where a root that met a better root attaches.
type demotion struct {
	root, parent netip.AddrPort
}

// fromSource reads the rest of the file from the server. As the root, it
// watches for a better root's claim (see beats) and, when that root
// places it, resigns and returns where to attach.
func (s *session) fromSource(ctx context.Context, asRoot bool) (*demotion, error) {
	f := s.f
	s.switchTo("server")
	var pr *prober
	defer func() { pr.stop() }()
	buf := make([]byte, f.m.ChunkSize)
	fails := 0
	for !f.complete() {
		i := f.next()
		off := int64(i) * f.m.ChunkSize
		rc, err := s.src.Open(ctx, off)
		if err == nil {
			for ; i < f.count; i++ {
				b := buf[:f.m.chunkLen(i)]
				n, rerr := io.ReadFull(rc, b)
				s.st.ServerBytes += int64(n)
				if rerr != nil {
					err = fmt.Errorf("read source at %d: %w", int64(i)*f.m.ChunkSize, rerr)
					break
				}
				if sha256.Sum256(b) != f.m.Chunks[i] {
					s.st.BadChunks++
					err = fmt.Errorf("read source: chunk %d: %w", i, ErrChunkHash)
					break
				}
				if cerr := s.commit(i, b); cerr != nil {
					rc.Close()
					return nil, cerr
				}
				fails = 0
				if asRoot {
					if d := s.checkRivals(ctx, &pr); d != nil {
						rc.Close()
						return d, nil
					}
				}
			}
			rc.Close()
		} else {
			err = fmt.Errorf("open source at %d: %w", off, err)
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if fails++; fails > maxSourceFails {
			return nil, err
		}
		s.log.Warn("source failed", zap.Int("attempt", fails), zap.Error(err))
		if !sleepCtx(ctx, min(s.n.cfg.retryBase<<fails, 3*time.Second)) {
			return nil, context.Cause(ctx)
		}
	}
	return nil, nil
}

// checkRivals, between two chunks a root reads, deals with other roots of
// the tree. Of two roots, the one with the higher address proposes to
// merge (and a root proposes to one that claims the whole file): it sends
// a root's JOIN in the background, and once the other has placed it,
// resigns and returns where to attach. The lower root decides (see
// file.place); when it yields, it resigns, and this returns the root to
// join.
func (s *session) checkRivals(ctx context.Context, pr **prober) *demotion {
	f := s.f
	select {
	case r := <-f.yield:
		delete(s.notRoot, r)
		s.log.Info("joining the root yielded to", zap.Stringer("root", r))
		return &demotion{root: r}
	default:
	}
	if *pr != nil {
		select {
		case r := <-(*pr).done:
			*pr = nil
			if r.err == nil {
				f.resign()
				s.log.Info("merging into another root's tree", zap.Stringer("root", r.root), zap.Stringer("parent", r.parent))
				return &demotion{root: r.root, parent: r.parent}
			}
			s.log.Debug("no merge", zap.Stringer("root", r.root), zap.Error(r.err))
			s.notRoot[r.root] = true
		default:
			return nil
		}
	}
	var best *datagram
	for {
		select {
		case d := <-f.events:
			if d.Type != msgClaim || s.notRoot[d.From] || s.avoid[d.From] {
				continue
			}
			complete := int(d.Have) >= f.count
			if !lessAddr(d.From, s.n.self) && !complete {
				continue
			}
			if best == nil || betterRival(&d, best, f.count) {
				best = &d
			}
			continue
		default:
		}
		break
	}
	if best != nil {
		*pr = s.startProbe(ctx, best.From)
	}
	return nil
}

// betterRival orders rival roots: those with the whole file first, then
// the lowest address.
func betterRival(a, b *datagram, count int) bool {
	ac, bc := int(a.Have) >= count, int(b.Have) >= count
	if ac != bc {
		return ac
	}
	return lessAddr(a.From, b.From)
}

// prober joins a rival root in the background.
type prober struct {
	cancel context.CancelFunc
	done   chan probeResult
}

type probeResult struct {
	root, parent netip.AddrPort
	err          error
}

func (s *session) startProbe(ctx context.Context, root netip.AddrPort) *prober {
	ctx, cancel := context.WithCancel(ctx)
	p := &prober{cancel: cancel, done: make(chan probeResult, 1)}
	avoid := slices.Clone(s.avoidList)
	go func() {
		parent, err := s.join(ctx, root, avoid, true)
		p.done <- probeResult{root: root, parent: parent, err: err}
	}()
	return p
}

// stop ends the probe, if any, and waits for it.
func (p *prober) stop() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}

// verify checks the whole file against Key.SHA256: from the hash taken
// as the chunks were committed in order, else by reading the file back,
// checking every chunk again and reading from the server any that
// changed.
func (s *session) verify(ctx context.Context) error {
	f := s.f
	h := s.whole
	if (h == nil || s.wholeNext != f.count) && f.rdst == nil {
		return &fatalError{fmt.Errorf("verify: the chunks came out of order and the destination cannot be read back")}
	}
	if h == nil || s.wholeNext != f.count {
		h = sha256.New()
		buf := make([]byte, f.m.ChunkSize)
		for i := 0; i < f.count; i++ {
			b := buf[:f.m.chunkLen(i)]
			off := int64(i) * f.m.ChunkSize
			if err := readAtFull(f.rdst, b, off); err != nil {
				return &fatalError{fmt.Errorf("read back chunk %d: %w", i, err)}
			}
			if sha256.Sum256(b) != f.m.Chunks[i] {
				s.st.BadChunks++
				s.log.Warn("chunk changed in the destination; reading it again", zap.Int("chunk", i))
				if err := s.refetch(ctx, i, b); err != nil {
					return err
				}
			}
			h.Write(b)
		}
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != f.m.Key.SHA256 {
		return fmt.Errorf("verify: SHA-256 %s: %w", sum, ErrFileHash)
	}
	return nil
}

// refetch reads chunk i from the server into b and writes it.
func (s *session) refetch(ctx context.Context, i int, b []byte) error {
	off := int64(i) * s.f.m.ChunkSize
	rc, err := s.src.Open(ctx, off)
	if err != nil {
		return fmt.Errorf("open source at %d: %w", off, err)
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, b)
	s.st.ServerBytes += int64(n)
	if err != nil {
		return fmt.Errorf("read source at %d: %w", off, err)
	}
	if sha256.Sum256(b) != s.f.m.Chunks[i] {
		return fmt.Errorf("read source: chunk %d: %w", i, ErrChunkHash)
	}
	if _, err := s.f.dst.WriteAt(b, off); err != nil {
		return fmt.Errorf("write chunk %d: %w", i, err)
	}
	return nil
}
