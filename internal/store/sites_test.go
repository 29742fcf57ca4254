package store_test

import (
	"net/netip"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func site(t *testing.T, name string, subnets ...string) deviceupdate.Site {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range subnets {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	s, err := deviceupdate.Site{Name: name, Subnets: ps}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSites(t *testing.T) {
	db := MustOpen(t, t.TempDir())
	if _, err := db.PutSite(site(t, "Redmond", "10.1.0.0/16")); err != nil {
		t.Fatal(err)
	}
	gen := db.Generation()
	// Replacing keeps the first spelling and returns the old site.
	before, err := db.PutSite(site(t, "REDMOND", "10.1.0.0/16", "10.2.0.0/16"))
	if err != nil || before == nil || len(before.Subnets) != 1 {
		t.Fatalf("replace: %v, before %+v", err, before)
	}
	if db.Generation() == gen {
		t.Error("a site change did not advance the generation, so polls would not see it")
	}
	if _, err := db.PutSite(site(t, "Dublin", "10.2.0.0/16")); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Errorf("a subnet of another site: %v, want ECONFLICT", err)
	}
	sites, err := db.Sites()
	if err != nil || len(sites) != 1 || sites[0].Name != "Redmond" || len(sites[0].Subnets) != 2 {
		t.Fatalf("sites = %+v, %v", sites, err)
	}

	// A site a test device is limited to stays; its settings go with it.
	if err := db.AddTestDevice(deviceupdate.TestDevice{Name: "lab", Serial: "SN1", Scope: "site:Redmond"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := db.SetConfig("site:Redmond", map[string]string{"PeerFirmwareSharing": "true"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RemoveSite("redmond"); deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT {
		t.Errorf("remove a site a test device uses: %v, want ECONFLICT", err)
	}
	if _, err := db.RemoveTestDevice("lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RemoveSite("redmond"); err != nil {
		t.Fatal(err)
	}
	if _, over, err := db.ConfigOverrides("site:Redmond"); err != nil || len(over) != 0 {
		t.Errorf("site settings after removal: %v, %v", over, err)
	}
	if _, err := db.RemoveSite("redmond"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("remove twice: %v, want ENOTFOUND", err)
	}
}

func TestDeviceConfig(t *testing.T) {
	db := MustOpen(t, t.TempDir())
	const id = "00-04-F2-AA-BB-CC"
	if _, after, err := db.SetDeviceConfig(id, map[string]string{"PeerFirmwareSharing": "true"}); err != nil || after["PeerFirmwareSharing"] != "true" {
		t.Fatalf("set: %v %v", after, err)
	}
	before, after, err := db.SetDeviceConfig(id, map[string]string{"PeerFirmwareSharing": ""})
	if err != nil || before["PeerFirmwareSharing"] != "true" || len(after) != 0 {
		t.Fatalf("remove: %v %v %v", before, after, err)
	}
	all, err := db.DeviceConfigs()
	if err != nil || len(all) != 0 {
		t.Errorf("a device without settings keeps a record: %v %v", all, err)
	}
}
