package pgstore

import (
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
)

// Rule actions and imports raced between two nodes of a pool, and what
// a rollout stored by the inventory's side does to them; the behaviour of
// each method on one node is the behaviour table's (behaviour_test.go).

func mustImport(t *testing.T, db *DB, updates ...*deviceupdate.StoredUpdate) []deviceupdate.ImportedUpdate {
	t.Helper()
	got, err := db.CommitImport(updates)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// Two admins approve what they both read, on two nodes; one wins and the
// other gets a conflict, and the rule is approved once.
func TestChangeRuleRace(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	db := nodes[0]
	id := deviceupdate.RuleID(storetest.CX600)
	mustImport(t, db, storetest.StoredUpdate(storetest.CX600, "4.0.7577.4100", "aa"))
	if _, _, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil); err != nil {
		t.Fatal(err)
	}
	mustImport(t, db, storetest.StoredUpdate(storetest.CX600, "4.0.7577.4366", "bb"))
	seen, err := db.FindRule(id)
	if err != nil {
		t.Fatal(err)
	}

	for round := range 10 { // a race lost once could be luck: run it often
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, node := range nodes {
			wg.Go(func() { _, _, errs[i] = node.ChangeRule(id, deviceupdate.RuleApprove, seen) })
		}
		wg.Wait()
		wins, conflicts := 0, 0
		for _, err := range errs {
			switch deviceupdate.ErrorCode(err) {
			case "":
				wins++
			case deviceupdate.ECONFLICT:
				conflicts++
			}
		}
		if wins != 1 || conflicts != 1 {
			t.Fatalf("round %d: errors %v: want one success and one conflict", round, errs)
		}
		r, _ := db.FindRule(id)
		if r.ApprovedVersion.String() != "4.0.7577.4366" || r.RestoreVersion.String() != "4.0.7577.4100" {
			t.Fatalf("rule after the race = %+v", r)
		}
		// Put the rule back as both admins read it, for the next round.
		if _, _, err := db.ChangeRule(id, deviceupdate.RuleRestore, nil); err != nil {
			t.Fatal(err)
		}
		mustImport(t, db, storetest.StoredUpdate(storetest.CX600, "4.0.7577.4366", "bb"))
		if seen, err = db.FindRule(id); err != nil {
			t.Fatal(err)
		}
	}
}

// A rule with an active rollout refuses every action but reset, which
// aborts the rollout; an import of another version is refused too.
func TestRuleActionsUnderRollout(t *testing.T) {
	db := open(t)
	id := deviceupdate.RuleID(storetest.CX600)
	mustImport(t, db, storetest.StoredUpdate(storetest.CX600, "4.0.7577.4100", "aa"))
	rollout := deviceupdate.Rollout{RuleID: id, RuleKey: storetest.CX600, Version: deviceupdate.MustParseVersion("4.0.7577.4100"), ID: "r1",
		RolloutOptions: deviceupdate.RolloutOptions{Waves: []int{5, 100}}, State: deviceupdate.RolloutRunning}
	err := db.write("rollouts", func(tx pgx.Tx) error { return db.putRollout(tx, rollout) })
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Errorf("approve under a rollout = %v, want ECONFLICT", err)
	}
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{storetest.StoredUpdate(storetest.CX600, "4.0.7577.4200", "bb")}); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Errorf("import under a rollout = %v, want ECONFLICT", err)
	}
	if _, _, err := db.ChangeRule(id, deviceupdate.RuleReset, nil); err != nil {
		t.Fatalf("reset under a rollout = %v", err)
	}
	var got deviceupdate.Rollout
	err = db.view(func(tx pgx.Tx) error {
		_, err := getJSON(db.context(), tx, &got, "SELECT data FROM rollouts WHERE rule_id = $1", id)
		return err
	})
	if err != nil || got.State != deviceupdate.RolloutAborted || got.Reason != "reset" {
		t.Errorf("rollout after reset = %+v, %v; want aborted by reset", got, err)
	}
	var active bool
	err = db.view(func(tx pgx.Tx) error {
		return tx.QueryRow(db.context(), "SELECT active FROM rollouts WHERE rule_id = $1", id).Scan(&active)
	})
	if err != nil || active {
		t.Errorf("rollout's active column after reset = %v, %v; want false", active, err)
	}
	if r, err := db.FindRule(id); err != nil || !r.PendingVersion.IsZero() {
		t.Errorf("rule after reset = %+v, %v; want nothing pending", r, err)
	}
}

// Two nodes importing the same new version at once: both succeed, the
// version is stored once and pending once.
func TestCommitImportRace(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	var wg sync.WaitGroup
	results := make([][]deviceupdate.ImportedUpdate, 2)
	errs := make([]error, 2)
	for i, node := range nodes {
		wg.Go(func() {
			results[i], errs[i] = node.CommitImport([]*deviceupdate.StoredUpdate{storetest.StoredUpdate(storetest.CX600, "4.0.7577.4366", "aa")})
		})
	}
	wg.Wait()
	added := 0
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if results[i][0].Status == deviceupdate.ImportAdded {
			added++
		}
	}
	if added != 1 {
		t.Errorf("%d nodes added the version, want 1: %+v", added, results)
	}
	if updates, err := nodes[1].Updates(); err != nil || len(updates) != 1 {
		t.Errorf("updates = %+v, %v", updates, err)
	}
}
