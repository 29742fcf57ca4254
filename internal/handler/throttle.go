package handler

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/deviceupdate/deviceupdate/internal/ratelimit"
)

// The budget of failed HTTP Basic sign-ins of one source address: a
// source may fail authFailBurst times at once, then once every
// authFailEvery. Past it, its sign-ins are refused without a password
// check, so guessing costs the server no bcrypt. A source also may not
// have more than authMaxInFlight checks running at once (nor more than
// it may still fail), so that one source cannot queue many checks behind
// the few bcrypt slots. In a pool each front end keeps its own budgets
// (its bcrypt slots are its own): N front ends allow N times the failures,
// still bounded (see internal/admin/throttle.go).
const (
	authFailBurst   = 20
	authFailEvery   = 5 * time.Second
	authMaxInFlight = 4
	authMaxSources  = 10000 // sources tracked at once (about 1 MiB)
	// authWait bounds how long a sign-in waits for a bcrypt slot (there
	// are as many as cores) before it is answered 503.
	authWait = 2 * time.Second
)

// admission is the throttle's decision on a sign-in.
type admission int

const (
	admitted     admission = iota
	overFailures           // the source failed too often lately: 401
	overInFlight           // the source has as many checks running as it may: 503
)

// authThrottle keeps a failure budget per source: an IPv4 address, or an
// IPv6 /64 (one host may hold a whole /64). The table is bounded: sources
// whose budget is whole again are pruned, and while it is full of active
// ones, new sources share one budget (ratelimit.Sources).
type authThrottle struct {
	now func() time.Time

	mu      sync.Mutex
	sources *ratelimit.Sources[*authSource]
}

// authSource is one source's budget and its checks running now.
type authSource struct {
	budget   *rate.Limiter
	inFlight int
}

func newAuthThrottle(now func() time.Time) *authThrottle {
	return &authThrottle{now: now, sources: ratelimit.NewSources(authMaxSources, newAuthSource, forgettable, now())}
}

func newAuthSource() *authSource {
	return &authSource{budget: rate.NewLimiter(rate.Every(authFailEvery), authFailBurst)}
}

// forgettable reports whether a source may be forgotten: no check running
// and its budget whole again, so that a new source starting with a whole
// budget changes nothing.
func forgettable(src *authSource, now time.Time) bool {
	return src.inFlight == 0 && src.budget.TokensAt(now) >= authFailBurst
}

// admit decides whether a sign-in from addr may be checked. When it is
// admitted, the caller reports the outcome with done.
func (t *authThrottle) admit(addr netip.Addr) (*authSource, admission) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	src := t.sources.Get(addr, now)
	tokens := src.budget.TokensAt(now)
	switch {
	case tokens < 1:
		return nil, overFailures
	case src.inFlight >= min(authMaxInFlight, int(tokens)):
		return nil, overInFlight
	}
	src.inFlight++
	return src, admitted
}

// done ends a check admitted by admit; a failed one spends the budget.
func (t *authThrottle) done(src *authSource, failed bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	src.inFlight--
	if failed {
		src.budget.AllowN(now, 1)
	}
}
