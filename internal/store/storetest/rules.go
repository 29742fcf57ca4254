package storetest

import (
	"sync"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func testChangeRule(t *testing.T, open Opener) {
	db := open(t)
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(CX600, "4.0.7577.4366", "aa")}); err != nil {
		t.Fatal(err)
	}
	id := deviceupdate.RuleID(CX600)
	gen := db.Generation()
	before, after, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil)
	if err != nil {
		t.Fatal(err)
	}
	if before.PendingVersion.String() != "4.0.7577.4366" || after.ApprovedVersion.String() != "4.0.7577.4366" || !after.PendingVersion.IsZero() {
		t.Fatalf("approve: before %+v after %+v", before, after)
	}
	if db.Generation() == gen {
		t.Error("approving did not advance the generation")
	}
	got, err := db.FindRule(id)
	if err != nil || *got != *after {
		t.Fatalf("stored rule %+v, %v", got, err)
	}
	if _, _, err := db.ChangeRule(id, deviceupdate.RuleReset, nil); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Errorf("reset with nothing pending = %v", err)
	}
	_, _, err = db.ChangeRule("nope", deviceupdate.RuleApprove, nil)
	if deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND || deviceupdate.ErrorMessage(err) != `no rule "nope"; `+"`deviceupdate rule list` shows the rules" {
		t.Errorf("unknown rule = %v", err)
	}
	if _, after, err := db.ChangeRule(id, deviceupdate.RuleRemove, nil); err != nil || after != nil {
		t.Fatalf("remove = %v, %v", after, err)
	}
	if _, err := db.FindRule(id); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("rule after remove: %v", err)
	}
}

// testChangeRuleRace: two admins approve what they both read; one wins and
// the other gets a conflict, and the rule is approved once.
func testChangeRuleRace(t *testing.T, open Opener) {
	db := open(t)
	db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(CX600, "4.0.7577.4100", "aa")})
	id := deviceupdate.RuleID(CX600)
	db.ChangeRule(id, deviceupdate.RuleApprove, nil)
	db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(CX600, "4.0.7577.4366", "bb")})
	seen, _ := db.FindRule(id)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = db.ChangeRule(id, deviceupdate.RuleApprove, seen)
		}()
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
		t.Fatalf("errors %v: want one success and one conflict", errs)
	}
	r, _ := db.FindRule(id)
	if r.ApprovedVersion.String() != "4.0.7577.4366" || r.RestoreVersion.String() != "4.0.7577.4100" {
		t.Errorf("rule after the race = %+v", r)
	}
}
