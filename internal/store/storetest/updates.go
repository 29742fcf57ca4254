package storetest

import (
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// CX600 is the rule key of the tests' phone model.
var CX600 = deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}

// StoredUpdate is a stored update of k at version whose image has the
// hash imageHash (any string: the store does not read the files).
func StoredUpdate(k deviceupdate.RuleKey, version, imageHash string) *deviceupdate.StoredUpdate {
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

func testCommitImport(t *testing.T, open Opener) {
	db := open(t)
	cx700 := CX600
	cx700.Model = "CX700"

	got, err := db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(CX600, "4.0.7577.4366", "aa"), StoredUpdate(cx700, "4.0.7577.4100", "bb")})
	if err != nil {
		t.Fatal(err)
	}
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
	if rules[0].ID != deviceupdate.RuleID(CX600) {
		t.Errorf("rule ID = %s, want %s", rules[0].ID, deviceupdate.RuleID(CX600))
	}

	// The same update again, under a key spelled in another case: nothing changes.
	lower := CX600
	lower.Brand = "polycom"
	again, err := db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(lower, "4.0.7577.4366", "aa")})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Status != deviceupdate.ImportUnchanged || again[0].RuleID != rules[0].ID {
		t.Errorf("re-import = %+v, want unchanged on rule %s", again, rules[0].ID)
	}

	// A newer version becomes pending on the same rule.
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(CX600, "4.0.7577.4400", "a2")}); err != nil {
		t.Fatal(err)
	}
	rules, _ = db.Rules()
	if rules[0].PendingVersion.String() != "4.0.7577.4400" {
		t.Errorf("pending after a newer import = %s", rules[0].PendingVersion)
	}
	if updates, _ := db.Updates(); len(updates) != 3 || updates[0].Version.String() != "4.0.7577.4366" || updates[1].Version.String() != "4.0.7577.4400" {
		t.Errorf("updates = %+v", updates)
	}
}

func testCommitImportConflictChangesNothing(t *testing.T, open Opener) {
	db := open(t)
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(CX600, "4.0.7577.4366", "aa")}); err != nil {
		t.Fatal(err)
	}
	cx700 := CX600
	cx700.Model = "CX700"
	batch := []*deviceupdate.StoredUpdate{
		StoredUpdate(cx700, "4.0.7577.4100", "bb"),   // new, but in a refused batch
		StoredUpdate(CX600, "4.0.7577.4366", "evil"), // same version, other bytes
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
	u, err := db.FindUpdate(CX600, deviceupdate.MustParseVersion("4.0.7577.4366"))
	if err != nil || u.Images[0].SHA256 != "aa" {
		t.Errorf("the stored update changed: %+v %v", u, err)
	}
	if _, err := db.FindUpdate(cx700, deviceupdate.MustParseVersion("4.0.7577.4100")); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("FindUpdate of the refused update = %v", err)
	}
}

// testCommitImportRestages: a version imported before comes back as the
// pending version when it was reset, restored away, is only the restore
// version, or lost its rule; it changes nothing while it is pending or
// approved; other content under its version stays refused.
func testCommitImportRestages(t *testing.T, open Opener) {
	const v1, v2 = "4.0.7577.4100", "4.0.7577.4366"
	id := deviceupdate.RuleID(CX600)
	type step func(t *testing.T, db store.Store)
	imp := func(v string) step {
		return func(t *testing.T, db store.Store) {
			t.Helper()
			if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(CX600, v, "hash-"+v)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	act := func(a deviceupdate.RuleAction) step {
		return func(t *testing.T, db store.Store) {
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
			again := []*deviceupdate.StoredUpdate{StoredUpdate(CX600, tt.again, hash)}
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
			u, err := db.FindUpdate(CX600, deviceupdate.MustParseVersion(tt.again))
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

// testImportInProgress: BeginImport notes the folders an import is
// filling; committing its records ends the notes in the same
// transaction; EndInProgress ends those of an import abandoned.
func testImportInProgress(t *testing.T, open Opener) {
	db := open(t)
	cx700 := CX600
	cx700.Model = "CX700"
	a, b := StoredUpdate(CX600, "4.0.7577.4366", "aa"), StoredUpdate(cx700, "4.0.7577.4100", "bb")
	if err := db.BeginImport([]*deviceupdate.StoredUpdate{a, b}, t0); err != nil {
		t.Fatal(err)
	}
	notes, err := db.InProgressChanges()
	if err != nil || len(notes) != 2 {
		t.Fatalf("notes = %+v, %v", notes, err)
	}
	for _, n := range notes {
		if n.Op != updatestore.OpImport || !n.Since.Equal(t0) {
			t.Errorf("note %+v; want an import since %s", n, t0)
		}
	}
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{a}); err != nil {
		t.Fatal(err)
	}
	notes, _ = db.InProgressChanges()
	if len(notes) != 1 || notes[0].RuleKey.Model != "CX700" {
		t.Fatalf("notes after the commit of one = %+v; want the other's", notes)
	}
	if err := db.EndInProgress(notes); err != nil {
		t.Fatal(err)
	}
	if notes, _ := db.InProgressChanges(); len(notes) != 0 {
		t.Errorf("notes after EndInProgress = %+v", notes)
	}
	if _, err := db.FindUpdate(cx700, b.Version); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("the abandoned import's record: %v, want ENOTFOUND", err)
	}
}

// testDeleteUnreferenced: files clear deletes the records of the updates
// no rule names, noting their folders' removal, and keeps the others.
func testDeleteUnreferenced(t *testing.T, open Opener) {
	db := open(t)
	id := deviceupdate.RuleID(CX600)
	for _, v := range []string{"4.0.7577.4000", "4.0.7577.4100", "4.0.7577.4366"} {
		if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{StoredUpdate(CX600, v, "h"+v)}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.ChangeRule(id, deviceupdate.RuleApprove, nil); err != nil {
			t.Fatal(err)
		}
	}
	// 4366 approved, 4100 the restore version, 4000 named by none.
	gen := db.Generation()
	deleted, err := db.DeleteUnreferenced()
	if err != nil || len(deleted) != 1 || deleted[0].Version.String() != "4.0.7577.4000" {
		t.Fatalf("deleted = %+v, %v", deleted, err)
	}
	if db.Generation() == gen {
		t.Error("deleting updates did not advance the generation")
	}
	if updates, _ := db.Updates(); len(updates) != 2 {
		t.Errorf("updates left = %+v", updates)
	}
	notes, err := db.InProgressChanges()
	if err != nil || len(notes) != 1 || notes[0].Op != updatestore.OpClear || notes[0].Version.String() != "4.0.7577.4000" {
		t.Errorf("notes = %+v, %v; want the removal of 4000's folder", notes, err)
	}
	if again, err := db.DeleteUnreferenced(); err != nil || len(again) != 0 {
		t.Errorf("a second clear = %+v, %v", again, err)
	}
	// Once the rule is gone, no update of it is named.
	if err := db.EndInProgress(notes); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ChangeRule(id, deviceupdate.RuleRemove, nil); err != nil {
		t.Fatal(err)
	}
	deleted, err = db.DeleteUnreferenced()
	if err != nil || len(deleted) != 2 || deleted[0].Version.String() != "4.0.7577.4100" || deleted[1].Version.String() != "4.0.7577.4366" {
		t.Errorf("deleted once the rule is gone = %+v, %v; want both", deleted, err)
	}
	if notes, err := db.InProgressChanges(); err != nil || len(notes) != 2 || notes[0].Op != updatestore.OpClear || notes[1].Op != updatestore.OpClear {
		t.Errorf("notes = %+v, %v; want the removal of both folders", notes, err)
	}
}
