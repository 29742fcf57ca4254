package admin_test

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// fleetT0 is the last poll of the newest device of a test fleet.
var fleetT0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

// fleetDevice returns the i-th device of a test fleet: 20 models, 5
// versions each, 2 locales, 100 sites of /16, last seen over 30 days.
func fleetDevice(i int) deviceupdate.Device {
	model := fmt.Sprintf("CX%d", 100+i%20)
	locale := "ENU"
	if i%10 == 9 {
		locale = "DEU"
	}
	return deviceupdate.Device{
		ID: fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff), DeviceType: "UCPhone", Brand: "Polycom",
		Model: model, Revision: "A", Locale: locale, Serial: fmt.Sprintf("SN%07d", i), UserID: fmt.Sprintf("user%06d@contoso.com", i),
		Remote: fmt.Sprintf("10.%d.%d.%d", i%100, i/256%256, i%256), Trigger: "periodic",
		LastSeen: fleetT0.Add(-time.Duration(i%(30*24)) * time.Hour), Polls: int64(1 + i%50),
		Modules: []deviceupdate.Module{{UpdateType: "CPE", Filename: "CPE.nbt", Timestamp: "2026-10-01T00:00:00Z",
			Version: deviceupdate.Version{4, 0, 7577, uint32(4100 + i/20%5)}}},
	}
}

// fleetService returns a service over a real store of n devices (written
// in batches, as the inventory writes them), 20 rules and 100 sites.
func fleetService(tb testing.TB, n int) *admin.Service {
	tb.Helper()
	dir := tb.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	trail, err := audit.Open(dir, nil)
	if err != nil {
		tb.Fatal(err)
	}
	db.SetTrail(trail)
	tb.Cleanup(func() { db.Close(); trail.Close() })
	s := &admin.Service{DB: db}
	batch := make([]deviceupdate.Device, 0, 10_000)
	for i := range n {
		batch = append(batch, fleetDevice(i))
		if len(batch) == cap(batch) || i == n-1 {
			if err := s.DB.PutDevices(batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for m := range 20 {
		k := deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: fmt.Sprintf("CX%d", 100+m), Revision: "A", Locale: "ENU", UpdateType: "CPE"}
		for _, v := range []uint32{4103, 4104} {
			if _, err := s.DB.CommitImport([]*deviceupdate.StoredUpdate{{RuleKey: k, Version: deviceupdate.Version{4, 0, 7577, v},
				Images: []deviceupdate.UpdateFile{{Name: "CPE.nbt", Size: 1, SHA256: fmt.Sprint(v)}}}}); err != nil {
				tb.Fatal(err)
			}
			if v == 4103 {
				if _, _, err := s.DB.ChangeRule(deviceupdate.RuleID(k), deviceupdate.RuleApprove, nil); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	for i := range 100 {
		if _, err := s.DB.PutSite(deviceupdate.Site{Name: fmt.Sprintf("site%d", i), Subnets: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", i))}}); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// benchFleet is the size the console must stay fast at (ISSUE 16).
const benchFleet = 100_000

// BenchmarkFleetSummary measures the dashboard's data at 100,000 devices:
// the counts per model and version, kept as polls land, with the rules.
// It reports the first call too, which reads the store into the index
// (once, at start), and the index's memory per device.
func BenchmarkFleetSummary(b *testing.B) {
	s := fleetService(b, benchFleet)
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	sum, err := s.Summary(ctx)
	if err != nil {
		b.Fatal(err)
	}
	build := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if sum.Devices != benchFleet || len(sum.Models) != 22 {
		b.Fatalf("%d devices, %d models", sum.Devices, len(sum.Models))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Summary(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(build.Milliseconds()), "first-ms")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchFleet, "index-B/device")
}

// BenchmarkDeviceListFiltered measures a filtered page of the device list
// (500 devices, the API's default, or fewer when fewer match) at 100,000
// devices, as the console asks for it.
func BenchmarkDeviceListFiltered(b *testing.B) {
	s := fleetService(b, benchFleet)
	ctx := context.Background()
	key, _ := deviceupdate.ParseRuleKey("UCPhone/Polycom/CX107/A/ENU/CPE")
	tests := []struct {
		name string
		f    deviceupdate.DeviceFilter
		want int // devices on the page
	}{
		{"none", deviceupdate.DeviceFilter{}, 500},
		{"model", deviceupdate.DeviceFilter{Model: "CX105"}, 500},
		{"key and version", deviceupdate.DeviceFilter{Key: key, Version: deviceupdate.MustParseVersion("4.0.7577.4101")}, 500},
		{"site", deviceupdate.DeviceFilter{Site: "site42"}, 500},
		{"not seen for 29 days", deviceupdate.DeviceFilter{Before: fleetT0.Add(-29 * 24 * time.Hour)}, 500},
		{"search one user", deviceupdate.DeviceFilter{Search: "USER099999"}, 1},
		{"search matching none", deviceupdate.DeviceFilter{Search: "nobody"}, 0},
		{"model and version matching none", deviceupdate.DeviceFilter{Model: "CX105", Version: deviceupdate.MustParseVersion("4.0.7577.4999")}, 0},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			tt.f.Limit = deviceupdate.DefaultPageLimit
			list, err := s.Devices(ctx, tt.f) // builds the index on the first
			if err != nil {
				b.Fatal(err)
			}
			if len(list.Devices) != tt.want {
				b.Fatalf("%d devices, want %d", len(list.Devices), tt.want)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := s.Devices(ctx, tt.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
