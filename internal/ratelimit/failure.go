package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// FailureLimit is a failure budget: a key may fail Burst times at once,
// then once every Every. A key may also have at most MaxInFlight checks
// running at once, and never more than it may still fail, so that checks
// running together cannot overspend the budget.
type FailureLimit struct {
	Burst       int
	Every       time.Duration
	MaxInFlight int
}

// Verdict is the decision on a check.
type Verdict int

const (
	Admitted     Verdict = iota
	OverFailures         // the key has no failure left in its budget
	OverInFlight         // the key has as many checks running as it may
)

func (v Verdict) String() string {
	switch v {
	case Admitted:
		return "admitted"
	case OverFailures:
		return "over its failures"
	case OverInFlight:
		return "over its checks in flight"
	}
	return "unknown verdict"
}

// MaxKeys is the most budgets one check counts against: a console
// sign-in counts against its source's and its name's.
const MaxKeys = 2

// FailureBudgets throttles checks that are costly to make (a password's
// bcrypt check) by failure budgets kept per key, decided before the
// check is made: past its budget, a key's checks are refused unmade, so
// guessing costs the server nothing. It keeps one Table of budgets per
// FailureLimit it is made with, and a check counts against one key in
// each: it is admitted only when every one of its budgets admits it, and
// its outcome then reaches them all. A key whose budget is whole again
// and that has no check running is forgotten; a new key starts whole,
// so that changes nothing.
//
// FailureBudgets is safe for concurrent use: one lock covers its tables,
// so that a check is admitted against all its budgets at once.
type FailureBudgets[K comparable] struct {
	now    func() time.Time
	limits []FailureLimit

	mu     sync.Mutex
	tables []*Table[K, *budget]
}

// budget is one key's failure budget and its checks running now.
type budget struct {
	failures *rate.Limiter
	inFlight int
}

// Ticket is an admitted check's hold on its budgets, given back to Done.
type Ticket struct{ budgets [MaxKeys]*budget }

// NewFailureBudgets returns budgets of the limits (one to MaxKeys of
// them), each table of at most max keys; now tells the time.
func NewFailureBudgets[K comparable](max int, now func() time.Time, limits ...FailureLimit) *FailureBudgets[K] {
	if len(limits) < 1 || len(limits) > MaxKeys {
		panic("ratelimit: NewFailureBudgets takes 1 to MaxKeys limits")
	}
	f := &FailureBudgets[K]{now: now, limits: limits}
	start := now()
	for _, l := range limits {
		fresh := func() *budget { return &budget{failures: rate.NewLimiter(rate.Every(l.Every), l.Burst)} }
		whole := func(b *budget, now time.Time) bool {
			return b.inFlight == 0 && b.failures.TokensAt(now) >= float64(l.Burst)
		}
		f.tables = append(f.tables, NewTable[K](max, fresh, whole, start))
	}
	return f
}

// Admit decides whether a check counted against keys, one per limit in
// the order of NewFailureBudgets, may be made. When it may not, over is
// the index of the first key whose budget refused it; when it may, the
// caller reports the outcome with Done.
func (f *FailureBudgets[K]) Admit(keys ...K) (tk Ticket, over int, v Verdict) {
	if len(keys) != len(f.tables) {
		panic("ratelimit: Admit takes one key per limit")
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, key := range keys {
		tk.budgets[i] = f.tables[i].Get(key, now)
	}
	for i, b := range tk.budgets[:len(keys)] {
		tokens := b.failures.TokensAt(now)
		switch {
		case tokens < 1:
			return Ticket{}, i, OverFailures
		case b.inFlight >= min(f.limits[i].MaxInFlight, int(tokens)):
			return Ticket{}, i, OverInFlight
		}
	}
	for _, b := range tk.budgets[:len(keys)] {
		b.inFlight++
	}
	return tk, 0, Admitted
}

// Done ends a check admitted by Admit. A failed one spends one failure
// of each of its budgets; a successful one gives none back.
func (f *FailureBudgets[K]) Done(tk Ticket, failed bool) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range tk.budgets {
		if b == nil {
			break
		}
		b.inFlight--
		if failed {
			b.failures.AllowN(now, 1)
		}
	}
}

// Len returns the number of keys tracked, in all tables.
func (f *FailureBudgets[K]) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.tables {
		n += t.Len()
	}
	return n
}
