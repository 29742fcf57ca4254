package pgstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/devlogs"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// ErrNotEmpty means Import found the database holding a pool's state
// already.
var ErrNotEmpty = errors.New("the pool is not empty")

// ErrUnsettled means the single server's state is between two steps of a
// change (an import or files clear in progress, audit entries past the
// head the store records), which its next start settles.
var ErrUnsettled = errors.New("the server's state is not settled")

// KindAudit counts the audit entries in Import's counts.
const KindAudit = "audit"

// importBatch is how many rows Import sends in one COPY.
const importBatch = 5000

// stateTables are the tables of a pool's state that Import fills, and so
// finds empty first (meta and audit_head hold one row from the start).
var stateTables = []string{"rules", "updates", "in_progress", "test_devices", "config", "sites", "device_configs",
	"users", "admins", "admin_tokens", "sessions", "devices", "rollouts", "rollout_devices", "audit_entries", "device_logs"}

// KindDeviceLogs counts, in Import's result, the device logs' records.
const KindDeviceLogs = "device logs"

// Import copies a single server's state into this database in one
// transaction: the records records hands out (store.DB.Export), each kept
// as the JSON it was stored as, and the audit trail trail hands out, each
// entry with its sequence number and hashes, so that the chain still
// verifies and its head is the file trail's. The database must hold no
// state (ErrNotEmpty names what it holds); while Import runs, its tables
// are locked against the writes of any node. A failure at any point, or
// the process killed, leaves the database as it was.
//
// Records are checked as they come: each must decode as its kind, under
// the key the embedded store would give it. An import or files clear in
// progress, or a trail that does not end at the head the records name, is
// refused with ErrUnsettled. It returns how many records of each kind
// (store.Kind*, KindAudit, KindDeviceLogs) it copied. logs are the
// records of the server's device logs, whose bytes the caller has put in
// the pool's file store under each record's Key.
func (db *DB) Import(ctx context.Context, records func(fn func(store.Record) error) error, trail func(fn func(audit.Entry) error) error, logs []devlogs.Record) (map[string]int, error) {
	counts := map[string]int{}
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
		if err := lockEmpty(ctx, tx); err != nil {
			return err
		}
		imp := &importer{ctx: ctx, tx: tx, counts: counts}
		if err := records(imp.add); err != nil {
			return err
		}
		if err := imp.flush(); err != nil {
			return err
		}
		if err := imp.importTrail(trail); err != nil {
			return err
		}
		if err := imp.importLogs(logs); err != nil {
			return err
		}
		for _, what := range []string{notifyUsers, "import"} {
			if err := db.notify(tx, what); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	db.gen.Add(1)
	return counts, nil
}

// CheckEmpty returns ErrNotEmpty, naming what the database holds, when it
// holds any of a pool's state: what Import refuses, checked before its
// caller does anything else.
func (db *DB) CheckEmpty(ctx context.Context) error {
	return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return checkEmpty(ctx, tx)
	})
}

// lockEmpty locks the state's tables against other writers until tx ends
// and checks that they are empty.
func lockEmpty(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '30s'"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(stateTables, ", ")+", audit_head, meta IN EXCLUSIVE MODE"); err != nil {
		return fmt.Errorf("lock the pool's tables (is a serve of the pool changing them?): %w", err)
	}
	return checkEmpty(ctx, tx)
}

// checkEmpty returns ErrNotEmpty when the tables of the state hold rows.
func checkEmpty(ctx context.Context, tx pgx.Tx) error {
	var full []string
	for _, t := range stateTables {
		var some bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+t+")").Scan(&some); err != nil {
			return err
		}
		if some {
			full = append(full, t)
		}
	}
	var seq int64
	if err := tx.QueryRow(ctx, "SELECT seq FROM audit_head").Scan(&seq); err != nil {
		return err
	}
	if seq != 0 && !contains(full, "audit_entries") {
		full = append(full, "audit_head")
	}
	if len(full) > 0 {
		return fmt.Errorf("%w: it holds %s", ErrNotEmpty, strings.Join(full, ", "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// importer writes the records of one Import, a COPY per batch of one
// kind.
type importer struct {
	ctx    context.Context
	tx     pgx.Tx
	counts map[string]int
	table  string
	cols   []string
	rows   [][]any
	head   *audit.Head // the trail's head the records name
}

// add checks a record and queues its row.
func (imp *importer) add(r store.Record) error {
	if r.Kind == store.KindMeta {
		return imp.meta(r)
	}
	table, cols, row, err := importRow(r)
	if err != nil {
		return fmt.Errorf("record %s %q: %w", r.Kind, r.Key, err)
	}
	if table != imp.table || len(imp.rows) >= importBatch {
		if err := imp.flush(); err != nil {
			return err
		}
		imp.table, imp.cols = table, cols
	}
	imp.rows = append(imp.rows, row)
	imp.counts[r.Kind]++
	return nil
}

// flush writes the queued rows.
func (imp *importer) flush() error {
	if len(imp.rows) == 0 {
		return nil
	}
	if _, err := imp.tx.CopyFrom(imp.ctx, pgx.Identifier{imp.table}, imp.cols, pgx.CopyFromRows(imp.rows)); err != nil {
		return fmt.Errorf("copy into %s: %w", imp.table, err)
	}
	imp.rows = imp.rows[:0]
	return nil
}

// meta copies the store's creation time and remembers the trail's head.
func (imp *importer) meta(r store.Record) error {
	switch string(r.Key) {
	case store.MetaCreated:
		_, err := imp.tx.Exec(imp.ctx, "UPDATE meta SET value = $1 WHERE key = 'created'", string(r.Value))
		return err
	case store.MetaAuditHead:
		var h audit.Head
		if err := json.Unmarshal(r.Value, &h); err != nil {
			return fmt.Errorf("record meta %q: %w", r.Key, err)
		}
		imp.head = &h
	}
	return nil
}

// importTrail copies the trail's entries, sealed as they are, and moves
// the head to the last: it must be the head the records name.
func (imp *importer) importTrail(trail func(fn func(audit.Entry) error) error) error {
	var last audit.Head
	err := trail(func(e audit.Entry) error {
		if e.Seq != last.Seq+1 || e.Prev != last.Hash {
			return fmt.Errorf("audit entry %d does not follow entry %d", e.Seq, last.Seq)
		}
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if table := "audit_entries"; imp.table != table || len(imp.rows) >= importBatch {
			if err := imp.flush(); err != nil {
				return err
			}
			imp.table, imp.cols = table, []string{"seq", "at", "entry", "hash"}
		}
		imp.rows = append(imp.rows, []any{int64(e.Seq), e.Time, line, e.Hash})
		imp.counts[KindAudit]++
		last = audit.Head{Seq: e.Seq, Hash: e.Hash}
		return nil
	})
	if err != nil {
		return err
	}
	if err := imp.flush(); err != nil {
		return err
	}
	switch {
	case imp.head == nil && last.Seq > 0:
		return fmt.Errorf("%w: the store records no head of its audit trail, whose last entry is %d", ErrUnsettled, last.Seq)
	case imp.head != nil && *imp.head != last:
		return fmt.Errorf("%w: the audit trail ends at entry %d, the store's head is entry %d (%s)", ErrUnsettled, last.Seq, imp.head.Seq, shortHash(imp.head.Hash))
	}
	_, err = imp.tx.Exec(imp.ctx, "UPDATE audit_head SET seq = $1, hash = $2", int64(last.Seq), last.Hash)
	return err
}

// importRow checks a record of the embedded store and returns its row:
// the table, its columns, and the values, the record's JSON as it is
// with the columns SQL finds it by, derived as pgstore's methods derive
// them.
func importRow(r store.Record) (table string, cols []string, row []any, err error) {
	key := string(r.Key)
	data := bytes.Clone(r.Value)
	if !json.Valid(data) {
		return "", nil, nil, errors.New("not JSON")
	}
	lower := strings.ToLower
	switch r.Kind {
	case store.KindRules:
		_, err = ownKey(data, key, func(v deviceupdate.Rule) string { return v.ID })
		return "rules", []string{"id", "data"}, []any{key, data}, err
	case store.KindUpdates:
		v, err := ownKey(data, key, func(v deviceupdate.StoredUpdate) string { return updateKey(v.RuleKey, v.Version) })
		return "updates", []string{"key", "rule_id", "version", "data"}, []any{key, deviceupdate.RuleID(v.RuleKey), v.Version.String(), data}, err
	case store.KindInProgress:
		return "", nil, nil, fmt.Errorf("%w: an import or a files clear is in progress", ErrUnsettled)
	case store.KindTestDevices:
		v, err := ownKey(data, key, func(v deviceupdate.TestDevice) string { return lower(v.Name) })
		return "test_devices", []string{"name", "identifier", "data"}, []any{key, lower(v.Identifier()), data}, err
	case store.KindConfig:
		return "config", []string{"scope", "data"}, []any{key, data}, decode(data, &map[string]string{})
	case store.KindSites:
		_, err = ownKey(data, key, func(v deviceupdate.Site) string { return lower(v.Name) })
		return "sites", []string{"name", "data"}, []any{key, data}, err
	case store.KindDeviceConfigs:
		return "device_configs", []string{"device_id", "data"}, []any{key, data}, decode(data, &map[string]string{})
	case store.KindUsers:
		_, err = ownKey(data, key, func(v store.UserRecord) string { return lower(v.Name) })
		return "users", []string{"name", "data"}, []any{key, data}, err
	case store.KindAdmins:
		_, err = ownKey(data, key, func(v store.AdminRecord) string { return lower(v.Name) })
		return "admins", []string{"name", "data"}, []any{key, data}, err
	case store.KindTokens:
		var v deviceupdate.AdminToken
		if err = decode(data, &v); err == nil && len(r.Key) != sha256.Size {
			err = errors.New("its key is not a SHA-256")
		}
		return "admin_tokens", []string{"hash", "admin", "id", "data"}, []any{bytes.Clone(r.Key), lower(v.Admin), v.ID, data}, err
	case store.KindSessions:
		var v store.SessionRecord
		if err = decode(data, &v); err == nil && len(r.Key) != sha256.Size {
			err = errors.New("its key is not a SHA-256")
		}
		return "sessions", []string{"hash", "admin", "data"}, []any{bytes.Clone(r.Key), lower(v.Admin), data}, err
	case store.KindDevices:
		v, err := ownKey(data, key, func(v deviceupdate.Device) string { return v.ID })
		return "devices", []string{"id", "last_active", "data"}, []any{key, v.LastActive(), data}, err
	case store.KindRollouts:
		v, err := ownKey(data, key, func(v deviceupdate.Rollout) string { return v.RuleID })
		return "rollouts", []string{"rule_id", "id", "active", "data"}, []any{key, v.ID, v.Active(), data}, err
	case store.KindRolloutDevices:
		return "rollout_devices", []string{"rollout_id", "device_id", "data"}, []any{key, string(r.Sub), data}, decode(data, &deviceupdate.RolloutDevice{})
	}
	return "", nil, nil, fmt.Errorf("a kind of record this build does not know (%s)", r.Kind)
}

// ownKey decodes a record and checks that it is stored under the key the
// embedded store gives it, own(record).
func ownKey[T any](data []byte, key string, own func(T) string) (T, error) {
	var v T
	if err := decode(data, &v); err != nil {
		return v, err
	}
	if k := own(v); k != key {
		return v, fmt.Errorf("stored under another key than its own (%q)", k)
	}
	return v, nil
}

func decode(data []byte, dst any) error {
	if err := json.Unmarshal(data, dst); err != nil {
		return fmt.Errorf("not a record of its kind: %w", err)
	}
	return nil
}

// importLogs copies the records of device logs whose bytes are in the
// pool's file store.
func (imp *importer) importLogs(logs []devlogs.Record) error {
	rows := make([][]any, 0, len(logs))
	for _, r := range logs {
		if r.Key == "" || r.Size < 0 {
			return fmt.Errorf("device log %s: no bytes in the file store", r.Path())
		}
		rows = append(rows, []any{r.Path(), r.Type, r.Device, r.Name, r.Key, r.Size, r.Modified.UnixNano()})
	}
	if _, err := imp.tx.CopyFrom(imp.ctx, pgx.Identifier{"device_logs"}, strings.Split(strings.ReplaceAll(logColumns, " ", ""), ","), pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy device logs: %w", err)
	}
	if len(rows) > 0 {
		imp.counts[KindDeviceLogs] = len(rows)
	}
	return nil
}
