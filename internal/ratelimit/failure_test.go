package ratelimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/ratelimit"
)

// budgets is FailureBudgets on a clock the test sets, keeping the
// tickets of checks it has not finished yet.
type budgets struct {
	t    *testing.T
	f    *ratelimit.FailureBudgets[string]
	now  time.Time
	held []ratelimit.Ticket
}

// check asks for a check against keys and wants verdict (and, when
// refused, over); an admitted check ends at once with outcome "failed"
// or "succeeded", or is held for finish when outcome is "held".
func (b *budgets) check(want ratelimit.Verdict, over int, outcome string, keys ...string) {
	b.t.Helper()
	tk, gotOver, got := b.f.Admit(keys...)
	if got != want || (got != ratelimit.Admitted && gotOver != over) {
		b.t.Fatalf("check of %q: %v by key %d, want %v by key %d", keys, got, gotOver, want, over)
	}
	if got != ratelimit.Admitted {
		return
	}
	switch outcome {
	case "held":
		b.held = append(b.held, tk)
	default:
		b.f.Done(tk, outcome == "failed")
	}
}

// fail spends n failures of keys, each admitted.
func (b *budgets) fail(n int, keys ...string) {
	b.t.Helper()
	for range n {
		b.check(ratelimit.Admitted, 0, "failed", keys...)
	}
}

// finish ends the held checks.
func (b *budgets) finish(failed bool) {
	for _, tk := range b.held {
		b.f.Done(tk, failed)
	}
	b.held = nil
}

func (b *budgets) wantLen(n int) {
	b.t.Helper()
	if got := b.f.Len(); got != n {
		b.t.Fatalf("%d keys tracked, want %d", got, n)
	}
}

func TestFailureBudgets(t *testing.T) {
	const (
		ok       = ratelimit.Admitted
		failures = ratelimit.OverFailures
		inFlight = ratelimit.OverInFlight
	)
	one := ratelimit.FailureLimit{Burst: 3, Every: 10 * time.Second, MaxInFlight: 2}
	source := ratelimit.FailureLimit{Burst: 2, Every: 10 * time.Second, MaxInFlight: 2}
	name := ratelimit.FailureLimit{Burst: 3, Every: time.Minute, MaxInFlight: 3}
	tests := []struct {
		name   string
		max    int
		limits []ratelimit.FailureLimit
		steps  func(b *budgets)
	}{
		{"a failure spends one, a success nothing", 10, []ratelimit.FailureLimit{one}, func(b *budgets) {
			b.fail(2, "a")
			for range 5 {
				b.check(ok, 0, "succeeded", "a")
			}
			b.fail(1, "a")
			b.check(failures, 0, "", "a")
			b.check(ok, 0, "failed", "b") // another key's budget is its own
		}},
		{"the budget refills with time", 10, []ratelimit.FailureLimit{one}, func(b *budgets) {
			b.fail(3, "a")
			b.now = b.now.Add(one.Every - time.Nanosecond)
			b.check(failures, 0, "", "a")
			b.now = b.now.Add(time.Nanosecond)
			b.fail(1, "a")
			b.check(failures, 0, "", "a")
		}},
		{"at most MaxInFlight checks running, and no more than failures left", 10, []ratelimit.FailureLimit{one}, func(b *budgets) {
			b.check(ok, 0, "held", "a")
			b.check(ok, 0, "held", "a")
			b.check(inFlight, 0, "", "a")
			b.check(ok, 0, "held", "b")
			b.finish(false)
			b.fail(2, "a")
			b.check(ok, 0, "held", "a")
			b.check(inFlight, 0, "", "a")
			b.finish(true)
			b.check(failures, 0, "", "a")
		}},
		{"a full table shares the overflow budget", 2, []ratelimit.FailureLimit{one}, func(b *budgets) {
			b.fail(1, "a")
			b.fail(1, "b")
			b.fail(3, "c")
			b.check(failures, 0, "", "d")
			b.wantLen(2)
		}},
		{"a full table forgets keys whose budget is whole", 2, []ratelimit.FailureLimit{one}, func(b *budgets) {
			b.fail(3, "a")
			b.check(ok, 0, "held", "b")
			b.check(ok, 0, "held", "b")
			b.fail(3, "z") // spends the overflow budget
			b.now = b.now.Add(3 * one.Every)
			b.fail(3, "c") // a's place: its budget is whole again
			b.check(failures, 0, "", "c")
			b.check(inFlight, 0, "", "b") // kept: its checks are running
			b.wantLen(2)
		}},
		{"pruned every minute", 10, []ratelimit.FailureLimit{one}, func(b *budgets) {
			b.fail(1, "a")
			b.fail(1, "b")
			b.now = b.now.Add(ratelimit.PruneEvery)
			b.fail(1, "c")
			b.wantLen(1)
		}},
		{"two keys: admitted when both budgets admit", 10, []ratelimit.FailureLimit{source, name}, func(b *budgets) {
			b.fail(2, "host", "alice")
			b.check(failures, 0, "", "host", "bob")
			b.check(ok, 0, "failed", "other", "alice")
			b.check(failures, 1, "", "another", "alice")
			b.check(ok, 0, "succeeded", "another", "bob")
		}},
		{"two keys: a refused check holds neither", 10, []ratelimit.FailureLimit{source, name}, func(b *budgets) {
			for i := range 3 {
				b.fail(1, fmt.Sprint("x", i), "alice")
			}
			b.check(ok, 0, "held", "host", "bob")
			b.check(failures, 1, "", "host", "alice")
			b.check(ok, 0, "held", "host", "carol") // the refused check held no room of host's
			b.check(inFlight, 0, "", "host", "dave")
		}},
		{"two keys: each table has its own bound", 2, []ratelimit.FailureLimit{source, name}, func(b *budgets) {
			for i := range 5 {
				if tk, _, v := b.f.Admit(fmt.Sprint("host", i), fmt.Sprint("name", i)); v == ok {
					b.f.Done(tk, true)
				}
			}
			b.wantLen(4)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &budgets{t: t, now: time.Unix(1_700_000_000, 0)}
			b.f = ratelimit.NewFailureBudgets[string](tt.max, func() time.Time { return b.now }, tt.limits...)
			tt.steps(b)
		})
	}
}

// TestFailureBudgetsBounded: 100 000 keys failing at once, none of which
// may be forgotten, leave each table at its bound; every key past it
// shares the overflow budget, spent at once.
func TestFailureBudgetsBounded(t *testing.T) {
	const max, keys = 100, 100_000
	now := time.Unix(1_700_000_000, 0)
	limit := ratelimit.FailureLimit{Burst: 5, Every: time.Hour, MaxInFlight: 5}
	for _, tt := range []struct {
		name   string
		limits []ratelimit.FailureLimit
	}{
		{"one key", []ratelimit.FailureLimit{limit}},
		{"two keys", []ratelimit.FailureLimit{limit, limit}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := ratelimit.NewFailureBudgets[string](max, func() time.Time { return now }, tt.limits...)
			refused := 0
			for i := range keys {
				k := make([]string, len(tt.limits))
				for j := range k {
					k[j] = fmt.Sprintf("%d/%d", j, i)
				}
				tk, _, v := f.Admit(k...)
				if v != ratelimit.Admitted {
					refused++
					continue
				}
				f.Done(tk, true)
			}
			if got, want := f.Len(), max*len(tt.limits); got != want {
				t.Errorf("%d keys tracked, want %d", got, want)
			}
			if want := keys - max - limit.Burst; refused != want {
				t.Errorf("%d checks refused, want %d: the keys past the table share one budget", refused, want)
			}
		})
	}
}
