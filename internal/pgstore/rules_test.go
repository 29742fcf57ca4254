package pgstore

import (
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// The tables of internal/store's rules_test.go and updates_test.go, run
// against PostgreSQL, and the same races between two nodes.

var cx600 = deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}

func storedUpdate(k deviceupdate.RuleKey, version, imageHash string) *deviceupdate.StoredUpdate {
	return &deviceupdate.StoredUpdate{
		RuleKey:       k,
		Version:       deviceupdate.MustParseVersion(version),
		Images:        []deviceupdate.UpdateFile{{Name: "CPE.nbt", Size: 10, SHA256: imageHash}},
		Catalog:       deviceupdate.UpdateFile{Name: "CPE.cat", Size: 5, SHA256: "cc"},
		Description:   deviceupdate.UpdateFile{Name: "CPE.xml", Size: 3, SHA256: "dd"},
		PackageSHA256: "p-" + imageHash,
		ImportedAt:    time.Unix(1700000000, 0).UTC(),
	}
}

func mustImport(t *testing.T, db *DB, updates ...*deviceupdate.StoredUpdate) []deviceupdate.ImportedUpdate {
	t.Helper()
	got, err := db.CommitImport(updates)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestChangeRule(t *testing.T) {
	db := open(t)
	mustImport(t, db, storedUpdate(cx600, "4.0.7577.4366", "aa"))
	id := deviceupdate.RuleID(cx600)
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
	tests := []struct {
		name     string
		id       string
		action   deviceupdate.RuleAction
		wantCode string
		wantMsg  string
	}{
		{"reset with nothing pending", id, deviceupdate.RuleReset, deviceupdate.ECONFLICT, ""},
		{"unknown rule", "nope", deviceupdate.RuleApprove, deviceupdate.ENOTFOUND, `no rule "nope"; ` + "`deviceupdate rule list` shows the rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := db.ChangeRule(tt.id, tt.action, nil)
			if deviceupdate.ErrorCode(err) != tt.wantCode {
				t.Fatalf("ChangeRule = %v, want code %s", err, tt.wantCode)
			}
			if tt.wantMsg != "" && deviceupdate.ErrorMessage(err) != tt.wantMsg {
				t.Errorf("message %q, want %q", deviceupdate.ErrorMessage(err), tt.wantMsg)
			}
		})
	}
	if _, after, err := db.ChangeRule(id, deviceupdate.RuleRemove, nil); err != nil || after != nil {
		t.Fatalf("remove = %v, %v", after, err)
	}
	if _, err := db.FindRule(id); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("rule after remove: %v", err)
	}
}

// Two admins approve what they both read, on two nodes; one wins and the
// other gets a conflict, and the rule is approved once.
func TestChangeRuleRace(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	db := nodes[0]
	id := deviceupdate.RuleID(cx600)
	mustImport(t, db, storedUpdate(cx600, "4.0.7577.4100", "aa"))
	if _, _, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil); err != nil {
		t.Fatal(err)
	}
	mustImport(t, db, storedUpdate(cx600, "4.0.7577.4366", "bb"))
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
		mustImport(t, db, storedUpdate(cx600, "4.0.7577.4366", "bb"))
		if seen, err = db.FindRule(id); err != nil {
			t.Fatal(err)
		}
	}
}

// A rule with an active rollout refuses every action but reset, which
// aborts the rollout; an import of another version is refused too.
func TestRuleActionsUnderRollout(t *testing.T) {
	db := open(t)
	id := deviceupdate.RuleID(cx600)
	mustImport(t, db, storedUpdate(cx600, "4.0.7577.4100", "aa"))
	rollout := deviceupdate.Rollout{RuleID: id, RuleKey: cx600, Version: deviceupdate.MustParseVersion("4.0.7577.4100"), ID: "r1",
		RolloutOptions: deviceupdate.RolloutOptions{Waves: []int{5, 100}}, State: deviceupdate.RolloutRunning}
	err := db.write("rollouts", func(tx pgx.Tx) error { return db.putRollout(tx, rollout) })
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Errorf("approve under a rollout = %v, want ECONFLICT", err)
	}
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{storedUpdate(cx600, "4.0.7577.4200", "bb")}); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
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

func TestCommitImport(t *testing.T) {
	db := open(t)
	cx700 := cx600
	cx700.Model = "CX700"

	got := mustImport(t, db, storedUpdate(cx600, "4.0.7577.4366", "aa"), storedUpdate(cx700, "4.0.7577.4100", "bb"))
	if len(got) != 2 || got[0].Status != deviceupdate.ImportAdded || got[1].Status != deviceupdate.ImportAdded {
		t.Fatalf("first import = %+v", got)
	}
	rules, err := db.Rules()
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 || rules[0].Model != "CX600" || rules[0].PendingVersion.String() != "4.0.7577.4366" || !rules[0].ApprovedVersion.IsZero() {
		t.Fatalf("rules after import = %+v", rules)
	}
	if rules[0].ID != deviceupdate.RuleID(cx600) {
		t.Errorf("rule ID = %s, want %s", rules[0].ID, deviceupdate.RuleID(cx600))
	}

	// The same update again, under a key spelled in another case: nothing changes.
	lower := cx600
	lower.Brand = "polycom"
	again := mustImport(t, db, storedUpdate(lower, "4.0.7577.4366", "aa"))
	if again[0].Status != deviceupdate.ImportUnchanged || again[0].RuleID != rules[0].ID {
		t.Errorf("re-import = %+v, want unchanged on rule %s", again, rules[0].ID)
	}

	// A newer version becomes pending on the same rule.
	mustImport(t, db, storedUpdate(cx600, "4.0.7577.4400", "a2"))
	rules, _ = db.Rules()
	if rules[0].PendingVersion.String() != "4.0.7577.4400" {
		t.Errorf("pending after a newer import = %s", rules[0].PendingVersion)
	}
	if updates, _ := db.Updates(); len(updates) != 3 || updates[0].Version.String() != "4.0.7577.4366" || updates[1].Version.String() != "4.0.7577.4400" {
		t.Errorf("updates = %+v", updates)
	}
}

func TestCommitImportConflictChangesNothing(t *testing.T) {
	db := open(t)
	mustImport(t, db, storedUpdate(cx600, "4.0.7577.4366", "aa"))
	cx700 := cx600
	cx700.Model = "CX700"
	batch := []*deviceupdate.StoredUpdate{
		storedUpdate(cx700, "4.0.7577.4100", "bb"),   // new, but in a refused batch
		storedUpdate(cx600, "4.0.7577.4366", "evil"), // same version, other bytes
	}
	if _, err := db.CheckImport(batch); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Fatalf("CheckImport = %v, want a conflict", err)
	}
	gen := db.Generation()
	if _, err := db.CommitImport(batch); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Fatalf("CommitImport = %v, want a conflict", err)
	}
	if db.Generation() != gen {
		t.Error("a refused import advanced the generation")
	}
	rules, _ := db.Rules()
	if len(rules) != 1 {
		t.Errorf("a refused batch created rules: %+v", rules)
	}
	u, err := db.FindUpdate(cx600, deviceupdate.MustParseVersion("4.0.7577.4366"))
	if err != nil || u.Images[0].SHA256 != "aa" {
		t.Errorf("the stored update changed: %+v %v", u, err)
	}
	if _, err := db.FindUpdate(cx700, deviceupdate.MustParseVersion("4.0.7577.4100")); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("FindUpdate of the refused update = %v", err)
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
			results[i], errs[i] = node.CommitImport([]*deviceupdate.StoredUpdate{storedUpdate(cx600, "4.0.7577.4366", "aa")})
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

// TestCommitImportRestages: a version imported before comes back as the
// pending version when it was reset, restored away, is only the restore
// version, or lost its rule; it changes nothing while it is pending or
// approved; other content under its version stays refused.
func TestCommitImportRestages(t *testing.T) {
	const v1, v2 = "4.0.7577.4100", "4.0.7577.4366"
	id := deviceupdate.RuleID(cx600)
	type step func(t *testing.T, db *DB)
	imp := func(v string) step {
		return func(t *testing.T, db *DB) {
			t.Helper()
			mustImport(t, db, storedUpdate(cx600, v, "hash-"+v))
		}
	}
	act := func(a deviceupdate.RuleAction) step {
		return func(t *testing.T, db *DB) {
			t.Helper()
			if _, _, err := db.ChangeRule(id, a, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name       string
		steps      []step
		again      string // the version imported again
		hash       string // its image's hash; "" for the one stored
		wantStatus string
		wantCode   string
		wantBefore string // approved/pending/restore before, "" for no rule
		wantAfter  string // and after
	}{
		{"reset then re-imported", []step{imp(v1), act("approve"), imp(v2), act("reset")}, v2, "", deviceupdate.ImportRestaged, "",
			v1 + "/-/-", v1 + "/" + v2 + "/-"},
		{"restored away then re-imported", []step{imp(v1), act("approve"), imp(v2), act("approve"), act("restore")}, v2, "", deviceupdate.ImportRestaged, "",
			v1 + "/-/-", v1 + "/" + v2 + "/-"},
		{"the restore version re-imported", []step{imp(v1), act("approve"), imp(v2), act("approve")}, v1, "", deviceupdate.ImportRestaged, "",
			v2 + "/-/" + v1, v2 + "/" + v1 + "/" + v1},
		{"its rule removed then re-imported", []step{imp(v1), act("remove")}, v1, "", deviceupdate.ImportRestaged, "",
			"", "-/" + v1 + "/-"},
		{"the pending version re-imported", []step{imp(v1)}, v1, "", deviceupdate.ImportUnchanged, "",
			"-/" + v1 + "/-", "-/" + v1 + "/-"},
		{"the approved version re-imported", []step{imp(v1), act("approve")}, v1, "", deviceupdate.ImportUnchanged, "",
			v1 + "/-/-", v1 + "/-/-"},
		{"other content under a reset version", []step{imp(v1), act("reset")}, v1, "evil", "", deviceupdate.ECONFLICT,
			"-/-/-", "-/-/-"},
	}
	show := func(r *deviceupdate.Rule) string {
		if r == nil {
			return ""
		}
		return dash(r.ApprovedVersion) + "/" + dash(r.PendingVersion) + "/" + dash(r.RestoreVersion)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := open(t)
			for _, s := range tt.steps {
				s(t, db)
			}
			rule := func() *deviceupdate.Rule {
				r, err := db.FindRule(id)
				if deviceupdate.ErrorCode(err) == deviceupdate.ENOTFOUND {
					return nil
				}
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			if got := show(rule()); got != tt.wantBefore {
				t.Fatalf("before: %s, want %s", got, tt.wantBefore)
			}
			hash := tt.hash
			if hash == "" {
				hash = "hash-" + tt.again
			}
			again := []*deviceupdate.StoredUpdate{storedUpdate(cx600, tt.again, hash)}
			checked, cerr := db.CheckImport(again)
			got, err := db.CommitImport(again)
			if deviceupdate.ErrorCode(err) != tt.wantCode || deviceupdate.ErrorCode(cerr) != tt.wantCode {
				t.Fatalf("CheckImport = %v, CommitImport = %v; want code %q", cerr, err, tt.wantCode)
			}
			if after := show(rule()); after != tt.wantAfter {
				t.Errorf("after: %s, want %s", after, tt.wantAfter)
			}
			if err != nil {
				return
			}
			if got[0].Status != tt.wantStatus || checked[0] != tt.wantStatus {
				t.Errorf("status %q (checked %q), want %q", got[0].Status, checked[0], tt.wantStatus)
			}
			if show(got[0].RuleAfter) != tt.wantAfter {
				t.Errorf("reported rule after = %s, want %s", show(got[0].RuleAfter), tt.wantAfter)
			}
			wantReportedBefore := tt.wantBefore
			if tt.wantStatus == deviceupdate.ImportUnchanged {
				wantReportedBefore = "" // nothing changed: no before
			}
			if show(got[0].RuleBefore) != wantReportedBefore {
				t.Errorf("reported rule before = %s, want %s", show(got[0].RuleBefore), wantReportedBefore)
			}
			u, err := db.FindUpdate(cx600, deviceupdate.MustParseVersion(tt.again))
			if err != nil || u.Images[0].SHA256 != "hash-"+tt.again || !u.ImportedAt.Equal(time.Unix(1700000000, 0)) {
				t.Errorf("stored record after = %+v, %v", u, err)
			}
		})
	}
}

func dash(v deviceupdate.Version) string {
	if v.IsZero() {
		return "-"
	}
	return v.String()
}

// An import's in-progress records last until its commit (or
// EndInProgress); a clear's are written with the records it deletes.
func TestInProgressAndDeleteUnreferenced(t *testing.T) {
	db := open(t)
	v1, v2, v3 := storedUpdate(cx600, "4.0.7577.4100", "a1"), storedUpdate(cx600, "4.0.7577.4200", "a2"), storedUpdate(cx600, "4.0.7577.4300", "a3")
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	if err := db.BeginImport([]*deviceupdate.StoredUpdate{v1, v2}, now); err != nil {
		t.Fatal(err)
	}
	changes, err := db.InProgressChanges()
	if err != nil || len(changes) != 2 || changes[0].Op != updatestore.OpImport || !changes[0].Since.Equal(now) {
		t.Fatalf("in progress after BeginImport = %+v, %v", changes, err)
	}
	mustImport(t, db, v1)
	if changes, _ = db.InProgressChanges(); len(changes) != 1 || changes[0].Version != v2.Version {
		t.Fatalf("in progress after committing v1 = %+v, want v2 alone", changes)
	}
	if err := db.EndInProgress(changes); err != nil {
		t.Fatal(err)
	}
	if changes, _ = db.InProgressChanges(); len(changes) != 0 {
		t.Fatalf("in progress after EndInProgress = %+v", changes)
	}

	// v1 approved, v2 approved (v1 restore), v3 pending then reset: v3
	// is referenced by no rule; then nothing is.
	id := deviceupdate.RuleID(cx600)
	for _, step := range []func() error{
		func() error { _, _, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil); return err },
		func() error { _, err := db.CommitImport([]*deviceupdate.StoredUpdate{v2}); return err },
		func() error { _, _, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil); return err },
		func() error { _, err := db.CommitImport([]*deviceupdate.StoredUpdate{v3}); return err },
		func() error { _, _, err := db.ChangeRule(id, deviceupdate.RuleReset, nil); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		before func()
		want   []string
	}{
		{"the reset version", func() {}, []string{"4.0.7577.4300"}},
		{"nothing more", func() {}, nil},
		{"all, once the rule is gone", func() {
			if _, _, err := db.ChangeRule(id, deviceupdate.RuleRemove, nil); err != nil {
				t.Fatal(err)
			}
		}, []string{"4.0.7577.4100", "4.0.7577.4200"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.before()
			removed, err := db.DeleteUnreferenced()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range removed {
				got = append(got, u.Version.String())
			}
			if len(got) != len(tt.want) || len(got) > 0 && got[0] != tt.want[0] {
				t.Fatalf("deleted %v, want %v", got, tt.want)
			}
			changes, err := db.InProgressChanges()
			if err != nil || len(changes) != len(tt.want) {
				t.Fatalf("in progress = %+v, %v; want a clear of each deleted", changes, err)
			}
			for _, c := range changes {
				if c.Op != updatestore.OpClear {
					t.Errorf("in progress %+v, want op %s", c, updatestore.OpClear)
				}
				if _, err := db.FindUpdate(c.RuleKey, c.Version); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
					t.Errorf("deleted update %s still found: %v", c.Version, err)
				}
			}
			if err := db.EndInProgress(changes); err != nil {
				t.Fatal(err)
			}
		})
	}
}
