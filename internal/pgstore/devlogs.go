package pgstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/devlogs"
)

// The device logs' index (devlogs.Index) of a pool: table device_logs
// (migration 0002). The logs' bytes are in the pool's file store, which
// devlogs reaches; here are only the rows that name them.

var _ devlogs.Index = (*DB)(nil)

// lockLogKeys is the first key of the advisory locks of the file store's
// objects that device logs name; the second is taken from the object's
// key. PutLog and DropUnnamed of one object wait for each other.
const lockLogKeys = lockClass + 1

// logKeyLock is the second key of an object's lock: its key's first 32
// bits (any 32 bits of a SHA-256 spread evenly).
func logKeyLock(key string) (int32, error) {
	b, err := hex.DecodeString(key)
	if err != nil || len(b) < 4 {
		return 0, fmt.Errorf("device log key of %d bytes is not a SHA-256", len(key))
	}
	return int32(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])), nil
}

const logColumns = "path, log_type, device, name, key, size, modified"

// scanLogs reads the rows of a query of logColumns.
func scanLogs(rows pgx.Rows) ([]devlogs.Record, error) {
	var out []devlogs.Record
	var r devlogs.Record
	var path string
	var modified int64
	_, err := pgx.ForEachRow(rows, []any{&path, &r.Type, &r.Device, &r.Name, &r.Key, &r.Size, &modified}, func() error {
		r.Modified = time.Unix(0, modified).UTC()
		out = append(out, r)
		return nil
	})
	return out, err
}

// queryLogs runs a query of logColumns outside any transaction.
func (db *DB) queryLogs(ctx context.Context, sql string, args ...any) ([]devlogs.Record, error) {
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return scanLogs(rows)
}

// PutLog implements devlogs.Index: the row of r's path, inserted or
// replaced in one serializable transaction, so that of two uploads of one
// path at once, the second replaces (and returns) the first's.
func (db *DB) PutLog(ctx context.Context, r devlogs.Record) (devlogs.Record, bool, error) {
	lock, err := logKeyLock(r.Key)
	if err != nil {
		return devlogs.Record{}, false, err
	}
	var old devlogs.Record
	var replaced bool
	err = db.serializable(func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", lockLogKeys, lock); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT "+logColumns+" FROM device_logs WHERE path = $1", r.Path())
		if err != nil {
			return err
		}
		found, err := scanLogs(rows)
		if err != nil {
			return err
		}
		old, replaced = devlogs.Record{}, len(found) == 1
		if replaced {
			old = found[0]
		}
		_, err = tx.Exec(ctx, `INSERT INTO device_logs (`+logColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (path) DO UPDATE SET key = excluded.key, size = excluded.size, modified = excluded.modified`,
			r.Path(), r.Type, r.Device, r.Name, r.Key, r.Size, r.Modified.UnixNano())
		return err
	})
	if err != nil {
		return devlogs.Record{}, false, fmt.Errorf("record device log: %w", err)
	}
	return old, replaced, nil
}

// FindLog implements devlogs.Index.
func (db *DB) FindLog(ctx context.Context, path string) (devlogs.Record, bool, error) {
	found, err := db.queryLogs(ctx, "SELECT "+logColumns+" FROM device_logs WHERE path = $1", path)
	if err != nil || len(found) == 0 {
		return devlogs.Record{}, false, err
	}
	return found[0], true, nil
}

// PageLogs implements devlogs.Index: newest first, then by path, after
// q.After's place in that order.
func (db *DB) PageLogs(ctx context.Context, q devlogs.Query) ([]deviceupdate.DeviceLog, error) {
	var afterAt, limit any // NULL: from the start, all
	afterPath := ""
	if q.After != nil {
		afterAt, afterPath = q.After.Modified.UnixNano(), q.After.Path()
	}
	if q.Limit > 0 {
		limit = q.Limit
	}
	found, err := db.queryLogs(ctx, "SELECT "+logColumns+` FROM device_logs
WHERE ($1 = '' OR device = $1) AND ($2 = '' OR lower(log_type) = lower($2))
	AND ($3::bigint IS NULL OR modified < $3 OR (modified = $3 AND path > $4))
ORDER BY modified DESC, path LIMIT $5`, q.Device, q.Type, afterAt, afterPath, limit)
	if err != nil {
		return nil, err
	}
	out := make([]deviceupdate.DeviceLog, len(found))
	for i, r := range found {
		out[i] = r.DeviceLog
	}
	return out, nil
}

// LogsBefore implements devlogs.Index.
func (db *DB) LogsBefore(ctx context.Context, cutoff time.Time) ([]devlogs.Record, error) {
	return db.queryLogs(ctx, "SELECT "+logColumns+" FROM device_logs WHERE modified < $1 ORDER BY modified, path", cutoff.UnixNano())
}

// LogsOverQuota implements devlogs.Index: the rows past the quota when
// the newest are counted first.
func (db *DB) LogsOverQuota(ctx context.Context, quota int64) ([]devlogs.Record, error) {
	total, err := db.LogBytes(ctx)
	if err != nil || total <= quota {
		return nil, err
	}
	return db.queryLogs(ctx, "SELECT "+logColumns+` FROM (
	SELECT *, sum(size) OVER (ORDER BY modified DESC, path) AS newer FROM device_logs) AS x
WHERE newer > $1 ORDER BY modified, path`, quota)
}

// DeleteLogs implements devlogs.Index: one statement deletes the rows
// that are still as rs has them.
func (db *DB) DeleteLogs(ctx context.Context, rs []devlogs.Record) ([]devlogs.Record, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	paths, keys, modified := make([]string, len(rs)), make([]string, len(rs)), make([]int64, len(rs))
	for i, r := range rs {
		paths[i], keys[i], modified[i] = r.Path(), r.Key, r.Modified.UnixNano()
	}
	gone, err := db.queryLogs(ctx, `DELETE FROM device_logs AS d
USING unnest($1::text[], $2::text[], $3::bigint[]) AS x(path, key, modified)
WHERE d.path = x.path AND d.key = x.key AND d.modified = x.modified
RETURNING d.path, d.log_type, d.device, d.name, d.key, d.size, d.modified`, paths, keys, modified)
	if err != nil {
		return nil, fmt.Errorf("delete device logs: %w", err)
	}
	return gone, nil
}

// LogBytes implements devlogs.Index.
func (db *DB) LogBytes(ctx context.Context) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, "SELECT coalesce(sum(size), 0)::bigint FROM device_logs").Scan(&n)
	return n, err
}

// DropUnnamed implements devlogs.Index: under the object's lock, which a
// PutLog naming it holds until it commits, drop runs when no row names
// the object, and the lock is held until drop returns.
func (db *DB) DropUnnamed(ctx context.Context, key string, drop func() error) error {
	lock, err := logKeyLock(key)
	if err != nil {
		return err
	}
	return db.transact(pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", lockLogKeys, lock); err != nil {
			return err
		}
		var named bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM device_logs WHERE key = $1)", key).Scan(&named); err != nil || named {
			return err
		}
		return drop()
	})
}
