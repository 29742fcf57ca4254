package ratelimit

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/time/rate"
)

// WaitN books n bytes (tokens) of l and waits until they may pass. When
// ctx ends, at once or while it waits, it returns ctx.Err(); a booking
// made stays, since its bytes were read already. A nil l does not limit.
// n may not be more than l's burst.
//
// It is not rate.Limiter.WaitN, which refuses at once a wait that would
// pass ctx's deadline, with an error of its own, and cancels the booking:
// a reader cut off by its deadline should report the deadline, after
// reading what the link let through until then.
func WaitN(ctx context.Context, l *rate.Limiter, n int) error {
	if err := ctx.Err(); err != nil || l == nil || n <= 0 {
		return err
	}
	r := l.ReserveN(time.Now(), n)
	if !r.OK() {
		return fmt.Errorf("ratelimit: %d bytes at once is more than the burst of %d", n, l.Burst())
	}
	d := r.Delay()
	if d <= 0 {
		return nil
	}
	select {
	case <-time.After(d): // collected once unreachable, fired or not (Go 1.23)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewReader returns r read through l, which counts bytes: each Read takes
// at most piece bytes (and no more than l's burst), so that readers
// sharing l interleave finely, and waits for its bytes' turn (WaitN)
// before it returns them. A nil l does not limit: r is returned as is.
func NewReader(ctx context.Context, l *rate.Limiter, r io.Reader, piece int) io.Reader {
	if l == nil {
		return r
	}
	return &reader{ctx: ctx, l: l, r: r, piece: max(1, min(piece, l.Burst()))}
}

type reader struct {
	ctx   context.Context
	l     *rate.Limiter
	r     io.Reader
	piece int
}

func (lr *reader) Read(p []byte) (int, error) {
	if len(p) > lr.piece {
		p = p[:lr.piece]
	}
	n, err := lr.r.Read(p)
	if werr := WaitN(lr.ctx, lr.l, n); werr != nil && err == nil {
		err = werr
	}
	return n, err
}
