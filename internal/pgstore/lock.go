package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// Locker returns the pool-wide lock of name as an updatestore.Locker:
// what adds update files to a pool's file store (an import) and what
// deletes them (files clear) wait for each other on every node.
func (db *DB) Locker(name string) updatestore.Locker {
	return poolLocker{db: db, key: lockKey(name)}
}

// poolLocker waits for an advisory lock with pg_advisory_lock.
type poolLocker struct {
	db  *DB
	key int32
}

// Lock waits for the lock on a connection of its own, opened for it and
// closed by unlock: a wait holds none of the node's pooled connections,
// which polls need, and a lock cannot outlive its holder (a node that
// dies closes its connection, and the server ends its locks). When ctx
// ends first, the wait is cancelled and the connection closed.
func (l poolLocker) Lock(ctx context.Context) (func(), error) {
	conn, err := pgx.ConnectConfig(ctx, l.db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("take the pool's lock: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", lockClass, l.key); err != nil {
		conn.Close(context.Background())
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("take the pool's lock: %w", err)
	}
	return func() {
		// Closing the session ends its locks; unlocking first spares the
		// server the wait for the connection's end.
		ctx := context.Background()
		_, _ = conn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", lockClass, l.key)
		conn.Close(ctx)
	}, nil
}
