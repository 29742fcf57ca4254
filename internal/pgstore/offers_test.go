package pgstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/pgtest"
)

// TestOfferRolloutCap: nodes offering at once make, together, the cap of
// new offers a period; a device offered before is offered again on any
// node without counting, even past the cap; the next period has a cap of
// its own; without a cap nothing is counted.
func TestOfferRolloutCap(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	at := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	const max, devices = 5, 40
	offer := func(period int64, from int) map[string]bool {
		var mu sync.Mutex
		got := map[string]bool{}
		var wg sync.WaitGroup
		for i := range devices {
			wg.Go(func() {
				dev := fmt.Sprintf("dev-%02d", from+i)
				ok, err := nodes[i%2].OfferRollout("r1", dev, at, period, max)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				got[dev] = ok
				mu.Unlock()
			})
		}
		wg.Wait()
		return got
	}
	count := func(m map[string]bool) (n int) {
		for _, ok := range m {
			if ok {
				n++
			}
		}
		return n
	}
	first := offer(1, 0)
	if n := count(first); n != max {
		t.Fatalf("two nodes at once made %d new offers in a period, want the cap, %d", n, max)
	}
	for dev, ok := range first {
		for i, node := range nodes {
			if got, err := node.RolloutOffered("r1", dev); err != nil || got != ok {
				t.Errorf("node %d: RolloutOffered(%s) = %v, %v; want %v", i, dev, got, err, ok)
			}
		}
		if !ok {
			continue
		}
		// Offered before: offered again, past the cap, on either node.
		if again, err := nodes[1].OfferRollout("r1", dev, at, 1, max); err != nil || !again {
			t.Errorf("%s, offered before, offered again past the cap: %v, %v", dev, again, err)
		}
	}
	if n := count(offer(2, devices)); n != max {
		t.Errorf("the next period made %d new offers, want %d", n, max)
	}
	if ok, err := nodes[0].OfferRollout("r1", "dev-00", at, 1, max); err != nil || ok != first["dev-00"] {
		t.Errorf("dev-00 again in the full first period: %v, %v", ok, err)
	}
	// Another rollout counts apart, and without a cap counts nothing.
	for i := range 3 * max {
		if ok, err := nodes[i%2].OfferRollout("r2", fmt.Sprintf("dev-%02d", i), at, 1, 0); err != nil || !ok {
			t.Fatalf("an offer without a cap: %v, %v", ok, err)
		}
	}
	var rows int
	if err := pgtest.Conn(t, dsn).QueryRow(context.Background(), "SELECT count(*) FROM rollout_offer_counts WHERE rollout_id = 'r2'").Scan(&rows); err != nil || rows != 0 {
		t.Errorf("offers without a cap left %d counts (%v), want none", rows, err)
	}
}

// TestOfferRolloutSameDevice: two nodes offering one device at once both
// answer it offered, and it counts once.
func TestOfferRolloutSameDevice(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	conn := pgtest.Conn(t, dsn)
	at := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	for period := range int64(20) {
		dev := fmt.Sprintf("dev-%02d", period)
		var wg sync.WaitGroup
		oks := make([]bool, len(nodes))
		for i, node := range nodes {
			wg.Go(func() {
				var err error
				if oks[i], err = node.OfferRollout("r1", dev, at, period, 2); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if !oks[0] || !oks[1] {
			t.Fatalf("period %d: one device offered on two nodes at once: %v", period, oks)
		}
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT offers FROM rollout_offer_counts WHERE rollout_id = 'r1' AND period = $1", period).Scan(&n); err != nil || n != 1 {
			t.Fatalf("period %d: one device offered on two nodes at once counts %d (%v), want 1", period, n, err)
		}
	}
}
