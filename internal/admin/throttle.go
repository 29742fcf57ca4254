package admin

import (
	"net/netip"
	"strings"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/ratelimit"
)

// Console sign-ins are throttled before their bcrypt check, by two
// failure budgets: one per source address (an IPv4 address or an IPv6
// /64), against one host guessing many names, and one per admin name,
// against many hosts guessing one admin's password. A sign-in goes ahead
// only when both budgets have a failure left beyond the checks already
// running on them; a failed one spends one of each. The budgets are
// smaller than the external phones' (handler/throttle.go): people sign in
// to the console, not fleets of phones behind one address.
//
// In a pool the budgets are each front end's own: N front ends allow a
// source or a name N times the failures, still bounded (3 nodes: 6 guesses
// a minute at one admin's name, with passwords of at least the length
// deviceupdate.ValidatePassword asks). Kept in the pool's database instead, every
// failed sign-in would be a write there, which a guesser could then flood;
// the throttle also guards this node's bcrypt slots, which are its own.
const (
	sourceFailBurst = 10
	sourceFailEvery = 6 * time.Second // 10 a minute once the burst is spent
	nameFailBurst   = 10
	nameFailEvery   = 30 * time.Second // 2 a minute
	maxThrottled    = 10000            // keys per table; past it, new ones share one budget
)

// signInThrottle holds the two budgets, the source's first
// (ratelimit.FailureBudgets). It is safe for concurrent use.
type signInThrottle struct {
	budgets *ratelimit.FailureBudgets[string]
}

// throttledBy names the budgets in their order, for the log.
var throttledBy = [...]string{"source", "name"}

func newSignInThrottle(now func() time.Time) *signInThrottle {
	// Checks in flight are bounded by the failures left alone.
	source := ratelimit.FailureLimit{Burst: sourceFailBurst, Every: sourceFailEvery, MaxInFlight: sourceFailBurst}
	name := ratelimit.FailureLimit{Burst: nameFailBurst, Every: nameFailEvery, MaxInFlight: nameFailBurst}
	return &signInThrottle{ratelimit.NewFailureBudgets[string](maxThrottled, now, source, name)}
}

// admit decides whether a sign-in of name from source may be checked;
// when it may not, over says which budget is spent ("source" or "name").
// An admitted sign-in reports its outcome with done.
func (t *signInThrottle) admit(source, name string) (tk ratelimit.Ticket, over string) {
	tk, i, verdict := t.budgets.Admit(sourceKey(source), strings.ToLower(name))
	if verdict != ratelimit.Admitted {
		return tk, throttledBy[i]
	}
	return tk, ""
}

// done ends an admitted check; a failed one spends both budgets.
func (t *signInThrottle) done(tk ratelimit.Ticket, failed bool) { t.budgets.Done(tk, failed) }

// sourceKey counts an address as ratelimit.SourceKey does (an IPv6
// address under its /64, which one host may hold whole); anything that is
// not an address counts as itself.
func sourceKey(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	return ratelimit.SourceKey(a).String()
}
