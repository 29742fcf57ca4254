package store_test

import (
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

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

func TestCommitImport(t *testing.T) {
	db := MustOpen(t, t.TempDir())
	cx700 := cx600
	cx700.Model = "CX700"

	got, err := db.CommitImport([]*deviceupdate.StoredUpdate{storedUpdate(cx600, "4.0.7577.4366", "aa"), storedUpdate(cx700, "4.0.7577.4100", "bb")})
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
	if rules[0].ID != deviceupdate.RuleID(cx600) {
		t.Errorf("rule ID = %s, want %s", rules[0].ID, deviceupdate.RuleID(cx600))
	}

	// The same update again, under a key spelled in another case: nothing changes.
	lower := cx600
	lower.Brand = "polycom"
	again, err := db.CommitImport([]*deviceupdate.StoredUpdate{storedUpdate(lower, "4.0.7577.4366", "aa")})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Status != deviceupdate.ImportUnchanged || again[0].RuleID != rules[0].ID {
		t.Errorf("re-import = %+v, want unchanged on rule %s", again, rules[0].ID)
	}

	// A newer version becomes pending on the same rule.
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{storedUpdate(cx600, "4.0.7577.4400", "a2")}); err != nil {
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

func TestCommitImportConflictChangesNothing(t *testing.T) {
	db := MustOpen(t, t.TempDir())
	if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{storedUpdate(cx600, "4.0.7577.4366", "aa")}); err != nil {
		t.Fatal(err)
	}
	cx700 := cx600
	cx700.Model = "CX700"
	batch := []*deviceupdate.StoredUpdate{
		storedUpdate(cx700, "4.0.7577.4100", "bb"),   // new, but in a refused batch
		storedUpdate(cx600, "4.0.7577.4366", "evil"), // same version, other bytes
	}
	if _, err := db.CheckImport(batch); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Fatalf("CheckImport = %v, want a conflict", err)
	}
	if _, err := db.CommitImport(batch); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Fatalf("CommitImport = %v, want a conflict", err)
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
