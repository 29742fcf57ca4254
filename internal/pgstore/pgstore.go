// Package pgstore keeps a pool's state in PostgreSQL (SPEC §11): the same
// records, methods and domain errors as the embedded bbolt store
// (internal/store), so that any number of front ends serve one fleet.
//
// Every change is one SERIALIZABLE transaction, retried when PostgreSQL
// reports a conflict with another node's: the read-check-write of each
// method (a name already taken, a rule changed since it was read) then
// holds across the pool as it holds in bbolt's single writer. A committed
// change that can alter a poll's answer sends NOTIFY deviceupdate, inside
// its transaction; every node LISTENs and advances its Generation, so its
// caches are rebuilt within a second of a change made on another.
package pgstore

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// ErrNewerSchema means the database was migrated by a newer build.
var ErrNewerSchema = errors.New("the database was migrated by a newer deviceupdate")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

// loadMigrations reads the embedded migrations, which must be numbered
// 1, 2, 3… without a gap.
func loadMigrations(files fs.FS) ([]migration, error) {
	names, err := fs.Glob(files, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]migration, 0, len(names))
	for i, path := range names {
		base := path[strings.LastIndexByte(path, '/')+1:]
		m := migrationName.FindStringSubmatch(base)
		if m == nil {
			return nil, fmt.Errorf("migration %s: want a name like 0002_what.sql", base)
		}
		v, _ := strconv.Atoi(m[1])
		if v != i+1 {
			return nil, fmt.Errorf("migration %s: numbered %d, want %d", base, v, i+1)
		}
		data, err := fs.ReadFile(files, path)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(data)})
	}
	return out, nil
}

// SchemaVersion is the newest schema this build knows: the number of its
// migrations.
var SchemaVersion = func() int {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		panic("pgstore: " + err.Error()) // the embedded files are checked by TestMigrationsNumbered
	}
	return len(ms)
}()

// Advisory locks are taken in the two-key space with this first key, so
// that they meet no other application's that share the database.
const (
	lockClass     = 0x64750001 // "du" and a number: deviceupdate's locks
	lockMigration = 0          // second key of the migrations' lock
)

// channel is the NOTIFY channel every node listens on. A notification's
// payload is "<node> <what>": a node ignores its own.
const channel = "deviceupdate"

// Options tune Open. The zero value is valid.
type Options struct {
	// Now stamps records and audit entries; nil means time.Now.
	Now func() time.Time
	// MaxConns bounds the connections of the node's pool; 0 means
	// pgxpool's default (4, or the number of CPUs when more).
	MaxConns int32
}

// DB is the open store. It is safe for concurrent use.
//
// Audited hands its change a DB bound to the change's transaction (tx
// set): the same methods, reading and writing in that transaction.
type DB struct {
	pool *pgxpool.Pool
	node string // random: tells this node's notifications from others'
	now  func() time.Time
	gen  atomic.Uint64
	cap  deviceCap       // the inventory's cap and count (devices.go)
	ctx  context.Context // cancelled by Close
	stop context.CancelFunc
	done chan struct{} // closed when the listener has ended

	tx      pgx.Tx    // the transaction a bound DB works in, else nil
	root    *DB       // the DB a bound one was made from
	pending *[]string // what a bound DB changed, notified when it commits
	commits *[]func() // what a bound DB runs once it commits (afterCommit)

	auth store.Passwords // checks passwords, remembers users' (users.go)

	broken atomic.Pointer[audit.BrokenError] // as AuditEntries last found

	hooksMu sync.Mutex
	hooks   map[string][]func() // run when another node notifies what
}

var _ store.Store = (*DB)(nil)

// Open connects to the database of dsn (a postgres:// URL or key=value
// string), applies the migrations it lacks, under an advisory lock so
// that nodes starting together migrate once, and starts listening for the
// other nodes' changes. A database migrated by a newer build is refused
// with ErrNewerSchema, and nothing is changed.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	node := make([]byte, 8)
	_, _ = rand.Read(node)
	db := &DB{pool: pool, node: hex.EncodeToString(node), now: opts.Now, hooks: map[string][]func(){}, done: make(chan struct{})}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	listener, err := db.listenConn(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	db.ctx, db.stop = context.WithCancel(context.Background())
	// Another node's change of users ends what this one remembers of
	// them, as this node's own does (users.go).
	db.onNotify(notifyUsers, db.auth.Forget)
	go db.listen(listener)
	return db, nil
}

// migrate brings the schema to SchemaVersion.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", lockClass, lockMigration); err != nil {
		return fmt.Errorf("open store: wait for the migrations' lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1, $2)", lockClass, lockMigration); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // a closed session holds no lock
		}
	}()
	_, err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	var cur int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&cur); err != nil {
		return fmt.Errorf("open store: read the schema version: %w", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("open store: %w (schema %d, this build knows up to %d); run that build or a newer one", ErrNewerSchema, cur, len(ms))
	}
	for _, m := range ms[cur:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			if m.version == 1 {
				if _, err := tx.Exec(ctx, "INSERT INTO meta (key, value) VALUES ('created', $1)", db.now().UTC().Format(time.RFC3339Nano)); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("open store: migration %s: %w", m.name, err)
		}
	}
	return nil
}

// SchemaVersion returns the schema version the database is at.
func (db *DB) SchemaVersion() (int, error) {
	var v int
	if err := db.pool.QueryRow(db.context(), "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Ping checks that the database answers. Health checks use it.
func (db *DB) Ping() error {
	if err := db.pool.Ping(db.context()); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// Close stops listening and closes the connections, once every lock
// TryLock gave is unlocked.
func (db *DB) Close() error {
	db.stop()
	<-db.done
	db.pool.Close()
	return nil
}

// context is the context of the store's queries: cancelled by Close.
func (db *DB) context() context.Context {
	if db.ctx == nil {
		return context.Background()
	}
	return db.ctx
}

// Generation changes whenever rules, updates, test devices, sites or the
// configuration change, on this node or, within a second, on another
// (inventory writes do not count), so a reader can cache what it derives
// from them and know when to look again.
func (db *DB) Generation() uint64 { return db.gen.Load() }

// listenConn opens the listener's own connection (a pooled one would go
// back to the pool and miss notifications) and LISTENs on it.
func (db *DB) listenConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

// listen advances the generation on each change another node notifies
// and runs the hooks of what it changed. When the connection drops, it
// reconnects, once a second, and advances the generation once it listens
// again: what changed meanwhile went unnoticed.
func (db *DB) listen(conn *pgx.Conn) {
	defer close(db.done)
	for {
		for conn != nil {
			n, err := conn.WaitForNotification(db.ctx)
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				break
			}
			node, what, _ := strings.Cut(n.Payload, " ")
			if node == db.node {
				continue
			}
			db.gen.Add(1)
			db.runHooks(what)
		}
		select {
		case <-db.ctx.Done():
			return
		case <-time.After(time.Second):
		}
		c, err := db.listenConn(db.ctx)
		if err == nil {
			conn = c
			db.gen.Add(1)
			db.runHooks("")
		}
	}
}

// onNotify registers fn to run when another node notifies a change of
// what (write's what), and when the listener missed changes (it
// reconnected). A node's own changes do not run it: the method that
// commits one does what fn does itself.
func (db *DB) onNotify(what string, fn func()) {
	db.hooksMu.Lock()
	defer db.hooksMu.Unlock()
	db.hooks[what] = append(db.hooks[what], fn)
}

// runHooks runs the hooks of what, or all of them for "".
func (db *DB) runHooks(what string) {
	db.hooksMu.Lock()
	var fns []func()
	for w, hs := range db.hooks {
		if what == "" || w == what {
			fns = append(fns, hs...)
		}
	}
	db.hooksMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// maxTries bounds the attempts of a transaction that conflicts with
// others (serialization failures and deadlocks are retried).
const maxTries = 20

// retryable reports whether err is PostgreSQL's word that the transaction
// conflicted with another and may succeed when run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// write runs fn in a SERIALIZABLE transaction, or in the one db is bound
// to, retrying it on a conflict. When what is not "", the change can
// alter a poll's answer: the transaction notifies it to the other nodes,
// and the generation advances once it commits (for a bound DB, when
// Audited commits). fn may run more than once: it must set its results
// afresh each time.
func (db *DB) write(what string, fn func(tx pgx.Tx) error) error {
	if db.tx != nil {
		if err := fn(db.tx); err != nil {
			return err
		}
		if what != "" {
			*db.pending = append(*db.pending, what)
		}
		return nil
	}
	err := db.serializable(func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if what == "" {
			return nil
		}
		return db.notify(tx, what)
	})
	if err == nil && what != "" {
		db.gen.Add(1)
	}
	return err
}

// afterCommit runs fn with the unbound DB once what db wrote is committed:
// at once, or when the Audited change db is bound to commits.
func (db *DB) afterCommit(fn func(root *DB)) {
	if db.tx == nil {
		fn(db)
		return
	}
	root := db.root
	*db.commits = append(*db.commits, func() { fn(root) })
}

// serializable runs fn in a SERIALIZABLE transaction, retried on a
// conflict with a short random pause that grows with each try.
func (db *DB) serializable(fn func(tx pgx.Tx) error) error {
	return db.transact(pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
}

// transact runs fn in a transaction of opts, retried as serializable
// retries it.
func (db *DB) transact(opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	ctx := db.context()
	var err error
	for try := 1; ; try++ {
		err = pgx.BeginTxFunc(ctx, db.pool, opts, fn)
		if !retryable(err) || try == maxTries {
			return err
		}
		var b [1]byte
		_, _ = rand.Read(b[:])
		select {
		case <-time.After(time.Duration(try) * time.Duration(1+int(b[0])%8) * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}

// notify sends what, when tx commits, to the other nodes.
func (db *DB) notify(tx pgx.Tx, what string) error {
	_, err := tx.Exec(db.context(), "SELECT pg_notify($1, $2)", channel, db.node+" "+what)
	return err
}

// view runs fn in a read-only REPEATABLE READ transaction, so that its
// reads see one state, or in the transaction db is bound to.
func (db *DB) view(fn func(tx pgx.Tx) error) error {
	if db.tx != nil {
		return fn(db.tx)
	}
	return pgx.BeginTxFunc(db.context(), db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// TryLock takes the pool-wide lock of name, for work that must run once
// per pool (a background loop's round: log clean-up, rollout evaluation):
// ok is false when another node holds it. The lock lives on a connection
// of its own until unlock; a node that dies loses it with its connection.
func (db *DB) TryLock(ctx context.Context, name string) (unlock func(), ok bool) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, false
	}
	key := lockKey(name)
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", lockClass, key).Scan(&ok); err != nil || !ok {
		conn.Release()
		return nil, false
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx := context.Background()
			if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", lockClass, key); err != nil {
				conn.Conn().Close(ctx) // a closed session holds no lock; the pool drops it
			}
			conn.Release()
		})
	}, true
}

// lockKey maps a lock's name to the second key of its advisory lock,
// never the migrations'.
func lockKey(name string) int32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	k := int32(h.Sum32())
	if k == lockMigration {
		k = 1
	}
	return k
}

// getJSON reads the jsonb record one query returns into dst; it reports
// false when there is no row.
func getJSON(ctx context.Context, tx pgx.Tx, dst any, sql string, args ...any) (bool, error) {
	var raw []byte
	err := tx.QueryRow(ctx, sql, args...).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return false, fmt.Errorf("decode record: %w", err)
	}
	return true, nil
}

// listJSON decodes the jsonb records a query returns, one per row (its
// first column).
func listJSON[T any](ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]T, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var out []T
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&raw}, func() error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode record: %w", err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// jsonb encodes a record for a jsonb column.
func jsonb(v any) ([]byte, error) { return json.Marshal(v) }

// jsonUnmarshal decodes a stored record.
func jsonUnmarshal(raw []byte, dst any) error {
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	return nil
}
