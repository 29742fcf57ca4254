package storetest

import (
	"net/netip"
	"strings"
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

func testSites(t *testing.T, open Opener) {
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

func testDeviceConfig(t *testing.T, open Opener) {
	db := open(t)
	const id = "00-04-F2-AA-BB-CC"
	if _, after, err := db.SetDeviceConfig(id, map[string]string{"PeerFirmwareSharing": "true"}); err != nil || after["PeerFirmwareSharing"] != "true" {
		t.Fatalf("set: %v %v", after, err)
	}
	if all, err := db.DeviceConfigs(); err != nil || len(all) != 1 || all[id]["PeerFirmwareSharing"] != "true" {
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

// testUnknownSitesRefused: a test device or a setting for a site that does
// not exist is refused, in the transaction that would write it, and
// changes nothing; a site named in another letter case is the site as it
// was created.
func testUnknownSitesRefused(t *testing.T, open Opener) {
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

// testTestDevices: names and identifiers are unique in any case; the list
// is ordered by name; a removal returns the device.
func testTestDevices(t *testing.T, open Opener) {
	db := open(t)
	if _, err := db.PutSite(site(t, "Redmond", "10.1.0.0/16")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []deviceupdate.TestDevice{
		{Name: "zeta", MAC: "00-04-F2-00-00-01"},
		{Name: "Alpha", Serial: "SN-1", Scope: "site:redmond"},
	} {
		if _, err := db.AddTestDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		d        deviceupdate.TestDevice
		wantCode string
		wantMsg  string // "" for any
	}{
		{"a name in another case", deviceupdate.TestDevice{Name: "ALPHA", Serial: "SN-2"}, deviceupdate.ECONFLICT,
			`a test device named "ALPHA" exists; remove it first or choose another name`},
		{"a MAC in use", deviceupdate.TestDevice{Name: "beta", MAC: "00-04-f2-00-00-01"}, deviceupdate.ECONFLICT,
			`00-04-f2-00-00-01 is already test device "zeta"`},
		{"a serial in use", deviceupdate.TestDevice{Name: "beta", Serial: "sn-1"}, deviceupdate.ECONFLICT,
			`sn-1 is already test device "Alpha"`},
		{"an unknown site", deviceupdate.TestDevice{Name: "beta", Serial: "SN-3", Scope: "site:Dublin"}, deviceupdate.ENOTFOUND, ""},
		{"a new one", deviceupdate.TestDevice{Name: "beta", Serial: "SN-4"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen := db.Generation()
			_, err := db.AddTestDevice(tt.d)
			if deviceupdate.ErrorCode(err) != tt.wantCode || tt.wantMsg != "" && deviceupdate.ErrorMessage(err) != tt.wantMsg {
				t.Fatalf("AddTestDevice = %v, want code %q and %q", err, tt.wantCode, tt.wantMsg)
			}
			if changed := db.Generation() != gen; changed != (err == nil) {
				t.Errorf("generation changed %v after error %v", changed, err)
			}
		})
	}
	devices, err := db.TestDevices()
	if err != nil || len(devices) != 3 || devices[0].Name != "Alpha" || devices[1].Name != "beta" || devices[2].Name != "zeta" || devices[0].Scope != "site:Redmond" {
		t.Fatalf("test devices = %+v, %v", devices, err)
	}
	removed, err := db.RemoveTestDevice("ZETA")
	if err != nil || removed.Name != "zeta" || removed.MAC != "00-04-F2-00-00-01" {
		t.Errorf("remove = %+v, %v", removed, err)
	}
	_, err = db.RemoveTestDevice("zeta")
	if deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND || deviceupdate.ErrorMessage(err) != `no test device named "zeta"; `+"`deviceupdate testdevice list` shows them" {
		t.Errorf("remove twice = %v, want ENOTFOUND", err)
	}
}

// testConfig: settings are set and removed per scope; a site's scope
// reads the global overrides beside its own.
func testConfig(t *testing.T, open Opener) {
	db := open(t)
	if _, err := db.PutSite(site(t, "Redmond", "10.1.0.0/16")); err != nil {
		t.Fatal(err)
	}
	gen := db.Generation()
	before, after, err := db.SetConfig(deviceupdate.ScopeGlobal, map[string]string{"PollIntervalSeconds": "3600", "PeerFirmwareSharing": "true"})
	if err != nil || len(before) != 0 || after.Scope != deviceupdate.ScopeGlobal || after.Global["PollIntervalSeconds"] != "3600" || after.Site["PeerFirmwareSharing"] != "true" {
		t.Fatalf("set global = %v, %+v, %v", before, after, err)
	}
	if db.Generation() == gen {
		t.Error("a setting did not advance the generation")
	}
	if _, _, err := db.SetConfig("site:Redmond", map[string]string{"PeerFirmwareSharing": "false"}); err != nil {
		t.Fatal(err)
	}
	before, after, err = db.SetConfig(deviceupdate.ScopeGlobal, map[string]string{"PeerFirmwareSharing": ""})
	if err != nil || before["PeerFirmwareSharing"] != "true" || len(after.Global) != 1 {
		t.Fatalf("remove a global setting = %v, %+v, %v", before, after, err)
	}
	global, own, err := db.ConfigOverrides("site:Redmond")
	if err != nil || len(global) != 1 || global["PollIntervalSeconds"] != "3600" || len(own) != 1 || own["PeerFirmwareSharing"] != "false" {
		t.Errorf("overrides at the site = %v, %v, %v", global, own, err)
	}
	sc, err := db.ScopeConfig("site:REDMOND")
	if err != nil || sc.Scope != "site:Redmond" || sc.Global["PollIntervalSeconds"] != "3600" || sc.Site["PeerFirmwareSharing"] != "false" {
		t.Errorf("ScopeConfig = %+v, %v", sc, err)
	}
}
