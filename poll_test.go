package deviceupdate_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

func TestDecide(t *testing.T) {
	v := deviceupdate.MustParseVersion
	rule := &deviceupdate.Rule{ID: "r", ApprovedVersion: v("4.0.7577.4366"), PendingVersion: v("4.0.7577.4400"), RestoreVersion: v("4.0.7577.4100")}
	approvedOnly := &deviceupdate.Rule{ID: "r", ApprovedVersion: v("4.0.7577.4366")}
	pendingOnly := &deviceupdate.Rule{ID: "r", PendingVersion: v("4.0.7577.4400")}
	none := deviceupdate.Version{}
	tests := []struct {
		name       string
		rule       *deviceupdate.Rule
		running    deviceupdate.Version
		testDevice bool
		want       deviceupdate.Version // zero: nothing offered
		wantReason deviceupdate.OfferReason
	}{
		{"old phone gets the approved build", rule, v("4.0.7577.4100"), false, v("4.0.7577.4366"), deviceupdate.OfferApproved},
		{"test device gets the pending build", rule, v("4.0.7577.4100"), true, v("4.0.7577.4400"), deviceupdate.OfferPending},
		{"current phone gets nothing", rule, v("4.0.7577.4366"), false, none, deviceupdate.OfferCurrent},
		{"current test device gets nothing", rule, v("4.0.7577.4400"), true, none, deviceupdate.OfferCurrent},
		{"newer phone is rolled back", rule, v("4.0.7577.9999"), false, v("4.0.7577.4366"), deviceupdate.OfferRollback},
		{"test device running a newer build gets the pending one", rule, v("4.0.7577.9999"), true, v("4.0.7577.4400"), deviceupdate.OfferRollback},
		{"numbers, not strings", approvedOnly, v("4.0.7577.10000"), false, v("4.0.7577.4366"), deviceupdate.OfferRollback},
		{"test device without pending gets approved", approvedOnly, v("4.0.7577.4100"), true, v("4.0.7577.4366"), deviceupdate.OfferApproved},
		{"no approved version: nothing for others", pendingOnly, v("4.0.7577.4100"), false, none, deviceupdate.OfferNoVersion},
		{"no approved version: pending for test devices", pendingOnly, v("4.0.7577.4100"), true, v("4.0.7577.4400"), deviceupdate.OfferPending},
		{"unknown model", nil, v("4.0.7577.4100"), true, none, deviceupdate.OfferNoRule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deviceupdate.Decide(deviceupdate.OfferInput{Rule: tt.rule, Device: "00-04-F2-00-00-01", Running: tt.running, TestDevice: tt.testDevice})
			if got.Version != tt.want || got.Reason != tt.wantReason || got.Offered() != !tt.want.IsZero() {
				t.Errorf("Decide = %+v (offered %v); want %s, %q", got, got.Offered(), tt.want, tt.wantReason)
			}
		})
	}
}

// TestOfferFiles: an offer lists the images in their order, each naming
// the catalog as its signature file, then the catalog; never the
// description; chunk lists only when added.
func TestOfferFiles(t *testing.T) {
	u := &deviceupdate.StoredUpdate{
		Images:      []deviceupdate.UpdateFile{{Name: "Boot.nbt", Size: 1, SHA256: "b"}, {Name: "CPE.nbt", Size: 2, SHA256: "c"}},
		Catalog:     deviceupdate.UpdateFile{Name: "CPE.cat", Size: 3, SHA256: "d"},
		Description: deviceupdate.UpdateFile{Name: "CPE.xml", Size: 4, SHA256: "e"},
	}
	got := deviceupdate.OfferFiles(u)
	want := []deviceupdate.OfferedFile{
		{UpdateFile: u.Images[0], SignatureFile: "CPE.cat"},
		{UpdateFile: u.Images[1], SignatureFile: "CPE.cat"},
		{UpdateFile: u.Catalog},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OfferFiles = %+v, want %+v", got, want)
	}
	cl := &deviceupdate.ChunkList{SHA256: "f"}
	if f := got[1].WithChunkList(cl); f.ChunkList != cl || f.ChunkListName != "CPE.nbt.chunks" || got[1].ChunkList != nil {
		t.Errorf("WithChunkList = %+v, and the original %+v", f, got[1])
	}
}

// TestJitteredInterval pins each phone's interval: a phone keeps the
// spread it had under every earlier release, so a fleet does not bunch
// up after an upgrade. The wants were computed from the first
// implementation (FNV-1a, 32 bits, of the identifier).
func TestJitteredInterval(t *testing.T) {
	const long = "serial_with-64-characters-abcdefghijklmnopqrstuvwxyz0123456789AB"
	tests := []struct {
		name       string
		base       int
		identifier string
		want       int
	}{
		{"no base", 0, "00-04-F2-AA-BB-CC", 0},
		{"below ten seconds is left as it is", 9, "00-04-F2-AA-BB-CC", 9},
		{"ten seconds, empty identifier", 10, "", 10},
		{"ten seconds, MAC", 10, "00-04-F2-AA-BB-CC", 9},
		{"ten seconds, long serial", 10, long, 11},
		{"hour, empty identifier", 3600, "", 3872},
		{"hour, MAC", 3600, "00-04-F2-AA-BB-CC", 3749},
		{"hour, MAC ...01", 3600, "00-04-F2-00-00-01", 3460},
		{"hour, MAC ...02", 3600, "00-04-F2-00-00-02", 3409},
		{"hour, serial", 3600, "SN12345", 3844},
		{"hour, one letter", 3600, "A", 3288},
		{"hour, long serial", 3600, long, 3561},
		{"hour, eight-pair MAC", 3600, "00-04-F2-AA-BB-CC-DD-EE", 3459},
		{"day, empty identifier", 86400, "", 92514},
		{"day, MAC", 86400, "00-04-F2-AA-BB-CC", 93247},
		{"day, MAC ...01", 86400, "00-04-F2-00-00-01", 83071},
		{"day, MAC ...02", 86400, "00-04-F2-00-00-02", 80839},
		{"day, serial", 86400, "SN12345", 94202},
		{"day, one letter", 86400, "A", 86161},
		{"day, long serial", 86400, long, 91470},
		{"day, eight-pair MAC", 86400, "00-04-F2-AA-BB-CC-DD-EE", 92862},
		{"week, MAC", 604800, "00-04-F2-AA-BB-CC", 589650},
		{"week, serial", 604800, "SN12345", 634954},
		{"week, long serial", 604800, long, 590447},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deviceupdate.JitteredInterval(tt.base, tt.identifier); got != tt.want {
				t.Errorf("JitteredInterval(%d, %q) = %d, want %d", tt.base, tt.identifier, got, tt.want)
			}
		})
	}
}

// BenchmarkJitteredInterval measures the jitter every poll's answer
// computes from the phone's MAC.
func BenchmarkJitteredInterval(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if deviceupdate.JitteredInterval(86400, "00-04-F2-AA-BB-CC") == 0 {
			b.Fatal("no interval")
		}
	}
}

// TestDecideRollout: during a staged rollout, devices in the current wave
// get its version (new offers only within the window and under the hourly
// cap), others the previous approved one, test devices the pending one.
func TestDecideRollout(t *testing.T) {
	v := deviceupdate.MustParseVersion
	oldV, newV := v("4.0.7577.4366"), v("4.0.7577.4400")
	rule := &deviceupdate.Rule{ID: "r", ApprovedVersion: oldV, PendingVersion: newV}
	night := deviceupdate.Window{Start: 22 * 60, End: 5 * 60}
	running := &deviceupdate.Rollout{ID: "decide", Version: newV, Previous: oldV, State: deviceupdate.RolloutRunning,
		RolloutOptions: deviceupdate.RolloutOptions{Waves: []int{50, 100}, Window: night, MaxPerHour: 10}}
	paused := *running
	paused.State = deviceupdate.RolloutPaused
	var in, out string // a device in the first wave and one outside it
	for i := 0; in == "" || out == ""; i++ {
		id := fmt.Sprintf("00-04-F2-00-00-%02X", i)
		if running.Member(id) {
			in = id
		} else {
			out = id
		}
	}
	nightTime := time.Date(2026, 12, 5, 23, 0, 0, 0, time.UTC)
	dayTime := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		in         deviceupdate.OfferInput
		want       deviceupdate.Version
		wantReason deviceupdate.OfferReason
	}{
		{"in the wave, in the window: new version", deviceupdate.OfferInput{Device: in, Rollout: running, Now: nightTime}, newV, deviceupdate.OfferRollout},
		{"outside the wave: previous version", deviceupdate.OfferInput{Device: out, Rollout: running, Now: nightTime}, oldV, deviceupdate.OfferApproved},
		{"outside the wave, running previous: nothing", deviceupdate.OfferInput{Device: out, Running: oldV, Rollout: running, Now: nightTime}, deviceupdate.Version{}, deviceupdate.OfferCurrent},
		{"test device: pending as always", deviceupdate.OfferInput{Device: out, TestDevice: true, Rollout: running, Now: dayTime}, newV, deviceupdate.OfferPending},
		{"out of the window: no new offer", deviceupdate.OfferInput{Device: in, Rollout: running, Now: dayTime}, oldV, deviceupdate.OfferApproved},
		{"out of the window, offered before: keeps it", deviceupdate.OfferInput{Device: in, Rollout: running, RolloutOffered: true, Now: dayTime}, newV, deviceupdate.OfferRollout},
		{"out of the window, updated: not rolled back", deviceupdate.OfferInput{Device: in, Running: newV, Rollout: running, Now: dayTime}, deviceupdate.Version{}, deviceupdate.OfferCurrent},
		{"site's time zone", deviceupdate.OfferInput{Device: in, Rollout: running, Now: dayTime, Location: time.FixedZone("UTC+11", 11*3600)}, newV, deviceupdate.OfferRollout},
		{"hourly cap reached: no new offer", deviceupdate.OfferInput{Device: in, Rollout: running, Now: nightTime, OffersThisHour: 10}, oldV, deviceupdate.OfferApproved},
		{"hourly cap reached, offered before: keeps it", deviceupdate.OfferInput{Device: in, Rollout: running, RolloutOffered: true, Now: nightTime, OffersThisHour: 10}, newV, deviceupdate.OfferRollout},
		{"paused: no new offer", deviceupdate.OfferInput{Device: in, Rollout: &paused, Now: nightTime}, oldV, deviceupdate.OfferApproved},
		{"paused, offered before: keeps it", deviceupdate.OfferInput{Device: in, Rollout: &paused, RolloutOffered: true, Now: nightTime}, newV, deviceupdate.OfferRollout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Rule = rule
			got := deviceupdate.Decide(tt.in)
			if got.Version != tt.want || got.Reason != tt.wantReason {
				t.Errorf("Decide = %+v; want %s, %q", got, tt.want, tt.wantReason)
			}
		})
	}
}
