package admin_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
)

// pollModel records a poll of a phone of model (in locale) running version.
func pollModel(rec *inventory.Recorder, mac, model, locale, version string, at time.Time) {
	rec.Record(deviceupdate.PollRequest{DeviceType: "UCPhone", MAC: mac, Brand: "Polycom", Model: model, Revision: "A", Locale: locale,
		Modules: []deviceupdate.Module{{UpdateType: "CPE", Version: deviceupdate.MustParseVersion(version)}}}, "10.0.0.1", at, nil, 0)
}

// fleetOf renders a summary's counts as "key: version=n ... (approved A,
// pending P, not on approved N)", one line per model, so that a test
// compares what the dashboard would show.
func fleetOf(sum deviceupdate.FleetSummary) []string {
	var out []string
	for _, m := range sum.Models {
		line := strings.ToLower(m.RuleKey.String()) + ":"
		for _, v := range m.Versions {
			line += fmt.Sprintf(" %s=%d", v.Version, v.Devices)
		}
		out = append(out, line+fmt.Sprintf(" (approved %s, pending %s, not on approved %d)", text(m.ApprovedVersion), text(m.PendingVersion), m.NotOnApproved))
	}
	return out
}

// text writes a version as the API does: "" for none.
func text(v deviceupdate.Version) string {
	b, _ := v.MarshalText()
	return string(b)
}

// scanFleet counts the stored records one by one, as a dashboard without
// kept counts would: the counts kept as polls land must always agree.
func scanFleet(t *testing.T, s *admin.Service) (int, map[string]int) {
	t.Helper()
	all, err := s.DB.Devices()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, d := range all {
		for _, m := range d.Modules {
			k := deviceupdate.RuleKey{DeviceType: d.DeviceType, Brand: d.Brand, Model: d.Model, Revision: d.Revision, Locale: d.Locale, UpdateType: m.UpdateType}
			out[strings.ToLower(k.String())+" "+m.Version.String()]++
		}
	}
	return len(all), out
}

// TestFleetSummaryFollowsTheInventory: the dashboard's counts per model
// and version follow polls (new devices, updates, a model changing, keys
// in other cases), removals and prunes through the audited path, and a
// restart, and always agree with a count of the stored records.
func TestFleetSummaryFollowsTheInventory(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	t1 := t0.Add(2 * time.Hour)
	s, rec := newInventoryService(t, t0.Add(3*time.Hour))
	ctx := context.Background()
	cx600 := deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}
	for _, v := range []string{"4.0.7577.4366", "4.0.7577.4400"} {
		if _, err := s.DB.CommitImport([]*deviceupdate.StoredUpdate{{RuleKey: cx600, Version: deviceupdate.MustParseVersion(v),
			Images: []deviceupdate.UpdateFile{{Name: "CPE.nbt", Size: 1, SHA256: v}}}}); err != nil {
			t.Fatal(err)
		}
		if v == "4.0.7577.4366" {
			if _, _, err := s.ChangeRule(ctx, deviceupdate.RuleID(cx600), deviceupdate.RuleApprove, nil, "alice"); err != nil {
				t.Fatal(err)
			}
		}
	}
	mac := func(i int) string { return fmt.Sprintf("00-04-F2-00-00-%02X", i) }
	const cx600Key, cx500Key = "ucphone/polycom/cx600/a/enu/cpe:", "ucphone/polycom/cx500/a/enu/cpe:"
	const rule = " (approved 4.0.7577.4366, pending 4.0.7577.4400, "
	steps := []struct {
		name        string
		do          func(t *testing.T)
		wantDevices int
		want        []string
	}{
		{"first polls", func(t *testing.T) {
			for i := 1; i <= 3; i++ {
				pollModel(rec, mac(i), "CX600", "ENU", "4.0.7577.4100", t0)
			}
			pollModel(rec, mac(4), "CX600", "ENU", "4.0.7577.4366", t0)
			pollModel(rec, mac(5), "cx600", "enu", "4.0.7577.4100", t0) // the same key, in another case
			pollModel(rec, mac(6), "CX500", "ENU", "4.0.1.1", t0)
			pollModel(rec, mac(7), "CX600", "DEU", "4.0.7577.4100", t0)
		}, 7, []string{
			cx500Key + " 4.0.1.1=1 (approved , pending , not on approved 0)",
			"ucphone/polycom/cx600/a/deu/cpe: 4.0.7577.4100=1 (approved , pending , not on approved 0)",
			cx600Key + " 4.0.7577.4366=1 4.0.7577.4100=4" + rule + "not on approved 4)",
		}},
		{"an update, a poll without change, a model changing", func(t *testing.T) {
			pollModel(rec, mac(1), "CX600", "ENU", "4.0.7577.4366", t1)
			pollModel(rec, mac(4), "CX600", "ENU", "4.0.7577.4366", t1)
			pollModel(rec, mac(6), "CX600", "ENU", "4.0.7577.4366", t1)
		}, 7, []string{
			"ucphone/polycom/cx600/a/deu/cpe: 4.0.7577.4100=1 (approved , pending , not on approved 0)",
			cx600Key + " 4.0.7577.4366=3 4.0.7577.4100=3" + rule + "not on approved 3)",
		}},
		{"a removal", func(t *testing.T) {
			if _, err := s.RemoveDevice(ctx, mac(2), "alice"); err != nil {
				t.Fatal(err)
			}
		}, 6, []string{
			"ucphone/polycom/cx600/a/deu/cpe: 4.0.7577.4100=1 (approved , pending , not on approved 0)",
			cx600Key + " 4.0.7577.4366=3 4.0.7577.4100=2" + rule + "not on approved 2)",
		}},
		{"a prune of those not seen for 2h", func(t *testing.T) {
			res, err := s.PruneDevices(ctx, "2h", false, "alice")
			if err != nil || res.Count != 3 {
				t.Fatalf("prune = %+v, %v", res, err)
			}
		}, 3, []string{
			cx600Key + " 4.0.7577.4366=3" + rule + "not on approved 0)",
		}},
		{"a restart", func(t *testing.T) {
			dir := strings.TrimSuffix(s.DB.Path(), "/deviceupdate.db")
			if err := rec.Close(); err != nil {
				t.Fatal(err)
			}
			s.DB.Close()
			s.Trail.Close()
			reopened := openIn(t, dir, dir)
			*s = *reopened
		}, 3, []string{
			cx600Key + " 4.0.7577.4366=3" + rule + "not on approved 0)",
		}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.do(t)
			if s.Inventory != nil { // none after the restart
				if err := s.Inventory.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			sum, err := s.Summary(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := fleetOf(sum); sum.Devices != step.wantDevices || !slices.Equal(got, step.want) {
				t.Errorf("%d devices, models:\n%s\nwant %d devices:\n%s", sum.Devices, strings.Join(got, "\n"), step.wantDevices, strings.Join(step.want, "\n"))
			}
			n, scanned := scanFleet(t, s)
			kept := map[string]int{}
			for _, m := range sum.Models {
				for _, v := range m.Versions {
					kept[strings.ToLower(m.RuleKey.String())+" "+v.Version.String()] += v.Devices
				}
			}
			if n != sum.Devices || fmt.Sprint(kept) != fmt.Sprint(scanned) {
				t.Errorf("kept counts %v (%d devices) differ from the stored records' %v (%d)", kept, sum.Devices, scanned, n)
			}
		})
	}
}

// TestDeviceHistory: a device's page shows its version changes over
// time, at most the last MaxVersionHistory.
func TestDeviceHistory(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	s, rec := newInventoryService(t, t0)
	ctx := context.Background()
	const mac = "00-04-F2-AA-BB-CC"
	versions := []string{"4.0.7577.4100", "4.0.7577.4100", "4.0.7577.4366", "4.0.7577.4100"}
	for i, v := range versions {
		pollModel(rec, mac, "CX600", "ENU", v, t0.Add(time.Duration(i)*time.Hour))
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	d, err := s.Device(ctx, "00:04:f2:aa:bb:cc")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range d.History {
		got = append(got, fmt.Sprintf("%s %s %s>%s", h.At.Format("15:04"), h.UpdateType, text(h.From), h.To))
	}
	want := []string{"10:00 CPE 4.0.7577.4100>4.0.7577.4366", "11:00 CPE 4.0.7577.4366>4.0.7577.4100"}
	if !slices.Equal(got, want) {
		t.Errorf("history %q, want %q", got, want)
	}

	for i := range 2 * deviceupdate.MaxVersionHistory {
		pollModel(rec, mac, "CX600", "ENU", fmt.Sprintf("4.0.1.%d", i), t0.Add(time.Duration(10+i)*time.Hour))
		if err := rec.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	d, err = s.Device(ctx, mac)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.History); n != deviceupdate.MaxVersionHistory || d.History[n-1].To.String() != "4.0.1.31" || d.History[0].To.String() != "4.0.1.16" {
		t.Errorf("history of %d entries, from %v to %v; want the last %d", n, d.History[0], d.History[n-1], deviceupdate.MaxVersionHistory)
	}

	for _, tt := range []struct{ name, id, code string }{
		{"unknown device", "00-04-F2-00-00-00", deviceupdate.ENOTFOUND},
		{"not an ID", "../x", deviceupdate.EINVALID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Device(ctx, tt.id); deviceupdate.ErrorCode(err) != tt.code {
				t.Errorf("Device(%q) = %v, want %s", tt.id, err, tt.code)
			}
		})
	}
}

// TestPollsLastMinute: the dashboard's poll rate counts the polls of the
// last minute, not older ones.
func TestPollsLastMinute(t *testing.T) {
	s, rec := newInventoryService(t, time.Now())
	now := time.Now()
	pollModel(rec, "00-04-F2-00-00-01", "CX600", "ENU", "4.0.7577.4100", now.Add(-2*time.Minute))
	for i := range 3 {
		pollModel(rec, fmt.Sprintf("00-04-F2-00-01-%02X", i), "CX600", "ENU", "4.0.7577.4100", now)
	}
	sum, err := s.Summary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.PollsLastMinute != 3 {
		t.Errorf("polls in the last minute = %d, want 3", sum.PollsLastMinute)
	}
}
