package pgstore

import (
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
)

// The tables of internal/store's sites_test.go, run against PostgreSQL,
// with test devices and settings, and their races between two nodes.

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
	db := open(t)
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
	for _, name := range []string{"lab", "lab 2"} {
		if _, err := db.AddTestDevice(deviceupdate.TestDevice{Name: name, Serial: "SN-" + name[len(name)-1:], Scope: "site:Redmond"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := db.SetConfig("site:Redmond", map[string]string{"PeerFirmwareSharing": "true"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = db.RemoveSite("redmond")
	if deviceupdate.ErrorCode(err) != deviceupdate.ECONFLICT || !strings.Contains(err.Error(), `test devices "lab", "lab 2" are limited to it`) {
		t.Errorf("remove a site test devices use: %v, want ECONFLICT naming them", err)
	}
	for _, name := range []string{"lab", "lab 2"} {
		if _, err := db.RemoveTestDevice(name); err != nil {
			t.Fatal(err)
		}
	}
	removed, settings, err := db.RemoveSite("redmond")
	if err != nil || removed.Name != "Redmond" || settings["PeerFirmwareSharing"] != "true" {
		t.Fatalf("remove = %+v, settings %v, %v", removed, settings, err)
	}
	if _, over, err := db.ConfigOverrides("site:Redmond"); err != nil || len(over) != 0 {
		t.Errorf("site settings after removal: %v, %v", over, err)
	}
	if _, _, err := db.RemoveSite("redmond"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("remove twice: %v, want ENOTFOUND", err)
	}
}

func TestDeviceConfig(t *testing.T) {
	db := open(t)
	const id = "00-04-F2-AA-BB-CC"
	if _, after, err := db.SetDeviceConfig(id, map[string]string{"PeerFirmwareSharing": "true"}); err != nil || after["PeerFirmwareSharing"] != "true" {
		t.Fatalf("set: %v %v", after, err)
	}
	if all, err := db.DeviceConfigs(); err != nil || all[id]["PeerFirmwareSharing"] != "true" {
		t.Fatalf("DeviceConfigs = %v, %v", all, err)
	}
	before, after, err := db.SetDeviceConfig(id, map[string]string{"PeerFirmwareSharing": ""})
	if err != nil || before["PeerFirmwareSharing"] != "true" || len(after) != 0 {
		t.Fatalf("remove: %v %v %v", before, after, err)
	}
	all, err := db.DeviceConfigs()
	if err != nil || len(all) != 0 {
		t.Errorf("a device without settings keeps a record: %v %v", all, err)
	}
	if one, err := db.DeviceConfig(id); err != nil || one == nil || len(one) != 0 {
		t.Errorf("DeviceConfig of a device without settings = %v, %v; want an empty map", one, err)
	}
}

// TestUnknownSitesRefused: a test device or a setting for a site that does
// not exist is refused, in the transaction that would write it, and
// changes nothing; a site named in another letter case is the site as it
// was created.
func TestUnknownSitesRefused(t *testing.T) {
	db := open(t)
	if _, err := db.PutSite(site(t, "Redmond", "10.1.0.0/16")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		do        func() (string, error) // returns the scope stored
		wantCode  string
		wantScope string
	}{
		{"test device at an unknown site", func() (string, error) {
			d, err := db.AddTestDevice(deviceupdate.TestDevice{Name: "a", Serial: "SN-A", Scope: "site:Dublin"})
			return d.Scope, err
		}, deviceupdate.ENOTFOUND, ""},
		{"setting at an unknown site", func() (string, error) {
			_, after, err := db.SetConfig("site:Dublin", map[string]string{"PeerFirmwareSharing": "true"})
			return after.Scope, err
		}, deviceupdate.ENOTFOUND, ""},
		{"settings read at an unknown site", func() (string, error) {
			sc, err := db.ScopeConfig("site:Dublin")
			return sc.Scope, err
		}, deviceupdate.ENOTFOUND, ""},
		{"test device at a site in another case", func() (string, error) {
			d, err := db.AddTestDevice(deviceupdate.TestDevice{Name: "b", Serial: "SN-B", Scope: "site:REDMOND"})
			return d.Scope, err
		}, "", "site:Redmond"},
		{"setting at a site in another case", func() (string, error) {
			_, after, err := db.SetConfig("site:redmond", map[string]string{"PeerFirmwareSharing": "true"})
			return after.Scope, err
		}, "", "site:Redmond"},
		{"global setting", func() (string, error) {
			_, after, err := db.SetConfig("global", map[string]string{"PollIntervalSeconds": "3600"})
			return after.Scope, err
		}, "", "global"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen := db.Generation()
			scope, err := tt.do()
			if deviceupdate.ErrorCode(err) != tt.wantCode {
				t.Fatalf("error %v, want code %q", err, tt.wantCode)
			}
			if err != nil {
				if msg := deviceupdate.ErrorMessage(err); !strings.Contains(msg, `no site named "Dublin"`) || !strings.Contains(msg, "deviceupdate site list") {
					t.Errorf("message %q does not name the site and the way to make it", msg)
				}
				if db.Generation() != gen {
					t.Error("a refused change was committed")
				}
				return
			}
			if scope != tt.wantScope {
				t.Errorf("scope %q, want %q", scope, tt.wantScope)
			}
		})
	}
	// What polls read: the site's settings under its own spelling, and
	// nothing stored for the unknown one.
	if _, over, _ := db.ConfigOverrides("site:Redmond"); over["PeerFirmwareSharing"] != "true" {
		t.Errorf("the setting made as site:redmond is not the site's: %v", over)
	}
	if _, over, _ := db.ConfigOverrides("site:Dublin"); len(over) != 0 {
		t.Errorf("settings stored for an unknown site: %v", over)
	}
	if devices, _ := db.TestDevices(); len(devices) != 1 {
		t.Errorf("test devices = %+v, want only b", devices)
	}
}

func TestTestDevices(t *testing.T) {
	db := open(t)
	if _, err := db.AddTestDevice(deviceupdate.TestDevice{Name: "Lab", MAC: "00-04-F2-AA-BB-CC", Scope: "global"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		d        deviceupdate.TestDevice
		wantCode string
		wantMsg  string
	}{
		{"name taken in another case", deviceupdate.TestDevice{Name: "LAB", Serial: "SN-1", Scope: "global"}, deviceupdate.ECONFLICT,
			`a test device named "LAB" exists; remove it first or choose another name`},
		{"MAC taken", deviceupdate.TestDevice{Name: "other", MAC: "00-04-F2-AA-BB-CC", Scope: "global"}, deviceupdate.ECONFLICT,
			`00-04-F2-AA-BB-CC is already test device "Lab"`},
		{"new", deviceupdate.TestDevice{Name: "desk", Serial: "SN-1", Scope: "global"}, "", ""},
		{"serial taken in another case", deviceupdate.TestDevice{Name: "desk 2", Serial: "sn-1", Scope: "global"}, deviceupdate.ECONFLICT,
			`sn-1 is already test device "desk"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.AddTestDevice(tt.d)
			if deviceupdate.ErrorCode(err) != tt.wantCode || tt.wantMsg != "" && deviceupdate.ErrorMessage(err) != tt.wantMsg {
				t.Fatalf("AddTestDevice = %v, want code %q and %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
	devices, err := db.TestDevices()
	if err != nil || len(devices) != 2 || devices[0].Name != "desk" || devices[1].Name != "Lab" {
		t.Fatalf("TestDevices = %+v, %v", devices, err)
	}
	if d, err := db.RemoveTestDevice("lab"); err != nil || d.Name != "Lab" {
		t.Fatalf("RemoveTestDevice = %+v, %v", d, err)
	}
	_, err = db.RemoveTestDevice("lab")
	if deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND || deviceupdate.ErrorMessage(err) != `no test device named "lab"; `+"`deviceupdate testdevice list` shows them" {
		t.Errorf("remove twice = %v", err)
	}
}

// Two admins on two nodes add test devices of one MAC at once: one is
// stored, the other is told which device has it.
func TestAddTestDeviceRace(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	for round := range 5 {
		mac := "00-04-F2-00-00-0" + string(rune('0'+round))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, node := range nodes {
			wg.Go(func() {
				_, errs[i] = node.AddTestDevice(deviceupdate.TestDevice{Name: "phone " + mac + " " + string(rune('a'+i)), MAC: mac, Scope: "global"})
			})
		}
		wg.Wait()
		ok, conflicts := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case deviceupdate.ErrorCode(err) == deviceupdate.ECONFLICT && strings.Contains(err.Error(), "is already test device"):
				conflicts++
			}
		}
		if ok != 1 || conflicts != 1 {
			t.Fatalf("round %d: %v; want one stored and one told the MAC is taken", round, errs)
		}
	}
}

// Settings changed on two nodes at once both hold: neither change is
// lost.
func TestSetConfigRace(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, node := range nodes {
		wg.Go(func() {
			for j := range 10 {
				if _, _, err := node.SetConfig("global", map[string]string{"Setting" + string(rune('A'+i)) + string(rune('0'+j)): "1"}); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	global, _, err := nodes[0].ConfigOverrides("global")
	if err != nil || len(global) != 20 {
		t.Errorf("%d settings after 20 set on two nodes (%v): %v", len(global), err, global)
	}
}
