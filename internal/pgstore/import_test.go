package pgstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
)

// source is a single server's store, filled with a record of every kind
// (users, admins with tokens and sessions, sites, settings, test devices,
// rules and updates under a rollout, devices with their rollout states),
// every change but the inventory's and the rollout's audited.
type source struct {
	db    *store.DB
	trail string // the trail file
}

func newSource(t *testing.T) source {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tr, err := audit.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	db.SetTrail(tr)
	_, r := storetest.RolloutFixture(t, db)
	at := time.Date(2026, 12, 5, 22, 30, 0, 0, time.UTC)
	if err := db.PutDevices(storetest.RolloutPolls(r, 40, at)); err != nil {
		t.Fatal(err)
	}
	hash, err := store.HashPassword(storetest.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	site, err := deviceupdate.Site{Name: "Berlin", Subnets: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	changes := []func(tx store.Store) error{
		func(tx store.Store) error { return tx.AddUser(deviceupdate.User{Name: "Alice"}, hash) },
		func(tx store.Store) error {
			return tx.AddAdmin(deviceupdate.Admin{Name: "Olga", Role: deviceupdate.RoleOperator, CreatedAt: at, HasPassword: true}, hash)
		},
		func(tx store.Store) error {
			_, err := tx.AddAdminToken(deviceupdate.AdminToken{ID: "tok1", Admin: "Olga", CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour)}, sha256.Sum256([]byte("du_secret")), at, 10)
			return err
		},
		func(tx store.Store) error {
			_, err := tx.AddSession(store.NewSession{Hash: sha256.Sum256([]byte("session")), Session: deviceupdate.Session{Admin: deviceupdate.Admin{Name: "Olga", Role: deviceupdate.RoleOperator}, CreatedAt: at, SeenAt: at, CSRF: "c"}}, at, 10)
			return err
		},
		func(tx store.Store) error { _, err := tx.PutSite(site); return err },
		func(tx store.Store) error {
			_, _, err := tx.SetConfig("site:Berlin", map[string]string{"logLevel": "debug"})
			return err
		},
		func(tx store.Store) error {
			_, _, err := tx.SetDeviceConfig(r.RuleID+"-dev", map[string]string{"logLevel": "info"})
			return err
		},
		func(tx store.Store) error {
			_, err := tx.AddTestDevice(deviceupdate.TestDevice{Name: "Lab", MAC: "00-04-F2-AA-BB-CC", Scope: deviceupdate.ScopeGlobal})
			return err
		},
	}
	for i, change := range changes {
		if err := db.Audited(audit.Entry{Actor: "admin", Action: "test.change", Target: string(rune('a' + i))}, func(tx store.Store, _ *audit.Entry) error { return change(tx) }); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	return source{db: db, trail: tr.Path()}
}

func (s source) readTrail(fn func(audit.Entry) error) error {
	f, err := os.Open(s.trail)
	if err != nil {
		return err
	}
	defer f.Close()
	var ferr error
	brk, err := audit.Read(f, func(e audit.Entry, _ bool) {
		if ferr == nil {
			ferr = fn(e)
		}
	})
	return errors.Join(err, ferr, errorOrNil(brk))
}

func errorOrNil(brk *audit.BrokenError) error {
	if brk == nil {
		return nil
	}
	return brk
}

// rowData returns the data column of the row a record became.
func rowData(t *testing.T, db *DB, r store.Record) []byte {
	t.Helper()
	table, cols, row, err := importRow(r)
	if err != nil {
		t.Fatal(err)
	}
	var sql string
	args := []any{row[0]}
	if table == "rollout_devices" {
		sql = "SELECT data FROM rollout_devices WHERE rollout_id = $1 AND device_id = $2"
		args = append(args, row[1])
	} else {
		sql = "SELECT data FROM " + table + " WHERE " + cols[0] + " = $1"
	}
	var data []byte
	if err := db.pool.QueryRow(context.Background(), sql, args...).Scan(&data); err != nil {
		t.Fatalf("%s %q: %v", r.Kind, r.Key, err)
	}
	return data
}

func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// TestImport: every record of a single server lands in its table as it
// was stored, and the store answers as the single server did: password
// hashes, tokens and sessions work, the inventory and rollout states are
// there, and the audit trail is the file's, byte for byte, head included.
func TestImport(t *testing.T) {
	src := newSource(t)
	pg := open(t)
	counts, err := pg.Import(context.Background(), src.db.Export, src.readTrail, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	err = src.db.Export(func(r store.Record) error {
		if r.Kind == store.KindMeta {
			return nil
		}
		want[r.Kind]++
		if got := rowData(t, pg, r); !sameJSON(got, r.Value) {
			t.Errorf("%s %q: stored %s, want %s", r.Kind, r.Key, got, r.Value)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want[KindAudit] = 8
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("counts = %v, want %v", counts, want)
	}
	for _, kind := range []string{store.KindRules, store.KindUpdates, store.KindTestDevices, store.KindConfig, store.KindSites, store.KindDeviceConfigs,
		store.KindUsers, store.KindAdmins, store.KindTokens, store.KindSessions, store.KindDevices, store.KindRollouts, store.KindRolloutDevices} {
		if counts[kind] == 0 {
			t.Errorf("the source holds no record of kind %s: the test checks nothing of it", kind)
		}
	}

	ctx := context.Background()
	at := time.Date(2026, 12, 5, 22, 40, 0, 0, time.UTC) // within the session's idle time
	if u, err := pg.Authenticate(ctx, "alice", storetest.AlicePassword); err != nil || u.Name != "Alice" {
		t.Errorf("Authenticate a migrated user = %+v, %v", u, err)
	}
	if a, err := pg.CheckAdminPassword(ctx, "olga", storetest.AlicePassword); err != nil || a.Role != deviceupdate.RoleOperator {
		t.Errorf("CheckAdminPassword of a migrated admin = %+v, %v", a, err)
	}
	if a, tok, err := pg.TokenAdmin(sha256.Sum256([]byte("du_secret")), at); err != nil || a.Name != "Olga" || tok.ID != "tok1" {
		t.Errorf("TokenAdmin of a migrated token = %+v, %+v, %v", a, tok, err)
	}
	if s, err := pg.Session(sha256.Sum256([]byte("session")), at, time.Minute); err != nil || s.Admin.Name != "Olga" {
		t.Errorf("Session migrated = %+v, %v", s, err)
	}
	wantDevices, _ := src.db.Devices()
	if got, err := pg.Devices(); err != nil || !reflect.DeepEqual(got, wantDevices) {
		t.Errorf("devices: %d, %v; want %d", len(got), err, len(wantDevices))
	}
	wantRollouts, _ := src.db.Rollouts()
	if got, err := pg.Rollouts(); err != nil || !reflect.DeepEqual(got, wantRollouts) || len(got) != 1 {
		t.Errorf("rollouts = %+v, %v; want %+v", got, err, wantRollouts)
	}

	var file, table bytes.Buffer
	raw, err := os.ReadFile(src.trail)
	if err != nil {
		t.Fatal(err)
	}
	file.Write(raw)
	if err := pg.WriteAuditTrail(&table); err != nil {
		t.Fatal(err)
	}
	if table.String() != file.String() {
		t.Errorf("the trail in the table differs from the file's:\n%s\nwant\n%s", table.String(), file.String())
	}
	if err := audit.Verify(&table); err != nil {
		t.Errorf("the migrated trail does not verify: %v", err)
	}
	srcHead, _, _ := src.db.AuditHead()
	if h, _, err := pg.AuditHead(); err != nil || h != srcHead || h.Seq != 8 {
		t.Errorf("head = %+v, %v; want %+v", h, err, srcHead)
	}
	// The pool goes on from the migrated head.
	if err := pg.Audited(audit.Entry{Actor: "admin", Action: "test.after"}, nil); err != nil {
		t.Fatal(err)
	}
	if brk, err := pg.AuditEntries(func(audit.Entry, bool) {}); err != nil || brk != nil {
		t.Errorf("trail after one more change: %v, %v", brk, err)
	}
}

// TestImportRefusals: a pool that is not empty, a state between two steps
// and a damaged record are refused, and the database is left as it was.
func TestImportRefusals(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, pg *DB, src source)
		records func(src source) func(fn func(store.Record) error) error
		want    error
		msg     string
	}{
		{name: "a pool holding a rule", want: ErrNotEmpty, msg: "it holds rules, updates, audit_entries",
			prepare: func(t *testing.T, pg *DB, _ source) {
				if _, err := pg.CommitImport([]*deviceupdate.StoredUpdate{storetest.StoredUpdate(storetest.CX600, "1.0.0.1", "aa")}); err != nil {
					t.Fatal(err)
				}
				if err := pg.Audited(audit.Entry{Actor: "a", Action: "x"}, nil); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "a pool holding a device", want: ErrNotEmpty, msg: "it holds devices",
			prepare: func(t *testing.T, pg *DB, _ source) {
				if err := pg.PutDevices(storetest.FakeDevices(0, 1, "1.0.0.1")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "an import in progress", want: ErrUnsettled, msg: "an import or a files clear is in progress",
			records: func(src source) func(fn func(store.Record) error) error {
				return withExtra(src, store.Record{Kind: store.KindInProgress, Key: []byte("k@1"), Value: []byte(`{}`)})
			}},
		{name: "a record under another key", msg: `record rules "x": stored under another key`,
			records: func(src source) func(fn func(store.Record) error) error {
				return withExtra(src, store.Record{Kind: store.KindRules, Key: []byte("x"), Value: []byte(`{"id":"y"}`)})
			}},
		{name: "a record that is not JSON", msg: "not JSON",
			records: func(src source) func(fn func(store.Record) error) error {
				return withExtra(src, store.Record{Kind: store.KindDevices, Key: []byte("x"), Value: []byte(`{`)})
			}},
		{name: "a head the trail does not reach", want: ErrUnsettled, msg: "the audit trail ends at entry 8, the store's head is entry 10",
			records: func(src source) func(fn func(store.Record) error) error {
				return withExtra(src, store.Record{Kind: store.KindMeta, Key: []byte(store.MetaAuditHead), Value: []byte(`{"seq":10,"hash":"ab"}`)})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(t)
			pg := open(t)
			if tt.prepare != nil {
				tt.prepare(t, pg, src)
			}
			before := dump(t, pg)
			records := src.db.Export
			if tt.records != nil {
				records = tt.records(src)
			}
			_, err := pg.Import(context.Background(), records, src.readTrail, nil)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !bytes.Contains([]byte(err.Error()), []byte(tt.msg)) {
				t.Fatalf("Import = %v, want %v with %q", err, tt.want, tt.msg)
			}
			if after := dump(t, pg); !reflect.DeepEqual(after, before) {
				t.Errorf("the refused import changed the database:\n%v\nwas\n%v", after, before)
			}
		})
	}
}

// withExtra hands out the source's records and r after them.
func withExtra(src source, r store.Record) func(fn func(store.Record) error) error {
	return func(fn func(store.Record) error) error {
		if err := src.db.Export(fn); err != nil {
			return err
		}
		return fn(r)
	}
}

// dump returns every row of the state's tables, and the head, as text.
func dump(t *testing.T, db *DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range append(stateTables, "audit_head", "meta") {
		rows, err := db.pool.Query(context.Background(), "SELECT t::text FROM "+table+" t ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
