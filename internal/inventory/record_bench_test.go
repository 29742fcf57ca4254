package inventory_test

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// BenchmarkRecordPath measures the inventory's side of a poll: Record,
// and its share of the flush that writes the batch (one flush per 1000
// polls of 10,000 stored devices, one poll in 100 reporting a new
// version), with the dashboard's index built as serve builds it.
func BenchmarkRecordPath(b *testing.B) {
	dir := b.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	reqLog, err := audit.OpenRequestLog(dir, "bench")
	if err != nil {
		b.Fatal(err)
	}
	rec := inventory.New(db, reqLog, zap.NewNop(), time.Hour)
	defer rec.Close()
	const devices = 10_000
	reqs := make([]deviceupdate.PollRequest, devices)
	for i := range reqs {
		reqs[i] = deviceupdate.PollRequest{DeviceType: "UCPhone", MAC: fmt.Sprintf("00-04-F2-00-%02X-%02X", i>>8, i&0xff), Brand: "Polycom",
			Model: fmt.Sprintf("CX%d", 100+i%20), Revision: "A", Locale: "ENU", Trigger: "periodic",
			Modules: []deviceupdate.Module{{UpdateType: "CPE", Filename: "CPE.nbt", Version: deviceupdate.MustParseVersion("4.0.7577.4100")}}}
	}
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	for i, r := range reqs {
		rec.Record(r, "10.0.0.1", t0, nil, 0)
		if i%1000 == 999 {
			if err := rec.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	// The index exists only in builds that have it: this benchmark also
	// runs on the tree before it, for comparison.
	if x, ok := any(db).(interface{ BuildDeviceIndex() error }); ok {
		if err := x.BuildDeviceIndex(); err != nil {
			b.Fatal(err)
		}
	}
	updated := deviceupdate.MustParseVersion("4.0.7577.4366")
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := reqs[i%devices]
		if i%100 == 0 {
			r.Modules = []deviceupdate.Module{{UpdateType: "CPE", Filename: "CPE.nbt", Version: updated}}
		}
		rec.Record(r, "10.0.0.1", t0.Add(time.Duration(i)*time.Millisecond), nil, 0)
		if i%1000 == 999 {
			if err := rec.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
