package peer

import (
	"context"
	"io"
	"sync"
	"time"
)

// limiter paces bytes to a rate shared by all its users: each reserves a
// slot after the previous ones and waits for it to start.
type limiter struct {
	rate float64 // bytes per second
	mu   sync.Mutex
	next time.Time
}

func newLimiter(bytesPerSecond int64) *limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	return &limiter{rate: float64(bytesPerSecond)}
}

// wait reserves n bytes and sleeps until their slot; a nil limiter never
// waits.
func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	start := l.next
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	l.mu.Unlock()
	d := time.Until(start)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RateLimit returns a Source that reads src at most bytesPerSecond in
// total, over all the readers it opens together: a site's WAN link, for
// benchmarks and simulations. A rate of zero or less means no limit.
func RateLimit(src Source, bytesPerSecond int64) Source {
	if bytesPerSecond <= 0 {
		return src
	}
	return &limitedSource{src: src, l: newLimiter(bytesPerSecond)}
}

type limitedSource struct {
	src Source
	l   *limiter
}

func (s *limitedSource) Open(ctx context.Context, offset int64) (io.ReadCloser, error) {
	rc, err := s.src.Open(ctx, offset)
	if err != nil {
		return nil, err
	}
	return &limitedReader{ctx: ctx, rc: rc, l: s.l}, nil
}

type limitedReader struct {
	ctx context.Context
	rc  io.ReadCloser
	l   *limiter
}

// limitPiece is the most a rate-limited read returns at once, so that
// readers sharing a limiter interleave finely.
const limitPiece = 32 << 10

func (r *limitedReader) Read(p []byte) (int, error) {
	if len(p) > limitPiece {
		p = p[:limitPiece]
	}
	n, err := r.rc.Read(p)
	if werr := r.l.wait(r.ctx, n); werr != nil && err == nil {
		err = werr
	}
	return n, err
}

func (r *limitedReader) Close() error { return r.rc.Close() }
