package admin_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
)

// newInventoryService returns a service whose polls wait in a real
// inventory batch that only an explicit flush writes out.
func newInventoryService(t *testing.T, now time.Time) (*admin.Service, *inventory.Recorder) {
	t.Helper()
	s, dir := openService(t)
	reqLog, err := audit.OpenRequestLog(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	rec := inventory.New(s.DB, reqLog, zap.NewNop(), time.Hour)
	t.Cleanup(func() { rec.Close() }) // runs before the store closes
	s.Inventory, s.Now = rec, func() time.Time { return now }
	return s, rec
}

func poll(rec *inventory.Recorder, mac string, at time.Time) {
	rec.Record(deviceupdate.PollRequest{DeviceType: "UCPhone", MAC: mac, Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU"}, "10.0.0.1", at, nil, 0)
}

func deviceIDs(t *testing.T, s *admin.Service) []string {
	t.Helper()
	all, err := s.Devices(context.Background(), deviceupdate.DeviceFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range all.Devices {
		out = append(out, d.ID)
	}
	return out
}

// TestRemoveDeviceStaysRemoved: a device whose poll still waits in the
// inventory batch is removed for good; only a later poll brings it back.
func TestRemoveDeviceStaysRemoved(t *testing.T) {
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	s, rec := newInventoryService(t, now)
	ctx := context.Background()
	const mac = "00-04-F2-AA-BB-CC"
	poll(rec, mac, now) // pending, not yet in the store
	if _, _, err := s.DB.SetDeviceConfig(mac, map[string]string{"PeerFirmwareSharing": "true"}); err != nil {
		t.Fatal(err)
	}
	removed, err := s.RemoveDevice(ctx, "00:04:f2:aa:bb:cc", "admin@10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if removed.Device == nil || removed.Device.ID != mac || removed.Settings["PeerFirmwareSharing"] != "true" {
		t.Errorf("removed %+v", removed)
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := deviceIDs(t, s); len(got) != 0 {
		t.Errorf("the batch brought back %v", got)
	}
	if m, _ := s.DB.DeviceConfig(mac); len(m) != 0 {
		t.Errorf("its settings stayed: %v", m)
	}
	if _, err := s.RemoveDevice(ctx, mac, "admin@10.0.0.1"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("removing it again = %v, want ENOTFOUND", err)
	}
	if _, err := s.RemoveDevice(ctx, "not a device!", "admin@10.0.0.1"); deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
		t.Errorf("removing a malformed ID = %v, want EINVALID", err)
	}

	poll(rec, mac, now.Add(time.Minute))
	if got := deviceIDs(t, s); len(got) != 1 || got[0] != mac {
		t.Errorf("a poll after the removal: %v, want it recorded anew", got)
	}

	list, err := s.AuditEntries(ctx, deviceupdate.AuditFilter{Action: "device.remove"})
	if err != nil {
		t.Fatal(err)
	}
	entries := list.Entries
	if len(entries) != 3 || entries[0].Target != mac || entries[0].Result != audit.ResultOK || !bytes.Contains(entries[0].Before, []byte(`"PeerFirmwareSharing":"true"`)) ||
		entries[1].Result == audit.ResultOK || entries[2].Result == audit.ResultOK {
		t.Errorf("audit entries = %+v", entries)
	}
}

// TestPruneDevices: a prune forgets the devices not heard from for the
// age, not one whose stored record is old but that polled since (its poll
// still in the batch); a dry run changes nothing and is not audited.
func TestPruneDevices(t *testing.T) {
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	s, rec := newInventoryService(t, now)
	ctx := context.Background()
	day := 24 * time.Hour
	for i, mac := range []string{"00-04-F2-00-00-01", "00-04-F2-00-00-02", "00-04-F2-00-00-03"} {
		poll(rec, mac, now.Add(-40*day+time.Duration(i)*time.Minute))
	}
	if err := rec.Flush(); err != nil {
		t.Fatal(err)
	}
	poll(rec, "00-04-F2-00-00-03", now.Add(-time.Hour)) // back, and pending
	poll(rec, "00-04-F2-00-00-04", now)                 // new, and pending

	dry, err := s.PruneDevices(ctx, "30d", true, "admin@10.0.0.1")
	if err != nil || dry.Count != 2 || !dry.NotSeenSince.Equal(now.Add(-30*day)) {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	if got := deviceIDs(t, s); len(got) != 4 {
		t.Fatalf("a dry run forgot devices: %v", got)
	}
	res, err := s.PruneDevices(ctx, "720h", false, "admin@10.0.0.1")
	if err != nil || res.Count != 2 || res.Devices[0] != "00-04-F2-00-00-01" || res.Devices[1] != "00-04-F2-00-00-02" {
		t.Fatalf("prune = %+v, %v", res, err)
	}
	if got := deviceIDs(t, s); len(got) != 2 || got[0] != "00-04-F2-00-00-03" || got[1] != "00-04-F2-00-00-04" {
		t.Errorf("after prune: %v", got)
	}
	for _, bad := range []string{"", "0d", "-1h", "soon"} {
		if _, err := s.PruneDevices(ctx, bad, false, "admin@10.0.0.1"); deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
			t.Errorf("prune --not-seen %q = %v, want EINVALID", bad, err)
		}
	}
	list, err := s.AuditEntries(ctx, deviceupdate.AuditFilter{Action: "device.prune"})
	if err != nil {
		t.Fatal(err)
	}
	entries := list.Entries
	if len(entries) != 5 || entries[0].Target != "not seen since 2026-10-22T08:00:00Z" || !bytes.Contains(entries[0].After, []byte(`"count":2`)) {
		t.Errorf("audit entries = %+v", entries)
	}
}
