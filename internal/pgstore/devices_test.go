package pgstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
)

// The inventory and staged rollouts across the nodes of a pool; the
// behaviour of each method on one node is the store table's
// (storetest_test.go).

// Devices one node records are read on another, and the polls of one
// device flushed by two nodes at once all count: the first flushes of a
// boot storm insert the same new devices on both, the later ones update
// them, and no poll is lost to the other node's write.
func TestDevicesAcrossNodes(t *testing.T) {
	dsn := pgtest.DB(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	const devices, rounds = 300, 8
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, len(nodes))
		for i, node := range nodes {
			wg.Go(func() {
				errs[i] = node.PutDevices(storetest.FakeDevices(0, devices, fmt.Sprintf("4.0.7577.%d", 4100+round)))
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, node %d: %v", round, i, err)
			}
		}
	}
	all, err := nodes[1].Devices()
	if err != nil || len(all) != devices {
		t.Fatalf("node 1 reads %d devices, %v; want %d", len(all), err, devices)
	}
	for _, d := range all {
		if d.Polls != 2*rounds {
			t.Fatalf("device %s counts %d polls, want %d: a node's write lost the other's", d.ID, d.Polls, 2*rounds)
		}
	}
	if n := nodes[0].DeviceCount(); n != devices {
		t.Errorf("node 0 counts %d devices, want %d", n, devices)
	}
	n, models, err := nodes[1].FleetCounts()
	if err != nil || n != devices || len(models) != 1 || len(models[0].Versions) != 1 || models[0].Versions[0].Devices != devices {
		t.Errorf("fleet on node 1: %d, %+v, %v", n, models, err)
	}

	// A device removed on one node is gone on the other.
	if _, err := nodes[0].RemoveDevice(all[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[1].Device(all[0].ID); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("a device removed on node 0 reads on node 1: %v", err)
	}
}

// The cap counts the devices of the pool: a node counts those another
// recorded before it, and another node's removal makes room within a
// second (countTTL) at the most.
func TestDeviceCapAcrossNodes(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	if err := a.PutDevices(storetest.FakeDevices(0, 50, "4.0.7577.4100")); err != nil {
		t.Fatal(err)
	}
	var refused []int
	b.LimitDevices(60, func(n int) { refused = append(refused, n) })
	if err := b.PutDevices(storetest.FakeDevices(0, 80, "4.0.7577.4100")); err != nil {
		t.Fatal(err)
	}
	if b.DeviceCount() != 60 || a.DeviceCount() != 60 || len(refused) != 1 || refused[0] != 20 {
		t.Errorf("counts %d and %d, refused %v; want 60, 60, [20]", a.DeviceCount(), b.DeviceCount(), refused)
	}
}

// The inventory's changes made inside an audited change (as the admin
// service makes them) take effect with their entry, and the node's count
// follows them once they commit.
func TestAuditedInventoryChanges(t *testing.T) {
	db := open(t)
	if err := db.PutDevices(storetest.FakeDevices(0, 10, "4.0.7577.4100")); err != nil {
		t.Fatal(err)
	}
	if db.DeviceCount() != 10 {
		t.Fatalf("count %d", db.DeviceCount())
	}
	s := db
	err := s.Audited(audit.Entry{Actor: "alice", Action: "device.remove", Target: "00-04-F2-00-00-00"}, func(tx store.Store, e *audit.Entry) error {
		_, err := tx.RemoveDevice("00-04-F2-00-00-00")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Audited(audit.Entry{Actor: "alice", Action: "device.prune"}, func(tx store.Store, e *audit.Entry) error {
		res, err := tx.PruneDevices(time.Unix(1_800_000_001, 0), false)
		if err == nil && res.Count != 9 {
			err = fmt.Errorf("pruned %d, want 9", res.Count)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := db.DeviceCount(); n != 0 {
		t.Errorf("count after the audited removal and prune: %d, want 0", n)
	}
	var actions []string
	if _, err := db.AuditEntries(func(e audit.Entry, verified bool) { actions = append(actions, e.Action) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(actions, []string{"device.remove", "device.prune"}) {
		t.Errorf("trail %v", actions)
	}
}

// Inventory writes notify nothing: another node's generation moves for
// the change made after them, and for it alone.
func TestPutDevicesNotifiesNothing(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	configured := make(chan struct{}, 1)
	b.onNotify("config", func() { configured <- struct{}{} })
	gen := b.Generation()
	if err := a.PutDevices(storetest.FakeDevices(0, 10, "4.0.7577.4100")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.SetConfig("global", map[string]string{"PeerFirmwareSharing": "false"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-configured:
	case <-time.After(30 * time.Second):
		t.Fatal("node b never heard of the configuration change")
	}
	if got := b.Generation(); got != gen+1 {
		t.Errorf("node b's generation moved by %d; want 1, for the configuration alone", got-gen)
	}
}

// Two nodes change one rollout at once: the second waits for the first's
// lock, runs again on what the first committed, and refuses; the rule is
// approved once.
func TestChangeRolloutRace(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	_, r := storetest.RolloutFixture(t, a)
	complete := func(r deviceupdate.Rollout) (deviceupdate.Rollout, error) {
		if r.State != deviceupdate.RolloutRunning {
			return r, deviceupdate.Errorf(deviceupdate.ECONFLICT, "rollout is %s", r.State)
		}
		r.State = deviceupdate.RolloutCompleted
		return r, nil
	}
	waiting := pgtest.Conn(t, dsn)
	var bErr error
	done := make(chan struct{})
	_, after, err := a.ChangeRollout(r.RuleID, func(cur deviceupdate.Rollout) (deviceupdate.Rollout, error) {
		go func() {
			defer close(done)
			_, _, bErr = b.ChangeRollout(r.RuleID, complete)
		}()
		// Hold the rollout's row until b waits for it.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			var n int
			if err := waiting.QueryRow(context.Background(), "SELECT count(*) FROM pg_locks WHERE NOT granted").Scan(&n); err != nil {
				return cur, err
			}
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				return cur, fmt.Errorf("node b never waited for the rollout's row")
			}
		}
		return complete(cur)
	})
	<-done
	if err != nil || after.State != deviceupdate.RolloutCompleted {
		t.Fatalf("node a: %+v, %v", after, err)
	}
	if deviceupdate.ErrorCode(bErr) != deviceupdate.ECONFLICT || !strings.Contains(bErr.Error(), "rollout is completed") {
		t.Errorf("node b: %v; want its change refused on the completed rollout", bErr)
	}
	rule, err := b.FindRule(r.RuleID)
	if err != nil || rule.ApprovedVersion != r.Version || rule.RestoreVersion != r.Previous || !rule.PendingVersion.IsZero() {
		t.Errorf("rule after the race: %+v, %v; want %s approved once, %s to restore", rule, err, r.Version, r.Previous)
	}
}

// Polls flushed on two nodes land in the one rollout: each member's
// record counts the offers of both.
func TestRolloutDevicesAcrossNodes(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	_, r := storetest.RolloutFixture(t, a)
	at := r.StartedAt.Add(time.Minute)
	if err := a.PutDevices(storetest.RolloutPolls(r, 40, at)); err != nil {
		t.Fatal(err)
	}
	if err := b.PutDevices(storetest.RolloutPolls(r, 40, at.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	devices, err := a.RolloutDevices(r.ID)
	if err != nil || len(devices) == 0 {
		t.Fatalf("rollout devices = %d, %v", len(devices), err)
	}
	for _, d := range devices {
		if d.Offers != 2 || !d.OfferedAt.Equal(at) || !d.LastSeen.Equal(at.Add(time.Minute)) {
			t.Errorf("device %+v; want offered at %s on node a and again on node b", d, at)
		}
	}
}

// Pages and lists are in byte order of the IDs, as bbolt's, also in a
// database whose locale sorts otherwise (en-US puts "sn-2" between
// "SN-1" and "SN-3", and ignores punctuation).
func TestDevicesByteOrderInAnyLocale(t *testing.T) {
	admin := pgtest.DB(t)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/") + "_icu"
	conn := pgtest.Conn(t, admin)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"); err != nil {
		t.Skipf("no ICU locale here: %v", err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)") })
	u.Path = "/" + name
	db := openDSN(t, u.String())
	ids := []string{"sn-2", "SN-1", "SN-3", "00-04-F2-00-00-0A", "00-04-F2-00-00-0b", "00_04", "0004"}
	var batch []deviceupdate.Device
	for _, id := range ids {
		batch = append(batch, deviceupdate.Device{ID: id, Serial: id, LastSeen: time.Unix(1_800_000_000, 0).UTC(), Polls: 1})
	}
	if err := db.PutDevices(batch); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(ids))
	var paged []string
	for after := ""; ; {
		page, next, err := db.DevicesPage(after, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			paged = append(paged, d.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	all, err := db.Devices()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, d := range all {
		listed = append(listed, d.ID)
	}
	if !slices.Equal(paged, want) || !slices.Equal(listed, want) {
		t.Errorf("pages %v\nlist  %v\nwant  %v", paged, listed, want)
	}
}

// A filtered page, tested first on the part of the records PostgreSQL
// extracts, returns exactly the records that pass the filter, in ID order,
// whatever fields the filter reads; a device that changed since keeps
// being found by what it holds now.
func TestFilteredPagesAgreeWithRecords(t *testing.T) {
	db := open(t)
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	var batch []deviceupdate.Device
	for i := range 2500 {
		d := storetest.PollOf(fmt.Sprintf("00-04-F2-00-%02X-%02X", i>>8, i&0xff), deviceupdate.Version{4, 0, 0, uint32(i % 4)}, deviceupdate.Version{}, t0.Add(-time.Duration(i)*time.Hour))
		d.Model, d.UserID, d.Remote = fmt.Sprintf("CX%d", i%3), fmt.Sprintf("User%d@contoso.com", i%37), fmt.Sprintf("10.%d.0.%d", i%3, i%250+1)
		if i%10 == 0 {
			d.Modules = append(d.Modules, deviceupdate.Module{UpdateType: "UCS", Version: deviceupdate.Version{1, 0, 0, uint32(i % 4)}})
		}
		batch = append(batch, d)
	}
	batch = append(batch, deviceupdate.Device{ID: "SN-UPLOAD-ONLY", Serial: "SN-UPLOAD-ONLY", LogUploads: 1, LastLogUpload: t0})
	if err := db.PutDevices(batch); err != nil {
		t.Fatal(err)
	}
	moved := batch[2400]
	moved.UserID, moved.Model = "moved@contoso.com", "CX9"
	if err := db.PutDevices([]deviceupdate.Device{moved}); err != nil {
		t.Fatal(err)
	}
	sites, err := deviceupdate.NewSiteMap([]deviceupdate.Site{{Name: "one", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := deviceupdate.ParseRuleKey("ucphone/polycom/cx1/A/enu/ucs")
	all, err := db.Devices()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		f    deviceupdate.DeviceFilter
	}{
		{"model", deviceupdate.DeviceFilter{Model: "cx2"}},
		{"key of a second module, and version", deviceupdate.DeviceFilter{Key: key, Version: deviceupdate.Version{1, 0, 0, 2}}},
		{"key, not on a version", deviceupdate.DeviceFilter{Key: key, NotVersion: deviceupdate.Version{1, 0, 0, 2}}},
		{"version", deviceupdate.DeviceFilter{Version: deviceupdate.Version{4, 0, 0, 3}}},
		{"site", deviceupdate.DeviceFilter{Site: "one"}},
		{"since", deviceupdate.DeviceFilter{Since: t0.Add(-100 * time.Hour)}},
		{"before", deviceupdate.DeviceFilter{Before: t0.Add(-2000 * time.Hour)}},
		{"search user", deviceupdate.DeviceFilter{Search: "user3@"}},
		{"search MAC", deviceupdate.DeviceFilter{Search: "01:f"}},
		{"search serial of an upload-only device", deviceupdate.DeviceFilter{Search: "upload"}},
		{"what a device holds now", deviceupdate.DeviceFilter{Search: "MOVED", Model: "cx9"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			storetest.CheckFilteredPages(t, db, all, 70, tt.f.Matcher(sites))
		})
	}
}

// FleetCounts counts as the embedded store does: per rule key in any
// case and version, each module of a device in its key, devices that
// never polled (log uploads alone) in the total only.
func TestFleetCountsAsBbolt(t *testing.T) {
	at := time.Unix(1_800_000_000, 0).UTC()
	v1, v2 := deviceupdate.MustParseVersion("4.0.7577.4100"), deviceupdate.MustParseVersion("4.0.7577.4366")
	poll := func(id, model string, modules ...deviceupdate.Module) deviceupdate.Device {
		return deviceupdate.Device{ID: id, DeviceType: "UCPhone", Brand: "Polycom", Model: model, Revision: "A", Locale: "ENU", LastSeen: at, Modules: modules}
	}
	batch := []deviceupdate.Device{
		poll("00-04-F2-00-00-01", "CX600", deviceupdate.Module{UpdateType: "CPE", Version: v1}),
		poll("00-04-F2-00-00-02", "cx600", deviceupdate.Module{UpdateType: "cpe", Version: v1}),
		poll("00-04-F2-00-00-03", "CX600", deviceupdate.Module{UpdateType: "CPE", Version: v2}, deviceupdate.Module{UpdateType: "UCS", Version: v1}),
		poll("00-04-F2-00-00-04", "CX700"),
		{ID: "SN-UPLOAD-ONLY", LogUploads: 1, LastLogUpload: at},
	}
	counts := func(t *testing.T, db interface {
		PutDevices([]deviceupdate.Device) error
		FleetCounts() (int, []deviceupdate.ModelSummary, error)
	}) (int, map[string]int) {
		if err := db.PutDevices(batch); err != nil {
			t.Fatal(err)
		}
		n, models, err := db.FleetCounts()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, m := range models {
			for _, vc := range m.Versions {
				out[strings.ToLower(m.RuleKey.String())+" "+vc.Version.String()] += vc.Devices
			}
		}
		return n, out
	}
	bolt, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	wantN, want := counts(t, bolt)
	gotN, got := counts(t, open(t))
	if gotN != wantN || !maps.Equal(got, want) || len(want) != 3 {
		t.Errorf("PostgreSQL counts %d devices %v\nbbolt counts      %d devices %v", gotN, got, wantN, want)
	}
}

// benchmarkPutDevices times PutDevices of batches of 1,000 devices, new
// and then known ones (a second boot of the same phones), on db.
func benchmarkPutDevices(b *testing.B, db interface {
	PutDevices([]deviceupdate.Device) error
}) {
	b.Run("new", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := db.PutDevices(storetest.FakeDevices(i*1000, 1000, "4.0.7577.4100")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("known", func(b *testing.B) {
		for b.Loop() {
			if err := db.PutDevices(storetest.FakeDevices(0, 1000, "4.0.7577.4366")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// openB opens a store on a fresh database for a benchmark.
func openB(b *testing.B) *DB {
	db, err := Open(context.Background(), pgtest.DB(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkPutDevices compares a flush of 1,000 devices on PostgreSQL
// and on bbolt. The test server runs PostgreSQL with fsync off; bbolt
// syncs each commit, so it runs on disk and on tmpfs (/dev/shm), where a
// sync costs nothing, for a comparison of like with like.
func BenchmarkPutDevices(b *testing.B) {
	b.Run("postgres", func(b *testing.B) { benchmarkPutDevices(b, openB(b)) })
	bbolt := func(dir string) func(b *testing.B) {
		return func(b *testing.B) {
			if dir == "" {
				dir = b.TempDir()
			} else if d, err := os.MkdirTemp(dir, "pgstore-bench-"); err != nil {
				b.Skip(err)
			} else {
				dir = d
				b.Cleanup(func() { os.RemoveAll(d) })
			}
			db, err := store.Open(dir, store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			benchmarkPutDevices(b, db)
		}
	}
	b.Run("bbolt-disk", bbolt(""))
	b.Run("bbolt-tmpfs", bbolt("/dev/shm"))
}

// BenchmarkPutDevicesWrite compares ways of writing a batch of 1,000
// merged records of known devices (the records PutDevices has merged):
// its own (COPY into a temporary table, then one statement), a multi-row
// INSERT ... VALUES ... ON CONFLICT, and an INSERT ... ON CONFLICT from
// arrays (unnest). Run each in a process of its own, alternately: the
// table's dead rows grow as they run.
func BenchmarkPutDevicesWrite(b *testing.B) {
	db := openB(b)
	var fresh, known deviceRows
	for _, d := range storetest.FakeDevices(0, 1000, "4.0.7577.4100") {
		if err := errors.Join(fresh.add(d, false), known.add(d, true)); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return db.writeDevices(tx, fresh) }); err != nil {
		b.Fatal(err)
	}
	const upsert = " ON CONFLICT (id) DO UPDATE SET last_active = excluded.last_active, data = excluded.data"
	write := map[string]func(tx pgx.Tx) error{
		"copy": func(tx pgx.Tx) error { return db.writeDevices(tx, known) },
		"values": func(tx pgx.Tx) error {
			var sql strings.Builder
			args := make([]any, 0, 3*len(known.ids))
			sql.WriteString("INSERT INTO devices (id, last_active, data) VALUES ")
			for i := range known.ids {
				if i > 0 {
					sql.WriteString(", ")
				}
				fmt.Fprintf(&sql, "($%d, $%d, $%d)", 3*i+1, 3*i+2, 3*i+3)
				args = append(args, known.ids[i], known.active[i], known.data[i])
			}
			_, err := tx.Exec(ctx, sql.String()+upsert, args...)
			return err
		},
		"unnest": func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO devices (id, last_active, data) SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::jsonb[])"+upsert,
				known.ids, known.active, known.data)
			return err
		},
	}
	for _, name := range []string{"copy", "values", "unnest"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := pgx.BeginFunc(ctx, db.pool, write[name]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInventorySize100k records 100,000 devices (a fleet of
// realistic polls) and reports the space the devices table takes with
// its indexes: go test -run XXX -bench InventorySize -benchtime 1x.
func BenchmarkInventorySize100k(b *testing.B) {
	for b.Loop() {
		db := openB(b)
		at := time.Unix(1_800_000_000, 0).UTC()
		v1, v2 := deviceupdate.MustParseVersion("4.0.7577.4100"), deviceupdate.MustParseVersion("4.0.7577.4366")
		for from := 0; from < 100_000; from += 1000 {
			batch := make([]deviceupdate.Device, 0, 1000)
			for _, d := range storetest.FakeDevices(from, 1000, "4.0.7577.4100") {
				p := storetest.PollOf(d.ID, v1, v2, at)
				p.UserID, p.PollInterval = fmt.Sprintf("user%d@contoso.com", from), 86400
				batch = append(batch, p)
			}
			if err := db.PutDevices(batch); err != nil {
				b.Fatal(err)
			}
		}
		var size int64
		if err := db.pool.QueryRow(context.Background(), "SELECT pg_total_relation_size('devices')").Scan(&size); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(size)/(1<<20), "MiB")
		b.ReportMetric(float64(size)/100_000, "B/device")
		// What the dashboard and a filtered list cost at that size.
		start := time.Now()
		if n, _, err := db.FleetCounts(); err != nil || n != 100_000 {
			b.Fatalf("fleet counts %d, %v", n, err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "fleet-ms")
		start = time.Now()
		rare := deviceupdate.DeviceFilter{Search: "user99000@"}.Match
		if page, _, err := db.DevicesPage("", 50, rare); err != nil || len(page) != 50 {
			b.Fatalf("filtered page of %d, %v", len(page), err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "rare-filter-page-ms")
	}
}
