package poll_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
	"github.com/deviceupdate/deviceupdate/internal/pgstore"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
	"github.com/deviceupdate/deviceupdate/internal/poll"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// poolNode is a poll service of one front end of a pool: its own
// connection to the pool's database, its own memory of offers.
func poolNode(t *testing.T, dsn string, now *time.Time) (*pgstore.DB, *poll.Service) {
	t.Helper()
	db, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	log, err := audit.OpenRequestLog(data, "test")
	if err != nil {
		t.Fatal(err)
	}
	rec := inventory.New(db, log, zap.NewNop(), time.Hour)
	t.Cleanup(func() {
		rec.Close()
		db.Close()
	})
	return db, &poll.Service{DB: db, Recorder: rec, Files: updatestore.New(data, zap.NewNop()), Now: func() time.Time { return *now }, Offers: db}
}

// startRollout stores CX600's rule approved at 4.0.7577.4100 and starts a
// rollout of 4.0.7577.4366 with o at at.
func startRollout(tb testing.TB, db store.Store, o deviceupdate.RolloutOptions, at time.Time) deviceupdate.Rollout {
	tb.Helper()
	id := deviceupdate.RuleID(storetest.CX600)
	for _, ver := range []string{"4.0.7577.4100", "4.0.7577.4366"} {
		if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{storetest.StoredUpdate(storetest.CX600, ver, ver)}); err != nil {
			tb.Fatal(err)
		}
		if ver == "4.0.7577.4100" {
			if _, _, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil); err != nil {
				tb.Fatal(err)
			}
		}
	}
	r, err := db.StartRollout(id, o, "rollout-"+tb.Name(), at)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// TestPollRolloutPool: two front ends of a pool decide one staged
// rollout: the pool makes the cap of new offers, not each node; a device
// one node offered keeps the version on the other once the window has
// closed; and a node answers the devices it knows offered, those outside
// the wave and those of no rollout without its database (closed here),
// which only a member it never offered, in a closed window or past the
// cap, needs (past the cap, once an hour).
func TestPollRolloutPool(t *testing.T) {
	dsn := pgtest.Start(t)
	now := time.Date(2026, 12, 5, 21, 0, 0, 0, time.UTC)
	dbA, a := poolNode(t, dsn, &now)
	dbB, b := poolNode(t, dsn, &now)
	window, err := deviceupdate.ParseWindow("20:00-22:00")
	if err != nil {
		t.Fatal(err)
	}
	r := startRollout(t, dbA, deviceupdate.RolloutOptions{Waves: []int{50, 100}, Soak: time.Hour, MaxFailures: 0.1, Window: window, MaxPerHour: 3}, now)
	ask := func(s *poll.Service, mac string) (string, error) {
		ans, err := s.Poll(context.Background(), request("CX600", mac, "", "4.0.7577.4100"), outside)
		if err != nil {
			return "", err
		}
		return offered(ans), nil
	}
	nodes := []*poll.Service{a, b}
	offeredBy := map[string]int{}
	var members, others []string
	for i := range 24 {
		mac := fmt.Sprintf("00-04-F2-00-70-%02X", i)
		if !r.Member(mac) {
			others = append(others, mac)
		} else {
			members = append(members, mac)
		}
		got, err := ask(nodes[i%2], mac)
		if err != nil {
			t.Fatal(err)
		}
		if got == "4.0.7577.4366" {
			offeredBy[mac] = i % 2
		}
	}
	if len(members) <= 6 || len(others) == 0 {
		t.Fatalf("%d members, %d others: the test needs more of each", len(members), len(others))
	}
	if len(offeredBy) != 3 {
		t.Errorf("the pool offered the version to %d devices of %d members; want the cap, 3", len(offeredBy), len(members))
	}

	// A third node learns that the pool made its cap from its first new
	// offer, refused; a member it then looks up, never offered, it need
	// not look up again this hour.
	dbC, c := poolNode(t, dsn, &now)
	var waiting []string
	for _, mac := range members {
		if _, ok := offeredBy[mac]; !ok {
			waiting = append(waiting, mac)
		}
	}
	for _, mac := range waiting[:2] {
		if got, err := ask(c, mac); err != nil || got != "" {
			t.Fatalf("%s, never offered, polls node 2 past the pool's cap: %q, %v", mac, got, err)
		}
	}
	dbC.Close()
	if got, err := ask(c, waiting[1]); err != nil || got != "" {
		t.Errorf("%s, found never offered past the cap, polls node 2 again without its database: %q, %v", waiting[1], got, err)
	}
	if _, err := ask(c, waiting[2]); err == nil {
		t.Errorf("%s, a member node 2 never offered nor looked up, was answered without its database", waiting[2])
	}

	now = now.Add(90 * time.Minute) // the window is closed, the cap's hour a new one
	for mac, by := range offeredBy {
		if got, err := ask(nodes[1-by], mac); err != nil || got != "4.0.7577.4366" {
			t.Errorf("%s, offered by node %d, polls node %d after the window: offered %q, %v", mac, by, 1-by, got, err)
		}
	}

	dbB.Close()
	for mac := range offeredBy {
		if got, err := ask(b, mac); err != nil || got != "4.0.7577.4366" {
			t.Errorf("%s, known offered, polls node 1 without its database: %q, %v", mac, got, err)
		}
	}
	for _, mac := range others {
		if got, err := ask(b, mac); err != nil || got != "" {
			t.Errorf("%s, outside the wave, polls node 1 without its database: %q, %v", mac, got, err)
		}
	}
	if ans, err := b.Poll(context.Background(), request("CX700", members[0], "", "1.0.0.1"), outside); err != nil || ans.Update != nil {
		t.Errorf("a device of no rule polls node 1 without its database: %v, %v", ans, err)
	}
	if _, err := ask(b, waiting[0]); err == nil {
		t.Errorf("%s, a member node 1 never offered the version, was answered without looking in the pool's database", waiting[0])
	}
}
