package ratelimit

import "time"

// PruneEvery is how often a Table forgets the keys it may.
const PruneEvery = time.Minute

// PruneFullEvery is how often a full table looks for keys to forget when
// a new key arrives. A prune walks the whole table under its user's lock:
// if every new key did it, a flood of new keys (one per IPv6 /64, cheap
// to have) against a table full of active ones would cost a full walk
// each, about 0.5 ms at 10,000 keys, and so hold the lock most of the
// time. Between prunes, new keys share the overflow value, as they do
// when a prune frees nothing.
const PruneFullEvery = time.Second

// Table keeps a value per key, for at most max keys. Keys whose value
// idle says may be forgotten are pruned every PruneEvery, and when the
// table is full (at most every PruneFullEvery); while it is full of
// active keys, new ones share one overflow value. Forgetting a key must change nothing: a new one starts
// with a fresh value, as it was.
//
// Like a map, a Table is not safe for concurrent use: its user guards
// it, and the values Get returns, with a lock of its own.
type Table[K comparable, V any] struct {
	max       int
	fresh     func() V
	idle      func(v V, now time.Time) bool
	m         map[K]V
	overflow  V
	lastPrune time.Time
	// lastFull is when a new key last found the table full and pruned it.
	lastFull time.Time
}

// NewTable returns an empty table of at most max keys, whose values fresh
// makes and idle says when they may be forgotten, pruned first at now
// plus PruneEvery.
func NewTable[K comparable, V any](max int, fresh func() V, idle func(v V, now time.Time) bool, now time.Time) *Table[K, V] {
	return &Table[K, V]{max: max, fresh: fresh, idle: idle, m: make(map[K]V), overflow: fresh(), lastPrune: now}
}

// Get returns key's value, adding a fresh one, or the shared overflow
// value when the table is full of keys that may not be forgotten.
func (t *Table[K, V]) Get(key K, now time.Time) V {
	if now.Sub(t.lastPrune) >= PruneEvery {
		t.prune(now)
	}
	if v, ok := t.m[key]; ok {
		return v
	}
	if len(t.m) >= t.max && (t.lastFull.IsZero() || now.Sub(t.lastFull) >= PruneFullEvery) {
		t.prune(now)
		t.lastFull = now
	}
	if len(t.m) >= t.max {
		return t.overflow
	}
	v := t.fresh()
	t.m[key] = v
	return v
}

// Len returns the number of keys tracked.
func (t *Table[K, V]) Len() int { return len(t.m) }

func (t *Table[K, V]) prune(now time.Time) {
	for k, v := range t.m {
		if t.idle(v, now) {
			delete(t.m, k)
		}
	}
	t.lastPrune = now
}
