package store_test

import (
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

func TestRemoveAndPruneDevices(t *testing.T) {
	db := MustOpen(t, t.TempDir())
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
