package phone

import (
	"context"
	"io"
	"sync"
	"time"
)

// Limiter is a token bucket shared by every reader of one link, such as
// a site's WAN connection to the server: together they read at most
// Rate bytes per second, after a burst of a few tens of milliseconds'
// worth. It schedules by virtual arrival time (GCRA): every read books
// the link for len/Rate seconds after the bookings before it and sleeps
// until its turn, so readers share the link in the order they asked.
// A nil *Limiter does not limit.
type Limiter struct {
	rate      float64       // bytes per second
	tolerance time.Duration // how far ahead of now bookings may run without waiting (the burst)
	piece     int           // the most one Read takes at once

	mu   sync.Mutex
	next time.Time // when the link is free of the bookings made so far
}

// NewLimiter returns a limiter of bytesPerSecond (> 0).
func NewLimiter(bytesPerSecond float64) *Limiter {
	burst := max(bytesPerSecond/20, 32<<10) // 50 ms, at least 32 KiB
	return &Limiter{
		rate:      bytesPerSecond,
		tolerance: time.Duration(burst / bytesPerSecond * float64(time.Second)),
		piece:     int(min(burst, 64<<10)),
	}
}

// Rate returns the limit in bytes per second; 0 for a nil limiter.
func (l *Limiter) Rate() float64 {
	if l == nil {
		return 0
	}
	return l.rate
}

// WaitN books n bytes of the link and waits until they may pass, or ctx
// ends (the booking stays: the bytes were read already).
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	cost := time.Duration(float64(n) / l.rate * float64(time.Second))
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(cost)
	wait := l.next.Sub(now) - l.tolerance
	l.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	return sleep(ctx, wait)
}

// Reader returns r read through the limiter: each Read takes at most a
// small piece and waits for its bytes' turn before it returns them.
func (l *Limiter) Reader(ctx context.Context, r io.Reader) io.Reader {
	if l == nil {
		return r
	}
	return &limitedReader{ctx: ctx, l: l, r: r}
}

type limitedReader struct {
	ctx context.Context
	l   *Limiter
	r   io.Reader
}

func (lr *limitedReader) Read(p []byte) (int, error) {
	if len(p) > lr.l.piece {
		p = p[:lr.l.piece]
	}
	n, err := lr.r.Read(p)
	if werr := lr.l.WaitN(lr.ctx, n); werr != nil && err == nil {
		err = werr
	}
	return n, err
}
