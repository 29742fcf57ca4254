package store_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
)

// TestFilteredPagesAgreeWithRecords: a filtered list walked page by page
// through the in-memory index returns exactly the stored records that
// pass the filter, in ID order, before and after the index is moved by
// updates (versions, models, users), removals and a prune.
func TestFilteredPagesAgreeWithRecords(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := db
	t.Cleanup(func() { first.Close() })
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	device := func(i int, version uint32, model string, at time.Time) deviceupdate.Device {
		return deviceupdate.Device{ID: fmt.Sprintf("00-04-F2-00-%02X-%02X", i>>8, i&0xff), DeviceType: "UCPhone", Brand: "Polycom",
			MAC: fmt.Sprintf("00-04-F2-00-%02X-%02X", i>>8, i&0xff), Serial: fmt.Sprintf("SN%04d", i), UserID: fmt.Sprintf("User%d@contoso.com", i%37),
			Model: model, Revision: "A", Locale: "ENU", Remote: fmt.Sprintf("10.%d.0.%d", i%3, i%250+1), LastSeen: at,
			Modules: []deviceupdate.Module{{UpdateType: "CPE", Version: deviceupdate.Version{4, 0, 0, version}}}}
	}
	var batch []deviceupdate.Device
	for i := range 600 {
		batch = append(batch, device(i, uint32(i%4), fmt.Sprintf("CX%d", i%3), t0.Add(-time.Duration(i)*time.Hour)))
	}
	batch = append(batch, deviceupdate.Device{ID: "SN-UPLOAD-ONLY", Serial: "SN-UPLOAD-ONLY", LogUploads: 1, LastLogUpload: t0})
	if err := db.PutDevices(batch); err != nil {
		t.Fatal(err)
	}
	sites, err := deviceupdate.NewSiteMap([]deviceupdate.Site{{Name: "one", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := deviceupdate.ParseRuleKey("UCPhone/Polycom/cx1/A/ENU/CPE")
	filters := []struct {
		name string
		f    deviceupdate.DeviceFilter
	}{
		{"model", deviceupdate.DeviceFilter{Model: "cx2"}},
		{"key and version", deviceupdate.DeviceFilter{Key: key, Version: deviceupdate.Version{4, 0, 0, 1}}},
		{"key, not on a version", deviceupdate.DeviceFilter{Key: key, NotVersion: deviceupdate.Version{4, 0, 0, 1}}},
		{"version", deviceupdate.DeviceFilter{Version: deviceupdate.Version{4, 0, 0, 3}}},
		{"site", deviceupdate.DeviceFilter{Site: "one"}},
		{"since", deviceupdate.DeviceFilter{Since: t0.Add(-100 * time.Hour)}},
		{"before", deviceupdate.DeviceFilter{Before: t0.Add(-500 * time.Hour)}},
		{"search user", deviceupdate.DeviceFilter{Search: "user3@"}},
		{"search MAC", deviceupdate.DeviceFilter{Search: "01:f"}},
		{"search serial of an upload-only device", deviceupdate.DeviceFilter{Search: "upload"}},
	}
	check := func(t *testing.T) {
		all, err := db.Devices()
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range filters {
			t.Run(tt.name, func(t *testing.T) {
				storetest.CheckFilteredPages(t, db, all, 7, tt.f.Matcher(sites))
			})
		}
	}
	t.Run("as written", check)

	batch = batch[:0]
	for i := 0; i < 600; i += 5 {
		d := device(i, 3, "CX2", t0.Add(time.Hour)) // updated, and every fifth now a CX2
		d.UserID = "moved@contoso.com"
		batch = append(batch, d)
	}
	if err := db.PutDevices(batch); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 600; i += 50 {
		if _, err := db.RemoveDevice(fmt.Sprintf("00-04-F2-00-%02X-%02X", i>>8, i&0xff)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.PruneDevices(t0.Add(-550*time.Hour), false); err != nil {
		t.Fatal(err)
	}
	filters = append(filters, struct {
		name string
		f    deviceupdate.DeviceFilter
	}{"search a user moved to", deviceupdate.DeviceFilter{Search: "MOVED"}})
	t.Run("after updates, removals and a prune", check)

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpen(t, dir)
	t.Run("after a restart", check)
}
