package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/deviceupdate/deviceupdate/internal/ratelimit"
)

// handleConn answers one incoming connection: a JOIN or a GET.
func (n *Node) handleConn(c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(n.ctx, func() { c.Close() })
	defer stop()
	c.SetDeadline(time.Now().Add(n.cfg.StallTimeout))
	remote := canonAddrPort(c.RemoteAddr().(*net.TCPAddr).AddrPort())
	typ, p, err := readFrame(c, make([]byte, maxControl))
	if err != nil {
		n.log.Debug("bad request", zap.Stringer("peer", remote), zap.Error(err))
		return
	}
	switch typ {
	case frameJoin:
		n.handleJoin(c, remote, p)
	case frameGet:
		n.handleGet(c, remote, p)
	default:
		n.log.Debug("bad request", zap.Stringer("peer", remote), zap.Uint8("frame", typ))
	}
}

// handleJoin answers a JOIN with a place in the tree, if the node is its
// root.
func (n *Node) handleJoin(c net.Conn, remote netip.AddrPort, p []byte) {
	j, err := parseJoin(p)
	if err != nil || j.From.Addr() != remote.Addr() {
		n.log.Debug("bad join", zap.Stringer("peer", remote), zap.Error(err))
		return
	}
	pm := placeMsg{Status: statusNotRoot}
	if f := n.lookup(j.Tree); f != nil {
		pm = f.place(&j)
		f.log.Debug("join", zap.Stringer("peer", j.From), zap.Uint8("status", pm.Status), zap.Stringer("parent", pm.Parent))
	}
	c.Write(pm.marshal())
}

// handleGet serves a child, if the node has the file and a free slot.
func (n *Node) handleGet(c net.Conn, remote netip.AddrPort, p []byte) {
	g, err := parseGet(p)
	if err != nil || g.From.Addr() != remote.Addr() {
		n.log.Debug("bad get", zap.Stringer("peer", remote), zap.Error(err))
		return
	}
	f := n.lookup(g.Tree)
	if f == nil {
		c.Write((&acceptMsg{Status: statusUnknown}).marshal())
		return
	}
	f.serve(c, g)
}

// serve streams the file to a child from chunk g.First on: every chunk as
// soon as the node has it verified (or, store-and-forward, once it has
// them all), with a HAVE heartbeat while it waits and a PATH frame when
// its ancestors change. It returns when the child has every chunk, goes
// away or stalls, or the file stops.
func (f *file) serve(c net.Conn, g getMsg) {
	w := &frameWriter{c: c, timeout: f.n.cfg.StallTimeout}
	status := statusOK
	f.mu.Lock()
	switch {
	case f.ctx.Err() != nil || f.rdst == nil || int(g.First) > f.count || len(f.path) >= maxDepth:
		status = statusUnknown
	case g.From == f.n.self || slices.Contains(f.path, g.From):
		status = statusCycle
	case f.children >= MaxChildren:
		status = statusFull
	}
	var path []netip.AddrPort
	gen := f.pathGen
	if status == statusOK {
		f.children++
		f.kids[g.From]++
		if f.root != nil { // a child the membership may not know: from before, or placed by another root
			f.root.attach(g.From, f.n.self)
		}
		f.n.accepted.Add(1)
		for kids := int32(f.children); ; {
			old := f.n.maxKids.Load()
			if kids <= old || f.n.maxKids.CompareAndSwap(old, kids) {
				break
			}
		}
		f.wg.Add(1)
		path = append(slices.Clone(f.path), f.n.self)
	}
	f.mu.Unlock()
	if status != statusOK {
		w.write((&acceptMsg{Status: status}).marshal())
		return
	}
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		f.children--
		if f.kids[g.From]--; f.kids[g.From] <= 0 {
			delete(f.kids, g.From)
		}
		f.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := w.write((&acceptMsg{Status: statusOK, Path: path}).marshal()); err != nil {
		return
	}
	// The child sends nothing more: a read that returns means it left.
	c.SetReadDeadline(time.Time{})
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		var b [1]byte
		c.Read(b[:])
		cancel()
	}()
	defer func() {
		c.Close()
		<-gone
	}()
	log := f.log.With(zap.Stringer("child", g.From))
	log.Debug("serving child", zap.Uint32("first", g.First))
	if err := f.send(ctx, w, int(g.First), gen); err != nil {
		log.Debug("child dropped", zap.Error(err))
		return
	}
	log.Debug("child served")
}

// send is serve's loop.
func (f *file) send(ctx context.Context, w *frameWriter, next, sentGen int) error {
	tick := time.NewTicker(f.n.cfg.StallTimeout / 4)
	defer tick.Stop()
	var buf []byte
	for next < f.count {
		f.mu.Lock()
		have, changed := f.have, f.changed
		gen, pathChanged := f.pathGen, f.pathChanged
		var path []netip.AddrPort
		if gen != sentGen {
			path = append(slices.Clone(f.path), f.n.self)
		}
		f.mu.Unlock()
		if gen != sentGen {
			if len(path) > maxDepth {
				return fmt.Errorf("path of %d nodes: too deep", len(path))
			}
			if err := w.write(frame(framePath, appendPath(nil, path))); err != nil {
				return err
			}
			sentGen = gen
		}
		avail := f.available(have)
		if next < avail {
			if buf == nil {
				buf = make([]byte, f.m.ChunkSize)
			}
			b := buf[:f.m.chunkLen(next)]
			if err := readAtFull(f.rdst, b, int64(next)*f.m.ChunkSize); err != nil {
				return fmt.Errorf("read back chunk %d: %w", next, err)
			}
			if f.n.cfg.corrupt != nil {
				f.n.cfg.corrupt(next, b)
			}
			if err := w.writeChunk(ctx, next, b, f.n.upload); err != nil {
				return err
			}
			next++
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-pathChanged:
		case <-tick.C:
			if err := w.write((&haveMsg{Have: uint32(have), Avail: uint32(avail)}).marshal()); err != nil {
				return err
			}
		}
	}
	return nil
}

// frameWriter writes frames, each write bounded by a deadline.
type frameWriter struct {
	c       net.Conn
	timeout time.Duration
}

func (w *frameWriter) write(b []byte) error {
	w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := w.c.Write(b)
	return err
}

// writePiece is how much of a chunk goes out in one write.
const writePiece = 64 << 10

// uploadLimiter returns the limiter of Config.UploadRate, nil for none:
// a piece may go out at once after a pause, then each waits for the ones
// before it.
func uploadLimiter(bytesPerSecond int64) *rate.Limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSecond), writePiece)
}

// writeChunk writes a CHUNK frame in pieces, each paced by l.
func (w *frameWriter) writeChunk(ctx context.Context, i int, b []byte, l *rate.Limiter) error {
	h := appendFrameHeader(make([]byte, 0, frameHeaderSize+4), frameChunk, 4+len(b))
	h = binary.BigEndian.AppendUint32(h, uint32(i))
	if err := w.write(h); err != nil {
		return err
	}
	for len(b) > 0 {
		p := b[:min(len(b), writePiece)]
		if err := ratelimit.WaitN(ctx, l, len(p)); err != nil {
			return err
		}
		if err := w.write(p); err != nil {
			return err
		}
		b = b[len(p):]
	}
	return nil
}

// readAtFull fills b from r at off.
func readAtFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// deadlineReader gives every Read on c its own deadline: a peer that sends
// nothing for timeout fails the read.
type deadlineReader struct {
	c       net.Conn
	timeout time.Duration
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	r.c.SetReadDeadline(time.Now().Add(r.timeout))
	return r.c.Read(p)
}
