package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

func testRemoveAndPruneDevices(t *testing.T, open Opener) {
	db := open(t)
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	err := db.PutDevices([]deviceupdate.Device{
		{ID: "00-04-F2-00-00-01", LastSeen: now.Add(-40 * day)},                                   // retired
		{ID: "00-04-F2-00-00-02", LastSeen: now.Add(-40 * day), LastLogUpload: now.Add(-1 * day)}, // uploads still
		{ID: "00-04-F2-00-00-03", LastSeen: now.Add(-1 * day)},                                    // in use
		{ID: "SN-OLD", LastLogUpload: now.Add(-50 * day)},                                         // only ever uploaded
		{ID: "00-04-F2-00-00-05", LastSeen: now.Add(-31 * day)},                                   // retired, with settings
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"00-04-F2-00-00-05", "00-04-F2-00-00-03", "SN-NEVER-SEEN"} {
		if _, _, err := db.SetDeviceConfig(id, map[string]string{"PeerFirmwareSharing": "false"}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func() (out []string) {
		all, err := db.Devices()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range all {
			out = append(out, d.ID)
		}
		return out
	}

	dry, err := db.PruneDevices(now.Add(-30*day), true)
	if err != nil || dry.Count != 3 || len(dry.Devices) != 3 || dry.Settings != 1 || !dry.DryRun {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	if got := ids(); len(got) != 5 {
		t.Fatalf("a dry run removed devices: %v", got)
	}
	res, err := db.PruneDevices(now.Add(-30*day), false)
	if err != nil || res.Count != 3 || res.Settings != 1 || !res.NotSeenSince.Equal(now.Add(-30*day)) {
		t.Fatalf("prune = %+v, %v", res, err)
	}
	if got := ids(); len(got) != 2 || got[0] != "00-04-F2-00-00-02" || got[1] != "00-04-F2-00-00-03" {
		t.Errorf("after prune: %v", got)
	}
	if m, _ := db.DeviceConfig("00-04-F2-00-00-05"); len(m) != 0 {
		t.Errorf("a pruned device kept its settings: %v", m)
	}

	tests := []struct {
		name         string
		id           string
		wantCode     string
		wantDevice   bool
		wantSettings bool
	}{
		{"a device with its settings", "00-04-F2-00-00-03", "", true, true},
		{"a device without settings", "00-04-F2-00-00-02", "", true, false},
		{"settings of a device never seen", "SN-NEVER-SEEN", "", false, true},
		{"a device removed before", "00-04-F2-00-00-03", deviceupdate.ENOTFOUND, false, false},
		{"an unknown device", "00-04-F2-99-99-99", deviceupdate.ENOTFOUND, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen := db.Generation()
			removed, err := db.RemoveDevice(tt.id)
			if deviceupdate.ErrorCode(err) != tt.wantCode {
				t.Fatalf("RemoveDevice = %v, want code %q", err, tt.wantCode)
			}
			if (removed.Device != nil) != tt.wantDevice || (len(removed.Settings) > 0) != tt.wantSettings {
				t.Errorf("removed %+v", removed)
			}
			if err != nil {
				if db.Generation() != gen {
					t.Error("a refused removal was committed")
				}
				return
			}
			if m, _ := db.DeviceConfig(tt.id); len(m) != 0 {
				t.Errorf("settings left: %v", m)
			}
		})
	}
	if got := ids(); len(got) != 0 {
		t.Errorf("devices left: %v", got)
	}
}

// FakeDevices returns n polls of distinct devices, from the MAC address
// 00-04-F2-00-00-00 on, each running version.
func FakeDevices(from, n int, version string) []deviceupdate.Device {
	out := make([]deviceupdate.Device, n)
	for i := range out {
		mac := fmt.Sprintf("00-04-F2-%02X-%02X-%02X", (from+i)>>16&0xff, (from+i)>>8&0xff, (from+i)&0xff)
		out[i] = deviceupdate.Device{ID: mac, MAC: mac, Model: "CX600", LastSeen: time.Unix(1_800_000_000, 0).UTC(), Polls: 1,
			Modules: []deviceupdate.Module{{UpdateType: "CPE", Version: deviceupdate.MustParseVersion(version)}}}
	}
	return out
}

// testDeviceCap: past --max-devices a new device is not recorded and is
// counted as refused, while devices already recorded keep updating;
// removing devices makes room again.
func testDeviceCap(t *testing.T, open Opener) {
	db := open(t)
	db.LimitDevices(1000, nil)
	for from := 0; from < 1500; from += 300 { // five flushes of 300 new devices
		if err := db.PutDevices(FakeDevices(from, 300, "4.0.7577.4100")); err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1000 || db.DeviceCount() != 1000 || db.RefusedDevices() != 500 {
		t.Fatalf("%d devices recorded, count %d, %d refused; want 1000, 1000, 500", len(all), db.DeviceCount(), db.RefusedDevices())
	}
	if all[999].ID != "00-04-F2-00-03-E7" {
		t.Errorf("the last device recorded is %s, want the 1000th", all[999].ID)
	}

	// A full inventory still updates the devices it holds, and refuses
	// the new ones of the same batch.
	batch := append(FakeDevices(10, 5, "4.0.7577.4366"), FakeDevices(5000, 5, "4.0.7577.4366")...)
	if err := db.PutDevices(batch); err != nil {
		t.Fatal(err)
	}
	page, _, err := db.DevicesPage("00-04-F2-00-00-09", 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range page {
		if d.Modules[0].Version.String() != "4.0.7577.4366" || d.Polls != 2 {
			t.Errorf("known device %s not updated: %+v", d.ID, d)
		}
	}
	if db.DeviceCount() != 1000 || db.RefusedDevices() != 505 {
		t.Errorf("count %d, refused %d; want 1000, 505", db.DeviceCount(), db.RefusedDevices())
	}

	// Forgetting devices makes room for as many new ones.
	if _, err := db.RemoveDevice("00-04-F2-00-00-00"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PruneDevices(time.Unix(1_800_000_001, 0), false); err != nil { // every device
		t.Fatal(err)
	}
	if db.DeviceCount() != 0 {
		t.Fatalf("count after prune %d", db.DeviceCount())
	}
	if err := db.PutDevices(FakeDevices(20000, 1200, "4.0.7577.4100")); err != nil {
		t.Fatal(err)
	}
	if db.DeviceCount() != 1000 || db.RefusedDevices() != 705 {
		t.Errorf("count %d, refused %d; want 1000, 705", db.DeviceCount(), db.RefusedDevices())
	}
}

// testDevicesPage pages through 1200 devices 100 at a time: every device
// once, in ID order, and a filter applied within the pages.
func testDevicesPage(t *testing.T, open Opener) {
	db := open(t)
	if err := db.PutDevices(FakeDevices(0, 1200, "4.0.7577.4100")); err != nil {
		t.Fatal(err)
	}
	var got []string
	after, pages := "", 0
	for {
		page, next, err := db.DevicesPage(after, 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, d := range page {
			got = append(got, d.ID)
		}
		if next == "" {
			break
		}
		if len(page) != 100 || next != page[len(page)-1].ID {
			t.Fatalf("page %d: %d devices, next %q", pages, len(page), next)
		}
		after = next
	}
	if len(got) != 1200 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != 1200 {
		t.Fatalf("%d devices in %d pages, sorted %v", len(got), pages, slices.IsSorted(got))
	}
	if pages != 12 {
		t.Errorf("%d pages, want 12", pages)
	}

	odd := func(d deviceupdate.Device) bool { return d.ID[len(d.ID)-1]%2 == 1 }
	page, next, err := db.DevicesPage("00-04-F2-00-04-00", 1000, odd)
	if err != nil || next != "" || len(page) != 88 || page[0].ID != "00-04-F2-00-04-01" {
		t.Errorf("filtered page: %d devices from %v, next %q, %v", len(page), page[0].ID, next, err)
	}
}

// testPutDevices: a batch merges into what is stored (polls counted, the
// latest poll's fields kept); the fleet is counted per rule key and
// version; Device reads one record.
func testPutDevices(t *testing.T, open Opener) {
	db := open(t)
	v1, v2 := deviceupdate.MustParseVersion("4.0.7577.4100"), deviceupdate.MustParseVersion("4.0.7577.4366")
	if err := db.PutDevices([]deviceupdate.Device{PollOf("00-04-F2-00-00-01", v1, v2, t0), PollOf("00-04-F2-00-00-02", v1, v2, t0)}); err != nil {
		t.Fatal(err)
	}
	gen := db.Generation()
	if err := db.PutDevices([]deviceupdate.Device{PollOf("00-04-F2-00-00-01", v2, deviceupdate.Version{}, t0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if db.Generation() != gen {
		t.Error("an inventory write advanced the generation: every poll would rebuild what polls read")
	}
	d, err := db.Device("00-04-F2-00-00-01")
	if err != nil || d.Polls != 2 || d.Modules[0].Version != v2 || !d.LastSeen.Equal(t0.Add(time.Hour)) || d.Model != "CX600" {
		t.Fatalf("merged device = %+v, %v", d, err)
	}
	if _, err := db.Device("00-04-F2-99-99-99"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("an unknown device = %v, want ENOTFOUND", err)
	}
	n, models, err := db.FleetCounts()
	if err != nil || n != 2 || db.DeviceCount() != 2 || len(models) != 1 {
		t.Fatalf("fleet = %d, %+v, %v; count %d", n, models, err, db.DeviceCount())
	}
	counts := map[deviceupdate.Version]int{}
	for _, vc := range models[0].Versions {
		counts[vc.Version] = vc.Devices
	}
	if !strings.EqualFold(deviceupdate.RuleID(models[0].RuleKey), deviceupdate.RuleID(CX600)) || counts[v1] != 1 || counts[v2] != 1 {
		t.Errorf("fleet counts = %+v; want one device on each version of %s", models[0], deviceupdate.RuleID(CX600))
	}
}
