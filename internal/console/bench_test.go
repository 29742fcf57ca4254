package console_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

// fleetSize is the inventory of the budget: the dashboard in
// under 200 ms of server time, a filtered device page in under 100 ms.
const fleetSize = 100_000

// seedFleet records n phones of four models running three versions.
func seedFleet(tb testing.TB, e *env, n int) {
	tb.Helper()
	now := time.Now().UTC()
	versions := []deviceupdate.Version{deviceupdate.MustParseVersion("4.0.7577.4000"), deviceupdate.MustParseVersion("4.0.7577.4100"), deviceupdate.MustParseVersion("4.0.7577.4366")}
	models := []string{"CX600", "CX700", "CX500", "CX3000"}
	batch := make([]deviceupdate.Device, 0, 5000)
	for i := 0; i < n; i++ {
		mac := fmt.Sprintf("00-04-F2-%02X-%02X-%02X", i>>16&0xff, i>>8&0xff, i&0xff)
		batch = append(batch, deviceupdate.Device{ID: mac, MAC: mac, DeviceType: "UCPhone", Brand: "Polycom", Model: models[i%len(models)],
			Revision: "A", Locale: "ENU", Remote: fmt.Sprintf("10.%d.%d.%d", i%4, i>>8&0xff, i&0xff), LastSeen: now.Add(-time.Duration(i) * time.Second), Polls: 1,
			Modules: []deviceupdate.Module{{UpdateType: "CPE", Filename: "CPE.nbt", Version: versions[i%len(versions)]}}})
		if len(batch) == cap(batch) {
			if err := e.db.PutDevices(batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := e.db.PutDevices(batch); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkConsolePages measures the server time of the pages over an
// inventory of fleetSize devices.
func BenchmarkConsolePages(b *testing.B) {
	e := newEnv(b)
	seedFleet(b, e, fleetSize)
	// CX600's rule approves 4.0.7577.4366: two thirds of its devices are
	// not on it, and the dashboard lists the first of them.
	up := e.importCab(b, "4.0.7577.4366")
	if _, _, err := e.svc.ChangeRule(b.Context(), up.RuleID, deviceupdate.RuleApprove, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	u := e.signIn(b, "vera")
	e.get(b, u, "/") // the store builds its device index once, as serve does at start
	for _, p := range []struct{ name, path string }{
		{"dashboard", "/"},
		{"devices", "/devices"},
		{"devices-model-version", "/devices?model=CX700&version=4.0.7577.4100"},
		{"devices-search", "/devices?q=00-04-F2-01-86-9F"},
		{"device", "/devices/00-04-F2-01-86-9F"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				if rec := e.get(b, u, p.path); rec.Code != http.StatusOK {
					b.Fatalf("%s: %d", p.path, rec.Code)
				}
			}
		})
	}
}
