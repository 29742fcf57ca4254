package handler

import (
	"net/netip"
	"time"

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

// admission is the throttle's decision on a sign-in: admitted,
// overFailures (the source failed too often lately: 401) or overInFlight
// (the source has as many checks running as it may: 503).
type admission = ratelimit.Verdict

const (
	admitted     = ratelimit.Admitted
	overFailures = ratelimit.OverFailures
	overInFlight = ratelimit.OverInFlight
)

// authThrottle keeps a failure budget per source: an IPv4 address, or an
// IPv6 /64 (one host may hold a whole /64), as ratelimit.SourceKey says.
// The table is bounded: sources whose budget is whole again are pruned,
// and while it is full of active ones, new sources share one budget
// (ratelimit.FailureBudgets).
type authThrottle struct {
	sources *ratelimit.FailureBudgets[netip.Addr]
}

func newAuthThrottle(now func() time.Time) *authThrottle {
	limit := ratelimit.FailureLimit{Burst: authFailBurst, Every: authFailEvery, MaxInFlight: authMaxInFlight}
	return &authThrottle{sources: ratelimit.NewFailureBudgets[netip.Addr](authMaxSources, now, limit)}
}

// admit decides whether a sign-in from addr may be checked. When it is
// admitted, the caller reports the outcome with done.
func (t *authThrottle) admit(addr netip.Addr) (ratelimit.Ticket, admission) {
	tk, _, verdict := t.sources.Admit(ratelimit.SourceKey(addr))
	return tk, verdict
}

// done ends a check admitted by admit; a failed one spends the budget.
func (t *authThrottle) done(tk ratelimit.Ticket, failed bool) { t.sources.Done(tk, failed) }
