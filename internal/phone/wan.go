package phone

import (
	"context"
	"io"

	"golang.org/x/time/rate"

	"github.com/deviceupdate/deviceupdate/internal/ratelimit"
)

// NewWANLimiter returns the limiter of a link of bytesPerSecond (> 0),
// such as a site's WAN connection to the server, shared by every phone
// reading through it: together they read at most that rate, after a
// burst of 50 ms' worth (at least 32 KiB).
func NewWANLimiter(bytesPerSecond float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(bytesPerSecond), int(max(bytesPerSecond/20, 32<<10)))
}

// wanPiece is the most one read through the WAN limiter takes at once, so
// that the phones sharing it interleave.
const wanPiece = 64 << 10

// wanReader returns r read through the WAN limiter wan; a nil wan does
// not limit.
func wanReader(ctx context.Context, wan *rate.Limiter, r io.Reader) io.Reader {
	return ratelimit.NewReader(ctx, wan, r, wanPiece)
}
