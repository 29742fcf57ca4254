package deviceupdate

import (
	"context"
	"io"
)

// BackupOptions choose what a backup holds besides the service's state.
type BackupOptions struct {
	// Logs adds the logs: the device logs phones uploaded and the daily
	// request logs of their polls.
	Logs bool
}

// Backup is a consistent copy of a running service's state, taken and
// held until it is written: the store as of one moment, the audit trail
// holding every entry of the changes in that store, the certificates, and
// the update files the store's records name.
type Backup interface {
	// WriteTo writes the backup as one tar stream (internal/backup/archive)
	// and returns the bytes written.
	WriteTo(w io.Writer) (int64, error)
	// Close releases what the copy holds.
	Close() error
}

// BackupService takes backups of the running service.
type BackupService interface {
	// Backup takes a consistent copy of the state, audited as the action
	// "backup" with who took it; the caller writes it and closes it.
	// Errors: EINTERNAL (the copy could not be taken, or its audit entry
	// not written: then no copy is handed out).
	Backup(ctx context.Context, opts BackupOptions, actor string) (Backup, error)
}
