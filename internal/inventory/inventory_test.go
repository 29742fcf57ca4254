package inventory_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

func poll(rec *inventory.Recorder, mac, version string, at time.Time) {
	rec.Record(deviceupdate.PollRequest{DeviceType: "UCPhone", MAC: mac, Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU",
		Modules: []deviceupdate.Module{{UpdateType: "CPE", Filename: "CPE.nbt", Version: deviceupdate.MustParseVersion(version)}}}, "10.0.0.1", at, nil)
}

// TestRecorderKeepsBatchesUntilWritten, on a real full disk: a batch whose
// write fails stays in memory under the newer polls of its devices, and is
// written once space returns; at most the cap of devices wait, polls of
// further ones are counted and logged, not kept; a Forget waits for the
// write.
func TestRecorderKeepsBatchesUntilWritten(t *testing.T) {
	disk := e2e.TinyDisk(t, 512<<10)
	db, err := store.Open(disk, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reqLog, err := audit.OpenRequestLog(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	rec := inventory.New(db, reqLog, zap.New(core), time.Hour)
	defer rec.Close()
	inventory.SetMaxPending(rec, 300)
	reg := prometheus.NewRegistry()
	reg.MustRegister(rec.Collectors()...)
	metric := func(name string) float64 {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if m := f.GetMetric(); f.GetName() == name && len(m) == 1 {
				return m[0].GetCounter().GetValue() + m[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}

	free := e2e.FillDisk(t, disk)
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	mac := func(i int) string { return fmt.Sprintf("00-04-F2-00-%02X-%02X", i/256, i%256) }
	for i := range 250 {
		poll(rec, mac(i), "4.0.7577.4100", t0)
	}
	if err := rec.Flush(); err == nil {
		t.Fatal("a batch of 250 devices was written to a full disk")
	}
	forgot := false
	if err := rec.Forget(func() error { forgot = true; return nil }); err == nil || forgot {
		t.Errorf("Forget ran with records it could not write first: %v", err)
	}
	// Newer polls of the same devices, and of new ones up to the cap.
	for i := range 100 {
		poll(rec, mac(i), "4.0.7577.4366", t0.Add(time.Minute))
	}
	for i := 250; i < 400; i++ {
		poll(rec, mac(i), "4.0.7577.4100", t0.Add(time.Minute))
	}
	if got := rec.Pending(); got != 300 {
		t.Errorf("pending = %d, want the cap, 300", got)
	}
	if got := metric("deviceupdate_inventory_pending_dropped_total"); got != 100 {
		t.Errorf("dropped = %v, want 100", got)
	}
	if logs.FilterMessageSnippet("answered but not recorded").Len() != 1 {
		t.Errorf("want one error line for the dropped polls: %v", logs.All())
	}

	free()
	if err := rec.Flush(); err != nil {
		t.Fatalf("flush once space returned: %v", err)
	}
	devices, err := db.Devices()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]deviceupdate.Device{}
	for _, d := range devices {
		byID[d.ID] = d
	}
	tests := []struct {
		name    string
		id      string
		present bool
		polls   int64
		version string
	}{
		{"polled twice, the second after the failed write", mac(0), true, 2, "4.0.7577.4366"},
		{"polled once before the failed write", mac(200), true, 1, "4.0.7577.4100"},
		{"polled after the failed write, under the cap", mac(260), true, 1, "4.0.7577.4100"},
		{"polled past the cap", mac(399), false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := byID[tt.id]
			if ok != tt.present {
				t.Fatalf("%s stored: %v, want %v", tt.id, ok, tt.present)
			}
			if ok && (d.Polls != tt.polls || d.Modules[0].Version.String() != tt.version) {
				t.Errorf("%s: %d polls, running %s; want %d, %s", tt.id, d.Polls, d.Modules[0].Version, tt.polls, tt.version)
			}
		})
	}
	if len(devices) != 300 || rec.Pending() != 0 || metric("deviceupdate_inventory_write_failures_total") < 2 {
		t.Errorf("%d devices stored, %d pending, %v failed writes", len(devices), rec.Pending(), metric("deviceupdate_inventory_write_failures_total"))
	}
	if err := rec.Forget(func() error { forgot = true; return nil }); err != nil || !forgot {
		t.Errorf("Forget once writes succeed: %v", err)
	}
}
