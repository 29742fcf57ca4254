package ratelimit_test

import (
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/ratelimit"
)

// TestTableFloodAgainstFullTable: new keys arriving at a table full of
// active ones walk it at most once per PruneFullEvery, not once each, so
// a flood of invented sources cannot hold its user's lock with walks.
func TestTableFloodAgainstFullTable(t *testing.T) {
	const max, flood = 100, 10000
	start := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	walked := 0
	idle := func(*int, time.Time) bool { walked++; return false } // every key stays active
	tab := ratelimit.NewTable[int, *int](max, func() *int { return new(int) }, idle, start)
	for k := range max {
		tab.Get(k, start)
	}
	tests := []struct {
		name       string
		at         time.Time
		wantWalked int
	}{
		{"the first flood walks the table once", start, max},
		{"within the second, no walk", start.Add(ratelimit.PruneFullEvery / 2), 0},
		{"a second later, one walk", start.Add(ratelimit.PruneFullEvery), max},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			walked = 0
			overflow := tab.Get(max, tt.at)
			for k := max + 1; k < max+flood; k++ {
				if v := tab.Get(k, tt.at); v != overflow {
					t.Fatalf("key %d got its own value in a full table", k)
				}
			}
			if walked != tt.wantWalked || tab.Len() != max {
				t.Errorf("%d new keys: idle asked %d times, %d keys; want %d and %d", flood, walked, tab.Len(), tt.wantWalked, max)
			}
		})
	}
}
