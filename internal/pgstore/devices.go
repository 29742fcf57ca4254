package pgstore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deviceupdate/deviceupdate"
)

// The inventory: table devices, one row per device, its record the JSON
// the embedded store writes. The inventory's flush writes a batch of
// polls and uploads at once (PutDevices), about once a second per node;
// inventory writes send no notification and leave Generation alone, as
// in the embedded store: what a poll is answered does not depend on them.

// countTTL is how long a node trusts the device count it read: the other
// nodes' new devices reach it that late. A count costs a scan of the
// primary key (about 15 ms for 100,000 devices here), so it is read at most
// once per countTTL, not per flush.
const countTTL = time.Second

// deviceCap bounds the inventory, as the embedded store's does: anonymous
// polls with invented MAC addresses must not grow it without end. mu is
// held by each of the node's inventory writes, so the node's own count
// is exact; another node's new devices are seen within countTTL, so the
// pool may pass the cap by what the other nodes added in that time (a
// second of new devices at most), which still bounds it.
type deviceCap struct {
	mu        sync.Mutex
	max       int // 0: no cap
	count     int
	countedAt time.Time         // when count was read; zero to read again
	stale     atomic.Bool       // an audited change moved the count: read it again
	full      func(refused int) // told of each batch that left devices out
	refused   atomic.Uint64     // new devices left out since the start
}

// base returns the DB a bound one was made from (itself when unbound):
// the one that keeps the node's cap and count.
func (db *DB) base() *DB {
	if db.root != nil {
		return db.root
	}
	return db
}

// LimitDevices caps the inventory at max devices (0: no cap): past it,
// PutDevices records no new device, counts it as refused and calls full
// (when not nil) with the number a batch left out. Devices already
// recorded keep updating.
func (db *DB) LimitDevices(max int, full func(refused int)) {
	c := &db.base().cap
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max, c.full = max, full
}

// DeviceCount returns how many devices the inventory holds: the pool's
// count, read at most countTTL ago and moved by this node's writes since.
// It is 0 when the database cannot be read.
func (db *DB) DeviceCount() int {
	c := &db.base().cap
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = db.view(func(tx pgx.Tx) error { return db.countDevices(tx) })
	return c.count
}

// RefusedDevices returns how many new devices the cap left out since the
// store was opened, on this node.
func (db *DB) RefusedDevices() uint64 { return db.base().cap.refused.Load() }

// countDevices reads the number of devices in tx unless the node's count
// is fresh; hold lockCap.
func (db *DB) countDevices(tx pgx.Tx) error {
	c := &db.base().cap
	if !c.stale.Swap(false) && !c.countedAt.IsZero() && time.Since(c.countedAt) < countTTL {
		return nil
	}
	var n int
	if err := tx.QueryRow(db.context(), "SELECT count(*) FROM devices").Scan(&n); err != nil {
		return fmt.Errorf("count devices: %w", err)
	}
	c.count, c.countedAt = n, time.Now()
	return nil
}

// lockCap takes the node's cap for a write, and returns its unlock. A
// bound DB's write (an audited change) takes nothing: its transaction may
// hold the rows a flush holding cap.mu waits for, which would wait for
// ever on each other.
func (db *DB) lockCap() (unlock func()) {
	if db.tx != nil {
		return func() {}
	}
	db.cap.mu.Lock()
	return db.cap.mu.Unlock
}

// movedCount moves the node's count by what a committed write added
// (less than 0: deleted); hold lockCap. A bound DB's write commits
// later, with its audited change: the count is read again instead, which
// until then may count the devices it deleted, erring on refusing.
func (db *DB) movedCount(added int) {
	c := &db.base().cap
	if db.tx != nil {
		c.stale.Store(true)
		return
	}
	c.count += added
}

// errRaced means a device the batch found missing was inserted by another
// node before this one could: the transaction is run again, and merges
// into it. Its code makes it retried as PostgreSQL's own conflicts are.
var errRaced = &pgconn.PgError{Code: "40001", Message: "a device of the batch was recorded by another node meanwhile"}

// inventoryTx runs fn in a READ COMMITTED transaction, or the one db is
// bound to. The inventory's writes lock the rows of their devices (SELECT
// ... FOR UPDATE, in ID order, and the inserts' unique keys), which
// orders two nodes' writes of one device; SERIALIZABLE would add nothing
// to that but conflicts between the flushes of a boot storm, whose
// predicate locks span index pages of unrelated devices.
func (db *DB) inventoryTx(fn func(tx pgx.Tx) error) error {
	if db.tx != nil {
		return fn(db.tx)
	}
	return db.transact(pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
}

// PutDevices upserts a batch of inventory records in one transaction,
// merging each into the stored one (deviceupdate.Device.Merge, and
// NoteVersions for a poll), and records what active staged rollouts learn
// from the batch in the same transaction. A device not stored yet is left
// out while the inventory is at its cap (LimitDevices).
//
// The stored records of the batch are read and locked in one query,
// merged here (the merge is the domain's, not SQL's), and written back
// with COPY and one statement (writeDevices): a batch costs a handful of
// round trips whatever its size.
func (db *DB) PutDevices(batch []deviceupdate.Device) error {
	if len(batch) == 0 {
		return nil
	}
	c := &db.base().cap
	defer db.lockCap()()
	var refused, added int
	err := db.inventoryTx(func(tx pgx.Tx) (err error) {
		refused, added, err = db.putDevices(tx, batch)
		return err
	})
	if err != nil {
		return fmt.Errorf("record %d devices: %w", len(batch), err)
	}
	db.movedCount(added)
	if refused > 0 {
		c.refused.Add(uint64(refused))
		if c.full != nil {
			c.full(refused)
		}
	}
	return nil
}

// putDevices is PutDevices' transaction; hold lockCap.
func (db *DB) putDevices(tx pgx.Tx, batch []deviceupdate.Device) (refused, added int, err error) {
	ctx := db.context()
	ids := make([]string, 0, len(batch))
	for _, d := range batch {
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	rows, err := tx.Query(ctx, "SELECT id, data FROM devices WHERE id = ANY($1) ORDER BY id FOR UPDATE", ids)
	if err != nil {
		return 0, 0, err
	}
	stored := make(map[string]bool, len(ids))
	records := make(map[string]deviceupdate.Device, len(ids))
	var id string
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &raw}, func() error {
		var d deviceupdate.Device
		if err := jsonUnmarshal(raw, &d); err != nil {
			return fmt.Errorf("device %s: %w", id, err)
		}
		stored[id], records[id] = true, d
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	c := &db.base().cap
	if c.max > 0 {
		if err := db.countDevices(tx); err != nil {
			return 0, 0, err
		}
	}
	changed := make(map[string]bool, len(ids))
	for _, d := range batch {
		old, found := records[d.ID]
		if !found {
			if c.max > 0 && c.count+added >= c.max {
				refused++
				continue
			}
			added++
		}
		records[d.ID], changed[d.ID] = old.Record(d), true
	}
	var out deviceRows
	for _, id := range ids { // in ID order: two nodes lock in one order
		if changed[id] {
			if err := out.add(records[id], stored[id]); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := db.writeDevices(tx, out); err != nil {
		return 0, 0, err
	}
	return refused, added, db.observeRollouts(tx, batch)
}

// deviceRows are records to write, as the columns of table devices and
// whether each is stored already.
type deviceRows struct {
	ids    []string
	active []time.Time
	data   [][]byte
	known  []bool
}

func (r *deviceRows) add(d deviceupdate.Device, known bool) error {
	data, err := jsonb(d)
	if err != nil {
		return err
	}
	r.ids, r.active, r.data, r.known = append(r.ids, d.ID), append(r.active, d.LastActive()), append(r.data, data), append(r.known, known)
	return nil
}

// writeDevices writes rows in tx, whose known rows it has locked: it
// copies them into the session's table device_batch (COPY, in binary)
// and from there updates the known devices and inserts the new ones in
// one statement. A new device another node inserted meanwhile is
// errRaced. Measured for 1,000 records on this shared, loaded machine
// (BenchmarkPutDevicesWrite, each way in a process of its own, two
// sessions of three rounds): COPY 19-53 ms, a multi-row INSERT ...
// VALUES ... ON CONFLICT of 3,000 parameters 26-62 ms, an INSERT ... ON
// CONFLICT from unnest of jsonb[] arrays 45-119 ms (the server parses the
// arrays' text); COPY was the fastest in every round, 15-25% faster
// than VALUES on average.
func (db *DB) writeDevices(tx pgx.Tx, rows deviceRows) error {
	if len(rows.ids) == 0 {
		return nil
	}
	ctx := db.context()
	// ON COMMIT DELETE ROWS: the table, made once per connection, is
	// empty at each transaction's start.
	_, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE IF NOT EXISTS device_batch
	(id text COLLATE "C", last_active timestamptz, data jsonb, known boolean) ON COMMIT DELETE ROWS`)
	if err != nil {
		return err
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"device_batch"}, []string{"id", "last_active", "data", "known"},
		pgx.CopyFromSlice(len(rows.ids), func(i int) ([]any, error) {
			return []any{rows.ids[i], rows.active[i], rows.data[i], rows.known[i]}, nil
		}))
	if err != nil {
		return err
	}
	fresh := 0
	for _, known := range rows.known {
		if !known {
			fresh++
		}
	}
	var inserted int
	err = tx.QueryRow(ctx, `WITH updated AS (
	UPDATE devices d SET last_active = b.last_active, data = b.data FROM device_batch b WHERE b.known AND d.id = b.id RETURNING 1
), inserted AS (
	INSERT INTO devices (id, last_active, data) SELECT id, last_active, data FROM device_batch WHERE NOT known ORDER BY id
	ON CONFLICT (id) DO NOTHING RETURNING 1
)
SELECT count(*) FROM inserted`).Scan(&inserted)
	if err != nil {
		return err
	}
	if inserted != fresh {
		return errRaced
	}
	return nil
}

// errNoDevice is the answer about a device the inventory does not hold.
func errNoDevice(id string) error {
	return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no device %q in the inventory; `deviceupdate device list` shows them", id)
}

// pageChunk bounds the rows a filtered page reads per query; a page
// without a filter reads what it returns, and one more.
const pageChunk = 1000

// errPageFull stops a page's read once it is full.
var errPageFull = errors.New("page full")

// DevicesPage returns, in ID order, up to limit (0: no limit) devices
// whose ID sorts after after ("" for the first page) and that match (nil:
// every device), and the ID to continue after: the last one returned when
// another matching device follows, else "". PostgreSQL finds the start,
// orders and bounds the rows (a walk of the primary key from after). The
// filter, a function, runs here, pageChunk rows at a time, first on the
// part of each record a filter reads (deviceupdate.DeviceFilter: the
// device's identity, addresses, user, last poll and modules' versions),
// which PostgreSQL extracts, then on the whole records of the devices that
// pass, read for them alone: the embedded store's index does the same in
// memory. A page costs its rows and the parts of those the filter passed
// over, never a read of the whole inventory at once. All of a page is read
// in one snapshot.
func (db *DB) DevicesPage(after string, limit int, match func(deviceupdate.Device) bool) ([]deviceupdate.Device, string, error) {
	var out []deviceupdate.Device
	var next string
	err := db.view(func(tx pgx.Tx) error {
		out, next = []deviceupdate.Device{}, ""
		// add keeps d when there is room, else notes that more follow.
		add := func(d deviceupdate.Device) error {
			if limit > 0 && len(out) == limit {
				next = out[len(out)-1].ID
				return errPageFull
			}
			out = append(out, d)
			return nil
		}
		var err error
		if match == nil {
			err = db.allDevices(tx, after, limit, add)
		} else {
			err = db.matchingDevices(tx, after, match, add)
		}
		if errors.Is(err, errPageFull) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list devices: %w", err)
	}
	return out, next, nil
}

// allDevices calls add with each device after after, in ID order, until
// it fails; limit (0: none) is how many add keeps.
func (db *DB) allDevices(tx pgx.Tx, after string, limit int, add func(deviceupdate.Device) error) error {
	chunk := pageChunk
	if limit > 0 {
		chunk = min(limit+1, pageChunk)
	}
	for {
		rows, err := tx.Query(db.context(), "SELECT id, data FROM devices WHERE id > $1 ORDER BY id LIMIT $2", after, chunk)
		if err != nil {
			return err
		}
		n := 0
		var id string
		var raw []byte
		_, err = pgx.ForEachRow(rows, []any{&id, &raw}, func() error {
			n, after = n+1, id
			var d deviceupdate.Device
			if err := jsonUnmarshal(raw, &d); err != nil {
				return fmt.Errorf("device %s: %w", id, err)
			}
			return add(d)
		})
		if err != nil || n < chunk {
			return err
		}
	}
}

// matchingDevices calls add with each device after after, in ID order,
// that passes match, until add fails. It tests the part of each record a
// filter reads, then reads and tests the whole records of those that
// pass.
func (db *DB) matchingDevices(tx pgx.Tx, after string, match func(deviceupdate.Device) bool, add func(deviceupdate.Device) error) error {
	ctx := db.context()
	for {
		rows, err := tx.Query(ctx, `SELECT id, coalesce(data->>'macAddress', ''), coalesce(data->>'serialNumber', ''), coalesce(data->>'userId', ''),
	data->>'remote', data->>'lastSeen', data->>'deviceType', data->>'brand', data->>'model', data->>'revision', data->>'locale',
	jsonb_path_query_array(data, '$.modules[*].updateType'), jsonb_path_query_array(data, '$.modules[*].version')
FROM devices WHERE id > $1 ORDER BY id LIMIT $2`, after, pageChunk)
		if err != nil {
			return err
		}
		n := 0
		var passed []string
		var d deviceupdate.Device
		var lastSeen string
		var types, versions []string
		_, err = pgx.ForEachRow(rows, []any{&d.ID, &d.MAC, &d.Serial, &d.UserID, &d.Remote, &lastSeen, &d.DeviceType, &d.Brand, &d.Model, &d.Revision, &d.Locale,
			&types, &versions}, func() error {
			n, after = n+1, d.ID
			if err := d.LastSeen.UnmarshalText([]byte(lastSeen)); err != nil {
				return fmt.Errorf("device %s: last seen %q: %w", d.ID, lastSeen, err)
			}
			if len(types) != len(versions) {
				return fmt.Errorf("device %s lists %d modules and %d versions", d.ID, len(types), len(versions))
			}
			d.Modules = d.Modules[:0]
			for i, t := range types {
				m := deviceupdate.Module{UpdateType: t}
				if err := m.Version.UnmarshalText([]byte(versions[i])); err != nil {
					return fmt.Errorf("device %s: version %q: %w", d.ID, versions[i], err)
				}
				d.Modules = append(d.Modules, m)
			}
			if match(d) {
				passed = append(passed, d.ID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(passed) > 0 {
			records, err := listJSON[deviceupdate.Device](ctx, tx, "SELECT data FROM devices WHERE id = ANY($1) ORDER BY id", passed)
			if err != nil {
				return err
			}
			for _, d := range records {
				if !match(d) {
					continue
				}
				if err := add(d); err != nil {
					return err
				}
			}
		}
		if n < pageChunk {
			return nil
		}
	}
}

// Device returns one device's record; ENOTFOUND when there is none.
func (db *DB) Device(id string) (deviceupdate.Device, error) {
	var d deviceupdate.Device
	var found bool
	err := db.view(func(tx pgx.Tx) (err error) {
		found, err = getJSON(db.context(), tx, &d, "SELECT data FROM devices WHERE id = $1", id)
		return err
	})
	switch {
	case err != nil:
		return d, fmt.Errorf("read device: %w", err)
	case !found:
		return d, errNoDevice(id)
	}
	return d, nil
}

// Devices returns the whole inventory, ordered by ID.
func (db *DB) Devices() ([]deviceupdate.Device, error) {
	return list[deviceupdate.Device](db, "devices", "SELECT data FROM devices ORDER BY id")
}

// FleetCounts returns how many devices the inventory holds and, per rule
// key (in any case, spelled as its first spelling in byte order), how
// many run each version; deviceupdate.SummarizeFleet completes them with
// the rules. PostgreSQL counts the devices per exact spelling of their
// identity and list of modules' update types and versions, a few rows for
// a fleet of any size (grouping by the lists, not by each module, is five
// times faster: 200 ms for 100,000 devices on this machine, 1.1 s with
// jsonb_array_elements); they are split into modules and folded by case
// here, with Go's case rules, as the embedded store folds them.
func (db *DB) FleetCounts() (int, []deviceupdate.ModelSummary, error) {
	var total int
	var out []deviceupdate.ModelSummary
	err := db.view(func(tx pgx.Tx) error {
		out, total = nil, 0
		rows, err := tx.Query(db.context(), `SELECT data->>'deviceType', data->>'brand', data->>'model', data->>'revision', data->>'locale',
	jsonb_path_query_array(data, '$.modules[*].updateType'), jsonb_path_query_array(data, '$.modules[*].version'), count(*)
FROM devices GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5`)
		if err != nil {
			return err
		}
		byKey := map[string]int{} // lower-cased key → index in out
		var k deviceupdate.RuleKey
		var types, versions []string
		var n int
		_, err = pgx.ForEachRow(rows, []any{&k.DeviceType, &k.Brand, &k.Model, &k.Revision, &k.Locale, &types, &versions, &n}, func() error {
			total += n
			if len(types) != len(versions) {
				return fmt.Errorf("devices of %s list %d modules and %d versions", k, len(types), len(versions))
			}
			for i, updateType := range types {
				var v deviceupdate.Version
				if err := v.UnmarshalText([]byte(versions[i])); err != nil {
					return fmt.Errorf("a device of %s runs version %q: %w", k, versions[i], err)
				}
				k.UpdateType = updateType
				lower := strings.ToLower(k.String())
				at, ok := byKey[lower]
				if !ok {
					at = len(out)
					byKey[lower] = at
					out = append(out, deviceupdate.ModelSummary{RuleKey: k})
				}
				vs := out[at].Versions
				if j := slices.IndexFunc(vs, func(c deviceupdate.VersionCount) bool { return c.Version == v }); j >= 0 {
					vs[j].Devices += n
				} else {
					out[at].Versions = append(vs, deviceupdate.VersionCount{Version: v, Devices: n})
				}
			}
			return nil
		})
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("count the fleet: %w", err)
	}
	return total, out, nil
}

// RemoveDevice deletes a device's inventory record and its own settings in
// one transaction and returns what it deleted; ENOTFOUND when there is
// neither. The other nodes are told, for the settings.
func (db *DB) RemoveDevice(id string) (deviceupdate.RemovedDevice, error) {
	var removed deviceupdate.RemovedDevice
	defer db.lockCap()()
	err := db.write("deviceconfig", func(tx pgx.Tx) error {
		removed = deviceupdate.RemovedDevice{}
		ctx := db.context()
		var d deviceupdate.Device
		found, err := getJSON(ctx, tx, &d, "DELETE FROM devices WHERE id = $1 RETURNING data", id)
		if err != nil {
			return err
		}
		if found {
			removed.Device = &d
		}
		var settings map[string]string
		if found, err := getJSON(ctx, tx, &settings, "DELETE FROM device_configs WHERE device_id = $1 RETURNING data", id); err != nil || found {
			removed.Settings = settings
			if err != nil {
				return err
			}
		}
		if removed.Device == nil && removed.Settings == nil {
			return errNoDevice(id)
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("remove device: %w", err)
	}
	if removed.Device != nil {
		db.movedCount(-1)
	}
	return removed, nil
}

// PruneDevices deletes, in one transaction, every device last active
// before cutoff and its own settings; with dryRun it deletes nothing. The
// result lists the first deviceupdate.MaxPruneListed IDs. Last activity
// is compared to the microsecond, PostgreSQL's precision.
func (db *DB) PruneDevices(cutoff time.Time, dryRun bool) (*deviceupdate.PruneResult, error) {
	res := &deviceupdate.PruneResult{NotSeenSince: cutoff.UTC(), DryRun: dryRun}
	prune := func(tx pgx.Tx) error {
		ctx := db.context()
		res.Devices = []string{}
		rows, err := tx.Query(ctx, "SELECT id FROM devices WHERE last_active < $1 ORDER BY id LIMIT $2", cutoff, deviceupdate.MaxPruneListed)
		if err != nil {
			return err
		}
		if res.Devices, err = pgx.AppendRows(res.Devices, rows, pgx.RowTo[string]); err != nil {
			return err
		}
		if dryRun {
			return tx.QueryRow(ctx, `SELECT count(*), count(c.device_id) FROM devices d LEFT JOIN device_configs c ON c.device_id = d.id
WHERE d.last_active < $1`, cutoff).Scan(&res.Count, &res.Settings)
		}
		return tx.QueryRow(ctx, `WITH gone AS (DELETE FROM devices WHERE last_active < $1 RETURNING id),
settings AS (DELETE FROM device_configs WHERE device_id IN (SELECT id FROM gone) RETURNING 1)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM settings)`, cutoff).Scan(&res.Count, &res.Settings)
	}
	var err error
	if dryRun {
		err = db.view(prune)
	} else {
		defer db.lockCap()()
		if err = db.write("deviceconfig", prune); err == nil {
			db.movedCount(-res.Count)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("prune devices: %w", err)
	}
	return res, nil
}
