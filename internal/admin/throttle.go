package admin

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
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
	prunePeriod     = time.Minute
)

// signInThrottle holds the two tables. It is safe for concurrent use.
type signInThrottle struct {
	now func() time.Time

	mu      sync.Mutex
	sources budgets
	names   budgets
}

// budgets is a bounded table of failure budgets by key. Keys whose budget
// is whole again and that have no check running are forgotten, every
// prunePeriod and when the table is full: a new key starts whole, so
// forgetting them changes nothing. While the table is full of active
// keys, new ones share the overflow budget.
type budgets struct {
	every     time.Duration
	burst     int
	m         map[string]*budget
	overflow  *budget
	lastPrune time.Time
}

type budget struct {
	failures *rate.Limiter
	inFlight int
}

func newSignInThrottle(now func() time.Time) *signInThrottle {
	t := &signInThrottle{now: now}
	t.sources = budgets{every: sourceFailEvery, burst: sourceFailBurst, lastPrune: now()}
	t.names = budgets{every: nameFailEvery, burst: nameFailBurst, lastPrune: now()}
	return t
}

func (b *budgets) fresh() *budget {
	return &budget{failures: rate.NewLimiter(rate.Every(b.every), b.burst)}
}

// get returns key's budget, making it when it is new.
func (b *budgets) get(key string, now time.Time) *budget {
	if b.m == nil {
		b.m, b.overflow = map[string]*budget{}, b.fresh()
	}
	if now.Sub(b.lastPrune) >= prunePeriod {
		b.prune(now)
	}
	if x := b.m[key]; x != nil {
		return x
	}
	if len(b.m) >= maxThrottled {
		b.prune(now)
	}
	if len(b.m) >= maxThrottled {
		return b.overflow
	}
	x := b.fresh()
	b.m[key] = x
	return x
}

func (b *budgets) prune(now time.Time) {
	for k, x := range b.m {
		if x.inFlight == 0 && x.failures.TokensAt(now) >= float64(b.burst) {
			delete(b.m, k)
		}
	}
	b.lastPrune = now
}

// room reports whether x may have one more check running at now.
func (x *budget) room(now time.Time) bool {
	return x.failures.TokensAt(now)-float64(x.inFlight) >= 1
}

// signInTicket is an admitted sign-in's hold on its two budgets.
type signInTicket struct{ source, name *budget }

// admit decides whether a sign-in of name from source may be checked;
// when it may not, over says which budget is spent ("source" or "name").
// An admitted sign-in reports its outcome with done.
func (t *signInThrottle) admit(source, name string) (tk signInTicket, over string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	tk = signInTicket{t.sources.get(sourceKey(source), now), t.names.get(strings.ToLower(name), now)}
	switch {
	case !tk.source.room(now):
		return signInTicket{}, "source"
	case !tk.name.room(now):
		return signInTicket{}, "name"
	}
	tk.source.inFlight++
	tk.name.inFlight++
	return tk, ""
}

// done ends an admitted check; a failed one spends both budgets.
func (t *signInThrottle) done(tk signInTicket, failed bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, x := range []*budget{tk.source, tk.name} {
		x.inFlight--
		if failed {
			x.failures.AllowN(now, 1)
		}
	}
}

// sourceKey counts an IPv6 address under its /64, which one host may
// hold whole; anything that is not an address counts as itself.
func sourceKey(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.WithZone("").Prefix(64) // never fails for an IPv6 address
		return p.String()
	}
	return a.String()
}
