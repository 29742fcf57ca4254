package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/blobstore"
	"github.com/deviceupdate/deviceupdate/internal/devlogs"
	"github.com/deviceupdate/deviceupdate/internal/pgstore"
	"github.com/deviceupdate/deviceupdate/internal/pool"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// settleAdvice is what to do about a single server's state between two
// steps of a change: its next start settles it.
const settleAdvice = "start the server once and stop it (it finishes or undoes interrupted changes as it starts), then migrate again"

// migrated is what `migrate` moved, as --json prints it.
type migrated struct {
	Store       string         `json:"store"`
	Files       string         `json:"files"`
	Records     map[string]int `json:"records"` // by kind: the embedded store's bucket names, and "audit"
	Updates     int            `json:"updates"`
	UpdateFiles int            `json:"updateFiles"`
	FileBytes   int64          `json:"fileBytes"`
	AuditHead   audit.Head     `json:"auditHead"`
	// DeviceLogs counts the device logs moved: their bytes into the file
	// store, their records into the database.
	DeviceLogs     int   `json:"deviceLogs"`
	DeviceLogBytes int64 `json:"deviceLogBytes"`
}

func newMigrateCommand(stdout io.Writer) *cobra.Command {
	data := DefaultConfig().Data
	var to, files string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "migrate --to postgres://USER@HOST:PORT/DATABASE --files DIR|s3://BUCKET/PREFIX [--data DIR]",
		Short: "Move a stopped single server's state into an empty pool",
		Long: `Move a single server's state into a pool (SPEC §11): every record of its
store in --data (rules, packages, test devices, settings, sites, device
settings, users and admins with their password hashes, admin tokens and
console sessions, the inventory, rollouts) is copied as it is into the
PostgreSQL database --to, with the admin audit trail, each entry with its
sequence number and hashes, so that the chain still verifies there. The
update files go into the pool's file store --files, each checked against
its SHA-256.

Stop the server first: migrate takes the store's lock and refuses while a
serve holds it. The database must be empty (a new one: CREATE DATABASE);
the records are copied in one transaction, so a failure or an interrupted
migrate leaves it empty, and the files, stored by their SHA-256, may stay.
Device logs go into the file store, their records into the same
transaction. Then start the pool's front ends with
'serve --store ... --files ...'. The password comes from PGPASSWORD or
~/.pgpass; S3 credentials as for serve.`,
		Example: `  deviceupdate migrate --data /var/lib/deviceupdate/DeviceUpdateFiles \
    --to postgres://deviceupdate@db.example.com:5432/deviceupdate --files /mnt/pool/files`,
		Args: exactArgs(0, "no arguments"),
	}
	cmd.Flags().StringVar(&data, "data", data, "the stopped single server's data folder")
	cmd.Flags().StringVar(&to, "to", "", "the pool's PostgreSQL database, empty: postgres://USER@HOST:PORT/DATABASE")
	cmd.Flags().StringVar(&files, "files", "", "the pool's file store: a shared folder, or s3://BUCKET/PREFIX")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was moved as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if to == "" || files == "" {
			return usageError{fmt.Errorf("migrate needs --to postgres://... and --files DIR|s3://... (see '%s --help')", cmd.CommandPath())}
		}
		where, err := pool.CheckURL(to)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		loc, err := blobstore.ParseLocation(files)
		if err != nil {
			return fmt.Errorf("--files %q: %w", files, err)
		}
		// Ctrl-C or SIGTERM ends the transaction unmade.
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		res, err := migrate(ctx, data, to, loc)
		if ctx.Err() != nil {
			return fmt.Errorf("migrate: interrupted; %s is as it was", where)
		}
		if err != nil {
			return fmt.Errorf("migrate into %s: %w", where, err)
		}
		res.Store = where
		if asJSON {
			return writeJSON(stdout, res)
		}
		r := res.Records
		fmt.Fprintf(stdout, "migrated %s into %s: %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s; %s (%s) into %s; %s, head %d\n",
			data, where, plural(int64(r[store.KindRules]), "rule"), plural(int64(res.Updates), "update"),
			plural(int64(r[store.KindTestDevices]), "test device"), plural(int64(r[store.KindConfig]), "setting scope"),
			plural(int64(r[store.KindSites]), "site"), plural(int64(r[store.KindDeviceConfigs]), "device setting"),
			plural(int64(r[store.KindUsers]), "user"), plural(int64(r[store.KindAdmins]), "admin"),
			plural(int64(r[store.KindTokens]), "admin token"), plural(int64(r[store.KindSessions]), "console session"),
			plural(int64(r[store.KindDevices]), "device"), plural(int64(r[store.KindRollouts]), "rollout"),
			plural(int64(r[store.KindRolloutDevices]), "rollout device state"),
			plural(int64(res.UpdateFiles), "update file"), plural(res.FileBytes, "byte"), res.Files,
			auditEntries(r[pgstore.KindAudit]), res.AuditHead.Seq)
		fmt.Fprintf(stdout, "and %s (%s) into the file store\n", plural(int64(res.DeviceLogs), "device log"), plural(res.DeviceLogBytes, "byte"))
		return nil
	}
	return cmd
}

// migrate copies the single server's state in data into the pool: the
// update files first (stored by their SHA-256, harmless when the records
// then fail), then every record and the audit trail in one transaction.
func migrate(ctx context.Context, data, dsn string, loc blobstore.Location) (*migrated, error) {
	path := filepath.Join(data, store.FileName)
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		return nil, fmt.Errorf("no single server's store in --data %s (%s missing or empty)", data, store.FileName)
	}
	src, err := store.Open(data, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("a serve holds the store in --data %s: stop it first; migrate copies a stopped server's state", data)
	}
	if err != nil {
		return nil, err
	}
	defer src.Close()
	trailPath := filepath.Join(data, filepath.FromSlash(audit.Dir), audit.FileName)
	updates, head, err := checkSettled(src, trailPath)
	if err != nil {
		return nil, err
	}
	pg, err := pgstore.Open(ctx, dsn, pgstore.Options{MaxConns: 2})
	if err != nil {
		return nil, fmt.Errorf("%w; check that PostgreSQL answers there and lets that user connect", err)
	}
	defer pg.Close()
	if err := pg.CheckEmpty(ctx); err != nil {
		return nil, emptyPoolAdvice(err)
	}
	blobs, err := blobstore.Open(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("--files %s: %w", loc, err)
	}
	res := &migrated{Files: loc.String(), Updates: len(updates), AuditHead: head}
	for i := range updates {
		n, err := updatestore.PutShared(ctx, data, blobs, &updates[i], zap.NewNop())
		if err != nil {
			return nil, fmt.Errorf("%w; nothing was written to the database", err)
		}
		res.FileBytes += n
		res.UpdateFiles += len(updates[i].Files())
	}
	logs, logBytes, err := putDeviceLogs(ctx, filepath.Join(data, "Logs", "Client"), blobs)
	if err != nil {
		return nil, fmt.Errorf("%w; nothing was written to the database", err)
	}
	res.Records, err = pg.Import(ctx, src.Export, func(fn func(audit.Entry) error) error {
		return readTrail(trailPath, fn)
	}, logs)
	switch {
	case errors.Is(err, pgstore.ErrNotEmpty):
		return nil, emptyPoolAdvice(err)
	case errors.Is(err, pgstore.ErrUnsettled):
		return nil, fmt.Errorf("%w: %s", err, settleAdvice)
	case err != nil:
		return nil, fmt.Errorf("%w; the database is as it was", err)
	}
	res.DeviceLogs, res.DeviceLogBytes = res.Records[pgstore.KindDeviceLogs], logBytes
	delete(res.Records, pgstore.KindDeviceLogs)
	return res, nil
}

func auditEntries(n int) string {
	if n == 1 {
		return "1 audit entry"
	}
	return fmt.Sprintf("%d audit entries", n)
}

func emptyPoolAdvice(err error) error {
	return fmt.Errorf("%w; migrate moves a single server into an empty pool: give it a new database (CREATE DATABASE)", err)
}

// checkSettled reads the store's update records and checks, before any
// file is put in the pool, that nothing is between two steps: no import
// or files clear in progress, and an audit trail that is intact and ends
// at the head the store records.
func checkSettled(src *store.DB, trailPath string) ([]deviceupdate.StoredUpdate, audit.Head, error) {
	var updates []deviceupdate.StoredUpdate
	var head *audit.Head
	err := src.Export(func(r store.Record) error {
		switch {
		case r.Kind == store.KindInProgress:
			return fmt.Errorf("%w: an import or a files clear in %s was interrupted; %s", pgstore.ErrUnsettled, src.Path(), settleAdvice)
		case r.Kind == store.KindUpdates:
			var u deviceupdate.StoredUpdate
			if err := json.Unmarshal(r.Value, &u); err != nil {
				return fmt.Errorf("update record %q: %w", r.Key, err)
			}
			updates = append(updates, u)
		case r.Kind == store.KindMeta && string(r.Key) == store.MetaAuditHead:
			head = new(audit.Head)
			return json.Unmarshal(r.Value, head)
		}
		return nil
	})
	if err != nil {
		return nil, audit.Head{}, err
	}
	var last audit.Head
	if err := readTrail(trailPath, func(e audit.Entry) error {
		last = audit.Head{Seq: e.Seq, Hash: e.Hash}
		return nil
	}); err != nil {
		return nil, last, err
	}
	switch {
	case head == nil && last.Seq == 0, head != nil && *head == last:
		return updates, last, nil
	case head == nil || last.Seq > head.Seq:
		// Written, but their change not committed; the start marks them.
		return nil, last, fmt.Errorf("%w: the audit trail %s runs past the head the store records; %s", pgstore.ErrUnsettled, trailPath, settleAdvice)
	}
	return nil, last, fmt.Errorf("the audit trail %s ends at entry %d, the store's head is entry %d: entries were removed or altered; migrate copies an intact trail: see 'deviceupdate audit verify'",
		trailPath, last.Seq, head.Seq)
}

// readTrail hands fn every entry of the audit trail file, refusing a
// broken trail: migrate copies only a chain that verifies. No trail file
// is an empty trail.
func readTrail(path string, fn func(audit.Entry) error) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read audit trail: %w", err)
	}
	defer f.Close()
	var ferr error
	brk, err := audit.Read(f, func(e audit.Entry, verified bool) {
		if ferr == nil && verified {
			ferr = fn(e)
		}
	})
	switch {
	case err != nil:
		return fmt.Errorf("read audit trail %s: %w", path, err)
	case brk != nil:
		return fmt.Errorf("the audit trail %s does not verify (%w); migrate copies an intact trail: see 'deviceupdate audit verify'", path, brk)
	}
	return ferr
}

// putDeviceLogs puts the bytes of the device logs in dir, the single
// server's Logs/Client, into the pool's file store, and returns their
// records for the database; none when dir does not exist.
func putDeviceLogs(ctx context.Context, dir string, blobs blobstore.Store) (recs []devlogs.Record, bytes int64, err error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	logs, file, err := devlogs.StoredLogs(dir)
	if err != nil {
		return nil, 0, err
	}
	for _, l := range logs {
		key, err := putFile(ctx, blobs, file(l), l.Size)
		if err != nil {
			return nil, bytes, fmt.Errorf("device log %s: %w", l.Path(), err)
		}
		recs = append(recs, devlogs.Record{DeviceLog: l, Key: key})
		bytes += l.Size
	}
	return recs, bytes, nil
}

// putFile puts the file at path, of size bytes, into blobs and returns
// its key.
func putFile(ctx context.Context, blobs blobstore.Store, path string, size int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return blobs.Put(ctx, f, size, "")
}
