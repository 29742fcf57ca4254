package inventory_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

// phone is what one poll reports.
type phone struct {
	mac, serial, version, remote string
}

func (p phone) request() deviceupdate.PollRequest {
	return deviceupdate.PollRequest{DeviceType: "UCPhone", MAC: p.mac, Serial: p.serial, Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU",
		Modules: []deviceupdate.Module{{UpdateType: "CPE", Filename: "CPE.nbt", Version: deviceupdate.MustParseVersion(p.version)}}}
}

// record notes a poll of p at at, answered with offered (nil: nothing).
func (p phone) record(rec *inventory.Recorder, at time.Time, offered *deviceupdate.StoredUpdate) {
	remote := p.remote
	if remote == "" {
		remote = "10.0.0.1"
	}
	rec.Record(p.request(), remote, at, offered, 0)
}

func macPhone(i int) phone {
	return phone{mac: fmt.Sprintf("00-04-F2-00-%02X-%02X", i/256, i%256), version: "4.0.7577.4100"}
}

// update is an update the server may offer.
func update(version string) *deviceupdate.StoredUpdate {
	return &deviceupdate.StoredUpdate{
		RuleKey: deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"},
		Version: deviceupdate.MustParseVersion(version),
		Images:  []deviceupdate.UpdateFile{{Name: "CPE.nbt", Size: 10, SHA256: strings.Repeat("a", 64)}},
		Catalog: deviceupdate.UpdateFile{Name: "CPE.cat", Size: 10, SHA256: strings.Repeat("b", 64)},
	}
}

// fixture is a recorder over a real store and request log.
type fixture struct {
	dir    string // the data folder: the store and Logs/
	db     *store.DB
	reqLog *audit.RequestLog
	rec    *inventory.Recorder
	logs   *observer.ObservedLogs
}

// newFixture starts a recorder that flushes every interval, over a store
// and request log in dir (a temporary folder when ""). At the end of the
// test the recorder closes, then the store, whose integrity is checked.
func newFixture(t *testing.T, dir string, interval time.Duration) *fixture {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := store.Open(dir, store.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Error(err)
		}
		_ = db.Close()
	})
	reqLog, err := audit.OpenRequestLog(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	rec := inventory.New(db, reqLog, zap.New(core), interval)
	t.Cleanup(func() { _ = rec.Close() })
	return &fixture{dir: dir, db: db, reqLog: reqLog, rec: rec, logs: logs}
}

// devices returns the inventory as an admin lists it, by ID.
func (f *fixture) devices(t *testing.T) map[string]deviceupdate.Device {
	t.Helper()
	list, err := f.db.Devices()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]deviceupdate.Device{}
	for _, d := range list {
		out[d.ID] = d
	}
	return out
}

// wantPolls checks that the inventory holds the devices of want, each
// with its count of polls, and no other.
func (f *fixture) wantPolls(t *testing.T, want map[string]int64) {
	t.Helper()
	got := map[string]int64{}
	for id, d := range f.devices(t) {
		got[id] = d.Polls
	}
	if !maps.Equal(got, want) {
		t.Errorf("inventory (device: polls) = %v, want %v", got, want)
	}
}

// logLines returns the lines of the day's RequestHandlerAuditLog file.
func (f *fixture) logLines(t *testing.T, day time.Time) []string {
	t.Helper()
	b, err := os.ReadFile(f.reqLog.Path(day))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// closeWantLines closes the recorder and checks that the request log of
// t0's day holds n lines: one per poll, recorded or not.
func (f *fixture) closeWantLines(t *testing.T, n int) {
	t.Helper()
	if err := f.rec.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(f.logLines(t, t0)); got != n {
		t.Errorf("%d request-log lines, want one for each of the %d polls", got, n)
	}
}

func (f *fixture) flush(t *testing.T) {
	t.Helper()
	if err := f.rec.Flush(); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline: what it waits for is the recorder's own timer.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 20s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metric returns the value of one of the recorder's metrics, as /metrics
// shows it.
func metric(t *testing.T, rec *inventory.Recorder, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(rec.Collectors()...)
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

// TestRecordMergesPolls: what an admin sees of a device is the whole
// report of its last poll, with every poll and upload counted, however the
// polls fall into batches.
func TestRecordMergesPolls(t *testing.T) {
	a := phone{mac: "00-04-F2-AA-BB-CC", version: "4.0.7577.4100", remote: "10.0.0.1"}
	upgraded := phone{mac: a.mac, version: "4.0.7577.4366", remote: "10.0.0.2"}
	upload := func(f *fixture, at time.Time) {
		f.rec.RecordUpload(deviceupdate.DeviceLog{Type: "CELog", Device: a.mac, Name: "x.clg"},
			deviceupdate.LogUpload{DeviceType: "UCPhone", MAC: a.mac, Remote: "10.0.0.9"}, at)
	}
	// seenA is a's record after one poll at t0 answered with nothing.
	seenA := deviceupdate.Device{ID: a.mac, DeviceType: "UCPhone", MAC: a.mac, Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU",
		Modules: a.request().Modules, Remote: "10.0.0.1", LastSeen: t0, Polls: 1}
	with := func(change func(d *deviceupdate.Device)) deviceupdate.Device {
		d := seenA
		change(&d)
		return d
	}
	tests := []struct {
		name string
		do   func(f *fixture)
		want deviceupdate.Device
	}{
		{
			name: "one poll",
			do:   func(f *fixture) { a.record(f.rec, t0, nil) },
			want: seenA,
		},
		{
			name: "the user signed in and what made the phone poll",
			do: func(f *fixture) {
				req := a.request()
				req.UserID, req.Trigger = "sip:alice@example.com", "signin"
				f.rec.Record(req, "10.0.0.1", t0, nil, 0)
			},
			want: with(func(d *deviceupdate.Device) { d.UserID, d.Trigger = "sip:alice@example.com", "signin" }),
		},
		{
			name: "a poll answered with an update",
			do:   func(f *fixture) { a.record(f.rec, t0, update("4.0.7577.4366")) },
			want: with(func(d *deviceupdate.Device) { d.Offered = deviceupdate.MustParseVersion("4.0.7577.4366") }),
		},
		{
			name: "a poll's time is kept in UTC",
			do:   func(f *fixture) { a.record(f.rec, t0.In(time.FixedZone("CET", 3600)), nil) },
			want: seenA,
		},
		{
			name: "three polls in one batch: the last one's report, every poll counted",
			do: func(f *fixture) {
				a.record(f.rec, t0, update("4.0.7577.4366"))
				a.record(f.rec, t0.Add(time.Minute), update("4.0.7577.4366"))
				upgraded.record(f.rec, t0.Add(2*time.Minute), nil)
			},
			want: with(func(d *deviceupdate.Device) {
				d.Polls, d.LastSeen, d.Remote, d.Modules = 3, t0.Add(2*time.Minute), "10.0.0.2", upgraded.request().Modules
			}),
		},
		{
			name: "polls in separate batches add up in the store",
			do: func(f *fixture) {
				a.record(f.rec, t0, nil)
				f.flush(t)
				a.record(f.rec, t0.Add(time.Hour), update("4.0.7577.4366"))
				f.flush(t)
				upgraded.record(f.rec, t0.Add(2*time.Hour), nil)
			},
			want: with(func(d *deviceupdate.Device) {
				d.Polls, d.LastSeen, d.Remote, d.Modules = 3, t0.Add(2*time.Hour), "10.0.0.2", upgraded.request().Modules
				// The batch that brought the new version is its change.
				d.History = []deviceupdate.VersionChange{{At: t0.Add(2 * time.Hour), UpdateType: "CPE",
					From: deviceupdate.MustParseVersion("4.0.7577.4100"), To: deviceupdate.MustParseVersion("4.0.7577.4366")}}
			}),
		},
		{
			name: "a log upload counts without moving last seen",
			do: func(f *fixture) {
				a.record(f.rec, t0, nil)
				upload(f, t0.Add(time.Minute))
			},
			want: with(func(d *deviceupdate.Device) { d.LogUploads, d.LastLogUpload = 1, t0.Add(time.Minute) }),
		},
		{
			name: "uploads in separate batches add up",
			do: func(f *fixture) {
				a.record(f.rec, t0, nil)
				upload(f, t0.Add(time.Minute))
				f.flush(t)
				upload(f, t0.Add(2*time.Minute))
			},
			want: with(func(d *deviceupdate.Device) { d.LogUploads, d.LastLogUpload = 2, t0.Add(2*time.Minute) }),
		},
		{
			name: "an upload before the first poll, then the poll",
			do: func(f *fixture) {
				upload(f, t0)
				f.flush(t)
				a.record(f.rec, t0.Add(time.Minute), nil)
			},
			want: with(func(d *deviceupdate.Device) { d.LastSeen, d.LogUploads, d.LastLogUpload = t0.Add(time.Minute), 1, t0 }),
		},
		{
			name: "a phone without a MAC address is recorded by its serial number",
			do:   func(f *fixture) { phone{serial: "64167F2A3B4C", version: "4.0.7577.4100"}.record(f.rec, t0, nil) },
			want: with(func(d *deviceupdate.Device) { d.ID, d.MAC, d.Serial = "64167F2A3B4C", "", "64167F2A3B4C" }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "", time.Hour)
			tt.do(f)
			f.flush(t)
			devices := f.devices(t)
			if got, ok := devices[tt.want.ID]; !ok || len(devices) != 1 || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("inventory = %+v\nwant %+v alone", devices, tt.want)
			}
		})
	}
}

// boltTxID returns the ID of the last transaction committed to the closed
// store in dir.
func boltTxID(t *testing.T, dir string) int {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	return tx.ID()
}

// TestFlushWritesOneTransaction: a boot storm of polls costs the store one
// write per flush, not one per poll, and an idle flush none.
func TestFlushWritesOneTransaction(t *testing.T) {
	dir := t.TempDir()
	opened := func() int { // the transactions of opening the store alone
		db, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		before := 0
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		before = boltTxID(t, dir)
		return before
	}
	first := opened()
	perOpen := opened() - first

	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reqLog, err := audit.OpenRequestLog(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	rec := inventory.New(db, reqLog, zap.NewNop(), time.Hour)
	for round := range 3 {
		for i := range 200 {
			macPhone(i).record(rec, t0.Add(time.Duration(round)*time.Minute), nil)
		}
	}
	flushErr, idleErr := rec.Flush(), rec.Flush()
	devices, err := db.Devices()
	if err != nil {
		t.Fatal(err)
	}
	closeErr := rec.Close() // nothing left to write
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if flushErr != nil || idleErr != nil || closeErr != nil {
		t.Fatalf("flush: %v; idle flush: %v; close: %v", flushErr, idleErr, closeErr)
	}
	if len(devices) != 200 || devices[0].Polls != 3 {
		t.Errorf("%d devices listed, the first with %d polls; want 200 with 3 each", len(devices), devices[0].Polls)
	}
	if got := boltTxID(t, dir) - first - 2*perOpen; got != 1 {
		t.Errorf("600 polls of 200 devices and an idle flush took %d write transactions, want 1", got)
	}
}

// TestPeriodicFlush: without being asked, the recorder writes the devices
// and the request-log lines every interval.
func TestPeriodicFlush(t *testing.T) {
	f := newFixture(t, "", 10*time.Millisecond)
	offered := update("4.0.7577.4366")
	for i := range 3 {
		macPhone(i).record(f.rec, t0, offered)
	}
	waitFor(t, "3 devices and 3 request-log lines", func() bool {
		return len(f.devices(t)) == 3 && len(f.logLines(t, t0)) == 3
	})
	line := f.logLines(t, t0)[0]
	for _, want := range []string{"2026-11-21T08:00:00Z;10.0.0.1;UCPhone;00-04-F2-00-00-0", ";CPE.nbt;4.0.7577.4100;", ";CPE.nbt;4.0.7577.4366#CPE.cat;4.0.7577.4366;"} {
		if !strings.Contains(line, want) {
			t.Errorf("request-log line %q lacks %q", line, want)
		}
	}
	macPhone(0).record(f.rec, t0.Add(time.Minute), nil)
	waitFor(t, "the second poll of a device", func() bool { return f.devices(t)[macPhone(0).mac].Polls == 2 })
	if f.logs.Len() != 0 {
		t.Errorf("log lines: %v", f.logs.All())
	}
}

// TestCloseWritesWhatWaits: a server that stops writes the records and
// request-log lines still waiting, each line in its day's
// RequestHandlerAuditLog file.
func TestCloseWritesWhatWaits(t *testing.T) {
	f := newFixture(t, "", time.Hour)
	evening := time.Date(2026, 11, 21, 23, 59, 30, 0, time.UTC)
	macPhone(1).record(f.rec, evening, nil)
	macPhone(2).record(f.rec, evening.Add(time.Minute), update("4.0.7577.4366"))
	serialOnly := phone{serial: "64167F2A3B4C", version: "4.0.7577.4100", remote: "192.0.2.7"}
	serialOnly.record(f.rec, evening.Add(2*time.Minute), nil)
	macPhone(1).record(f.rec, evening.Add(2*time.Minute), nil)
	if err := f.rec.Close(); err != nil {
		t.Fatal(err)
	}
	devices := f.devices(t)
	if len(devices) != 3 || devices[macPhone(1).mac].Polls != 2 {
		t.Errorf("inventory after Close = %v, want 3 devices, the first polled twice", devices)
	}
	logDir := filepath.Join(f.dir, "Logs", "Server", "Audit", "imageUpdates")
	tests := []struct {
		name  string
		file  string
		lines []string
	}{
		{"the evening's file", "RequestHandlerAuditLog_test_20261121.log", []string{
			"2026-11-21T23:59:30Z;10.0.0.1;UCPhone;00-04-F2-00-00-01;;Polycom;CX600;A;ENU;CPE.nbt;4.0.7577.4100;;;",
		}},
		{"the next day's file", "RequestHandlerAuditLog_test_20261122.log", []string{
			"2026-11-22T00:00:30Z;10.0.0.1;UCPhone;00-04-F2-00-00-02;;Polycom;CX600;A;ENU;CPE.nbt;4.0.7577.4100;;CPE.nbt;4.0.7577.4366#CPE.cat;4.0.7577.4366;",
			"2026-11-22T00:01:30Z;192.0.2.7;UCPhone;;64167F2A3B4C;Polycom;CX600;A;ENU;CPE.nbt;4.0.7577.4100;;;",
			"2026-11-22T00:01:30Z;10.0.0.1;UCPhone;00-04-F2-00-00-01;;Polycom;CX600;A;ENU;CPE.nbt;4.0.7577.4100;;;",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(logDir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Join(tt.lines, "\n") + "\n"; string(b) != want {
				t.Errorf("%s holds\n%s\nwant\n%s", tt.file, b, want)
			}
		})
	}
}

// TestCloseOnFullDisk: records that cannot be written at stop are lost,
// and a log line says how many.
func TestCloseOnFullDisk(t *testing.T) {
	disk := e2e.TinyDisk(t, 512<<10)
	f := newFixture(t, disk, time.Hour)
	free := e2e.FillDisk(t, disk)
	defer free()
	for i := range 40 {
		macPhone(i).record(f.rec, t0, nil)
	}
	if err := f.rec.Close(); err == nil {
		t.Fatal("Close wrote 40 devices to a full disk")
	}
	lost := f.logs.FilterMessageSnippet("inventory records lost at stop").All()
	if len(lost) != 1 || lost[0].ContextMap()["records"] != int64(40) {
		t.Errorf("log lines: %v, want one saying 40 records were lost", f.logs.All())
	}
	if f.logs.FilterMessageSnippet("request log lines lost at stop").Len() != 1 {
		t.Errorf("log lines: %v, want one saying request-log lines were lost", f.logs.All())
	}
}

// TestFailedWriteKeepsBatch, on a real full disk: the batch of a failed
// write is written whole once space returns, merged with what its devices
// did meanwhile; the periodic flush retries on its own and says when it
// succeeds again.
func TestFailedWriteKeepsBatch(t *testing.T) {
	a, b, c := macPhone(1), macPhone(2), macPhone(3)
	const crowd = 60 // more devices in the batch, so that it needs new pages of the store
	pollAgain := func(rec *inventory.Recorder) {
		upgraded := a
		upgraded.version = "4.0.7577.4366"
		upgraded.record(rec, t0.Add(time.Minute), nil)
	}
	polledAgain := func(t *testing.T, devices map[string]deviceupdate.Device) {
		d := devices[a.mac]
		if d.Polls != 2 || !d.LastSeen.Equal(t0.Add(time.Minute)) || d.Modules[0].Version.String() != "4.0.7577.4366" {
			t.Errorf("a = %+v, want 2 polls, the last running 4.0.7577.4366", d)
		}
	}
	upload := func(rec *inventory.Recorder) {
		rec.RecordUpload(deviceupdate.DeviceLog{Type: "CELog", Device: a.mac, Name: "x.clg"},
			deviceupdate.LogUpload{DeviceType: "UCPhone", MAC: a.mac}, t0.Add(time.Minute))
	}
	uploaded := func(t *testing.T, devices map[string]deviceupdate.Device) {
		d := devices[a.mac]
		if d.Polls != 1 || !d.LastSeen.Equal(t0) || d.LogUploads != 1 || d.Modules[0].Version.String() != "4.0.7577.4100" {
			t.Errorf("a = %+v, want its poll kept and one upload", d)
		}
	}
	tests := []struct {
		name   string
		during bool                          // act while the failing write is in progress, else between it and the next
		act    func(rec *inventory.Recorder) // nil: nothing
		check  func(t *testing.T, devices map[string]deviceupdate.Device)
	}{
		{
			name: "nothing happens meanwhile",
			check: func(t *testing.T, devices map[string]deviceupdate.Device) {
				if len(devices) != 2+crowd || devices[a.mac].Polls != 1 || devices[b.mac].Polls != 1 {
					t.Errorf("%d devices listed, a: %+v, b: %+v; want the batch, a and b with one poll each", len(devices), devices[a.mac], devices[b.mac])
				}
			},
		},
		{name: "a device polls again with a newer version", act: pollAgain, check: polledAgain},
		{name: "a device uploads a log", act: upload, check: uploaded},
		{
			name: "a new device polls",
			act:  func(rec *inventory.Recorder) { c.record(rec, t0.Add(time.Minute), nil) },
			check: func(t *testing.T, devices map[string]deviceupdate.Device) {
				if len(devices) != 3+crowd || devices[c.mac].Polls != 1 {
					t.Errorf("%d devices listed, c: %+v; want the batch and c", len(devices), devices[c.mac])
				}
			},
		},
		{name: "a device polls again during the failed write", during: true, act: pollAgain, check: polledAgain},
		{name: "a device uploads a log during the failed write", during: true, act: upload, check: uploaded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disk := e2e.TinyDisk(t, 512<<10)
			f := newFixture(t, disk, time.Hour)
			if tt.during {
				once := sync.OnceFunc(func() { tt.act(f.rec) })
				inventory.WrapWrite(f.rec, func(write func([]deviceupdate.Device) error) func([]deviceupdate.Device) error {
					return func(batch []deviceupdate.Device) error {
						once() // the first write, the failing one
						return write(batch)
					}
				})
			}
			free := e2e.FillDisk(t, disk)
			a.record(f.rec, t0, nil)
			b.record(f.rec, t0, nil)
			for i := range crowd {
				macPhone(100+i).record(f.rec, t0, nil)
			}
			if err := f.rec.Flush(); err == nil {
				t.Fatal("a batch was written to a full disk")
			}
			if len(f.devices(t)) != 0 || f.rec.Pending() != 2+crowd {
				t.Fatalf("after the failed write: %d devices stored, %d pending; want 0 and %d", len(f.devices(t)), f.rec.Pending(), 2+crowd)
			}
			if !tt.during && tt.act != nil {
				tt.act(f.rec)
			}
			free()
			f.flush(t)
			tt.check(t, f.devices(t))
			if f.rec.Pending() != 0 {
				t.Errorf("%d records still pending", f.rec.Pending())
			}
		})
	}

	t.Run("the periodic flush retries", func(t *testing.T) {
		disk := e2e.TinyDisk(t, 512<<10)
		f := newFixture(t, disk, 10*time.Millisecond)
		free := e2e.FillDisk(t, disk)
		for i := range crowd {
			macPhone(100+i).record(f.rec, t0, nil)
		}
		waitFor(t, "a failed write", func() bool { return f.logs.FilterMessageSnippet("write inventory").Len() > 0 })
		if len(f.devices(t)) != 0 || f.rec.Pending() != crowd {
			t.Fatalf("after a failed write: %d stored, %d pending", len(f.devices(t)), f.rec.Pending())
		}
		free()
		waitFor(t, "the batch written", func() bool { return len(f.devices(t)) == crowd })
		waitFor(t, "the line saying the inventory is written again", func() bool {
			return f.logs.FilterMessage("inventory written again").Len() == 1
		})
	})
}

// TestRequestLogOnFullDisk: while the request log cannot be written, its
// lines are lost and counted, one error line says so however many polls
// come, and the inventory is still written; once space returns, the lines
// of the next polls are written.
func TestRequestLogOnFullDisk(t *testing.T) {
	disk := e2e.TinyDisk(t, 256<<10)
	dataDir := t.TempDir()
	f := newFixture(t, dataDir, 10*time.Millisecond)
	// The request log alone on the small disk.
	logDir := filepath.Join(dataDir, filepath.FromSlash(audit.RequestLogDir))
	if err := os.Remove(logDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(disk, logDir); err != nil {
		t.Fatal(err)
	}
	free := e2e.FillDisk(t, disk)
	for i := range 20 {
		macPhone(i).record(f.rec, t0, nil)
		f.flush(t) // the inventory; the request log is written by the timer
		waitFor(t, "a request-log write", func() bool { return f.reqLog.Dropped() > uint64(i) })
	}
	if got := len(f.devices(t)); got != 20 {
		t.Errorf("%d devices listed, want 20", got)
	}
	if got := f.logs.FilterMessage("write request log").Len(); got != 1 {
		t.Errorf("%d error lines for 20 lost request-log lines, want 1: %v", got, f.logs.All())
	}
	free()
	macPhone(99).record(f.rec, t0, nil)
	waitFor(t, "the next poll's request-log line", func() bool {
		lines := f.logLines(t, t0)
		return len(lines) == 1 && strings.Contains(lines[0], macPhone(99).mac)
	})
}

// TestForget: a device an admin removes or prunes stays gone although its
// poll waited in the batch; a poll that comes during or after the removal
// records it anew.
func TestForget(t *testing.T) {
	a, b := macPhone(1), macPhone(2)
	remove := func(f *fixture, id string) func() error {
		return func() error {
			removed, err := f.db.RemoveDevice(id)
			if err == nil && removed.Device == nil {
				return fmt.Errorf("removed no record of %s: the batch was not written first", id)
			}
			return err
		}
	}
	tests := []struct {
		name string
		do   func(t *testing.T, f *fixture) error
		want map[string]int64 // device: polls
	}{
		{
			name: "remove a device whose poll waits",
			do: func(t *testing.T, f *fixture) error {
				a.record(f.rec, t0, nil)
				b.record(f.rec, t0, nil)
				return f.rec.Forget(remove(f, a.mac))
			},
			want: map[string]int64{b.mac: 1},
		},
		{
			name: "remove a stored device that polled again since",
			do: func(t *testing.T, f *fixture) error {
				a.record(f.rec, t0, nil)
				f.flush(t)
				a.record(f.rec, t0.Add(time.Minute), nil)
				return f.rec.Forget(remove(f, a.mac))
			},
			want: map[string]int64{},
		},
		{
			name: "prune devices whose polls wait",
			do: func(t *testing.T, f *fixture) error {
				a.record(f.rec, t0.Add(-40*24*time.Hour), nil)
				b.record(f.rec, t0, nil)
				return f.rec.Forget(func() error {
					res, err := f.db.PruneDevices(t0.Add(-30*24*time.Hour), false)
					if err == nil && res.Count != 1 {
						err = fmt.Errorf("pruned %d devices, want 1", res.Count)
					}
					return err
				})
			},
			want: map[string]int64{b.mac: 1},
		},
		{
			name: "a poll during the removal records the device anew",
			do: func(t *testing.T, f *fixture) error {
				a.record(f.rec, t0, nil)
				a.record(f.rec, t0, nil)
				return f.rec.Forget(func() error {
					err := remove(f, a.mac)()
					a.record(f.rec, t0.Add(time.Minute), nil)
					return err
				})
			},
			want: map[string]int64{a.mac: 1},
		},
		{
			name: "a poll during the removal, and a flush, record the device anew",
			do: func(t *testing.T, f *fixture) error {
				a.record(f.rec, t0, nil)
				f.flush(t)
				flushed := make(chan error, 1)
				err := f.rec.Forget(func() error {
					a.record(f.rec, t0.Add(time.Minute), nil)
					go func() { flushed <- f.rec.Flush() }() // the timer's
					select {
					case err := <-flushed:
						flushed <- err
						return fmt.Errorf("a flush ran during the removal (%v)", err)
					case <-time.After(100 * time.Millisecond): // it waits, as it should
					}
					return remove(f, a.mac)()
				})
				if ferr := <-flushed; ferr != nil {
					t.Fatal(ferr)
				}
				return err
			},
			want: map[string]int64{a.mac: 1},
		},
		{
			name: "a poll after the removal records the device anew",
			do: func(t *testing.T, f *fixture) error {
				a.record(f.rec, t0, nil)
				err := f.rec.Forget(remove(f, a.mac))
				a.record(f.rec, t0.Add(time.Minute), nil)
				return err
			},
			want: map[string]int64{a.mac: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "", time.Hour)
			if err := tt.do(t, f); err != nil {
				t.Fatal(err)
			}
			f.flush(t)
			f.wantPolls(t, tt.want)
		})
	}

	// Another flush (the timer's, an admin's listing) may have taken the
	// batch just before the removal and still be writing it.
	t.Run("a removal while an earlier batch is being written", func(t *testing.T) {
		f := newFixture(t, "", time.Hour)
		taken, release := make(chan struct{}), make(chan struct{})
		inventory.WrapWrite(f.rec, func(write func([]deviceupdate.Device) error) func([]deviceupdate.Device) error {
			return func(batch []deviceupdate.Device) error {
				if len(batch) == 1 && batch[0].ID == a.mac {
					close(taken)
					<-release
				}
				return write(batch)
			}
		})
		a.record(f.rec, t0, nil)
		flushed := make(chan error)
		go func() { flushed <- f.rec.Flush() }()
		<-taken
		forgot := make(chan error, 1)
		go func() { forgot <- f.rec.Forget(remove(f, a.mac)) }()
		select {
		case err := <-forgot:
			forgot <- err // for below, once the write is released
			t.Errorf("the removal ran while an earlier batch was being written: %v", err)
		case <-time.After(100 * time.Millisecond): // it waits, as it should; a broken Forget returns at once
		}
		close(release)
		if err := <-flushed; err != nil {
			t.Fatal(err)
		}
		if err := <-forgot; err != nil {
			t.Error(err)
		}
		if devices := f.devices(t); len(devices) != 0 {
			t.Errorf("the removed device came back: %v", devices)
		}
	})
}

// TestPendingCap: at most the cap of devices wait unwritten; a poll of a
// further device is answered and logged but not recorded, counted, and
// told by one error line; devices already waiting keep updating.
func TestPendingCap(t *testing.T) {
	f := newFixture(t, "", time.Hour)
	inventory.SetMaxPending(f.rec, 3)
	for i := range 10 {
		macPhone(i).record(f.rec, t0, nil)
	}
	macPhone(0).record(f.rec, t0.Add(time.Minute), nil)
	if got := f.rec.Pending(); got != 3 {
		t.Errorf("pending = %d, want the cap, 3", got)
	}
	f.flush(t)
	macPhone(9).record(f.rec, t0.Add(2*time.Minute), nil) // room again
	f.flush(t)

	devices := f.devices(t)
	tests := []struct {
		name  string
		phone phone
		polls int64 // 0: not recorded
	}{
		{"waiting, polled again at the cap", macPhone(0), 2},
		{"waiting", macPhone(2), 1},
		{"polled past the cap", macPhone(5), 0},
		{"polled past the cap, then once written", macPhone(9), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := devices[tt.phone.mac].Polls; got != tt.polls {
				t.Errorf("%s: %d polls recorded, want %d", tt.phone.mac, got, tt.polls)
			}
		})
	}
	if len(devices) != 4 {
		t.Errorf("%d devices listed, want 4", len(devices))
	}
	if got := metric(t, f.rec, "deviceupdate_inventory_pending_dropped_total"); got != 7 {
		t.Errorf("dropped = %v, want 7", got)
	}
	if got := f.logs.FilterMessageSnippet("answered but not recorded").Len(); got != 1 {
		t.Errorf("%d error lines for 7 polls left out, want 1", got)
	}
	f.closeWantLines(t, 12)
}

// TestInventoryCap: past the store's cap (store.LimitDevices) a new
// device's record is refused, not kept in memory to be retried; devices
// already recorded keep updating, and a removal makes room.
func TestInventoryCap(t *testing.T) {
	f := newFixture(t, "", time.Hour)
	var refused []int
	f.db.LimitDevices(2, func(n int) { refused = append(refused, n) })
	a, b, c := macPhone(1), macPhone(2), macPhone(3)
	a.record(f.rec, t0, nil)
	b.record(f.rec, t0, nil)
	f.flush(t)
	c.record(f.rec, t0.Add(time.Minute), nil)
	a.record(f.rec, t0.Add(time.Minute), nil)
	if err := f.rec.Flush(); err != nil {
		t.Fatalf("flush at the cap: %v", err)
	}
	if f.rec.Pending() != 0 || len(refused) != 1 || refused[0] != 1 {
		t.Errorf("at the cap: %d pending, refusals %v; want none pending, one refusal of one device", f.rec.Pending(), refused)
	}
	if err := f.rec.Forget(func() error { _, err := f.db.RemoveDevice(b.mac); return err }); err != nil {
		t.Fatal(err)
	}
	c.record(f.rec, t0.Add(2*time.Minute), nil)
	f.flush(t)

	// c's first poll was refused, its second recorded once b made room.
	f.wantPolls(t, map[string]int64{a.mac: 2, c.mac: 1})
	f.closeWantLines(t, 5)
}

// TestWritingDeviceAtPendingCap: while a batch is being written, its
// devices still count as waiting (in /metrics, and against the cap); a
// device of that batch that polls again is kept even at the cap; a new
// device is not.
func TestWritingDeviceAtPendingCap(t *testing.T) {
	f := newFixture(t, "", time.Hour)
	inventory.SetMaxPending(f.rec, 2)
	a, b, c := macPhone(1), macPhone(2), macPhone(3)
	waiting := -1.0 // during the write
	inventory.WrapWrite(f.rec, func(write func([]deviceupdate.Device) error) func([]deviceupdate.Device) error {
		return func(batch []deviceupdate.Device) error {
			if len(batch) == 2 {
				waiting = metric(t, f.rec, "deviceupdate_inventory_pending_records")
				a.record(f.rec, t0.Add(time.Minute), nil)
				c.record(f.rec, t0.Add(time.Minute), nil)
			}
			return write(batch)
		}
	})
	a.record(f.rec, t0, nil)
	b.record(f.rec, t0, nil)
	f.flush(t)
	f.flush(t)
	f.wantPolls(t, map[string]int64{a.mac: 2, b.mac: 1})
	if got := metric(t, f.rec, "deviceupdate_inventory_pending_dropped_total"); got != 1 {
		t.Errorf("dropped = %v, want c's poll", got)
	}
	if waiting != 2 {
		t.Errorf("records waiting while the batch of 2 was written = %v, want 2", waiting)
	}
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

	free := e2e.FillDisk(t, disk)
	mac := func(i int) string { return macPhone(i).mac }
	for i := range 250 {
		phone{mac: mac(i), version: "4.0.7577.4100"}.record(rec, t0, nil)
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
		phone{mac: mac(i), version: "4.0.7577.4366"}.record(rec, t0.Add(time.Minute), nil)
	}
	for i := 250; i < 400; i++ {
		phone{mac: mac(i), version: "4.0.7577.4100"}.record(rec, t0.Add(time.Minute), nil)
	}
	if got := rec.Pending(); got != 300 {
		t.Errorf("pending = %d, want the cap, 300", got)
	}
	if got := metric(t, rec, "deviceupdate_inventory_pending_dropped_total"); got != 100 {
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
	if len(devices) != 300 || rec.Pending() != 0 || metric(t, rec, "deviceupdate_inventory_write_failures_total") < 2 {
		t.Errorf("%d devices stored, %d pending, %v failed writes", len(devices), rec.Pending(), metric(t, rec, "deviceupdate_inventory_write_failures_total"))
	}
	if err := rec.Forget(func() error { forgot = true; return nil }); err != nil || !forgot {
		t.Errorf("Forget once writes succeed: %v", err)
	}
}
