package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate/internal/backup"
	"github.com/deviceupdate/deviceupdate/internal/backup/archive"
	"github.com/deviceupdate/deviceupdate/internal/fsutil"
	"github.com/deviceupdate/deviceupdate/internal/handler"
)

// secretEntries are the backup's entries that hold secrets.
var secretEntries = []string{"certs/ca.key", "certs/server.key", "certs/admin.token"}

func newBackupCommand(stdout io.Writer) *cobra.Command {
	var out string
	var logs bool
	cmd := &cobra.Command{
		Use:   "backup -o FILE [--logs]",
		Short: "Write a consistent backup of the running service to FILE",
		Long: `Write a consistent copy of a running server's state to FILE: its store (rules,
updates, test devices, users, configuration, sites, inventory), its admin audit
trail, its certificates, keys and admin token, and the update files its records
name; with --logs also the device logs and the request logs. The server streams
it (admin API, GET /admin/api/v1/backup); the command checks every byte against
the backup's manifest as it arrives, writes FILE.tmp (mode 0600) and renames it
to FILE only when the backup is whole. FILE must not exist. The backup holds the
CA and server keys and the admin token: keep it as secret as the server.
'deviceupdate restore' lays it into empty folders.`,
		Example: `  deviceupdate backup -o /srv/backups/deviceupdate-$(date +%Y%m%d).tar
  deviceupdate backup -o state.tar --logs --server https://updates.contoso.com`,
		Args: exactArgs(0, "no arguments, only -o FILE"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "the file to write (required; never overwritten)")
	cmd.Flags().BoolVar(&logs, "logs", false, "also back up the device logs and the request logs")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if out == "" {
			return usageError{fmt.Errorf("backup needs -o FILE (see 'deviceupdate backup --help')")}
		}
		if _, err := os.Lstat(out); err == nil {
			return fmt.Errorf("%s exists: a backup never overwrites a file; choose another -o", out)
		}
		c, err := connect()
		if err != nil {
			return err
		}
		path := "/backup"
		if logs {
			path += "?logs=true"
		}
		resp, err := c.Stream(cmd.Context(), path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		sum, err := receiveBackup(resp.Body, out, func() string { return resp.Trailer.Get(handler.BackupErrorTrailer) })
		if err != nil {
			return err
		}
		abs, _ := filepath.Abs(out)
		fmt.Fprintf(stdout, "wrote %s (%s, %s, taken %s)\n", abs, plural(sum.bytes, "byte"), plural(int64(sum.files), "file"), sum.created.Format(time.RFC3339))
		if len(sum.secrets) > 0 {
			fmt.Fprintf(stdout, "it holds secrets (%s): mode 0600; keep it as secret as the server\n", strings.Join(sum.secrets, ", "))
		}
		return nil
	}
	return cmd
}

// backupSummary is what receiveBackup found in a backup.
type backupSummary struct {
	bytes   int64
	files   int
	created time.Time
	secrets []string
}

// receiveBackup writes body to out.tmp (mode 0600), verifying it as an
// archive, and renames it to out once the manifest vouches for every byte.
// Any failure removes out.tmp; serverErr gives the server's reason when it
// stopped the stream itself.
func receiveBackup(body io.Reader, out string, serverErr func() string) (sum backupSummary, err error) {
	tmp := out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return sum, fmt.Errorf("write %s: %w; choose another -o", tmp, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil { // a stale .tmp keeps its mode otherwise
		return sum, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	tee := io.TeeReader(body, bw)
	if err := verifyBackup(tee, &sum); err != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(body, 1<<20)) // reach the trailer, if the server sent one
		if why := serverErr(); why != "" {
			return sum, fmt.Errorf("backup incomplete: the server stopped it: %s; %s was not written", why, out)
		}
		return sum, fmt.Errorf("backup incomplete: %w; %s was not written", err, out)
	}
	if _, err := io.Copy(bw, body); err != nil { // the tar's end blocks
		return sum, fmt.Errorf("backup incomplete: %w; %s was not written", err, out)
	}
	if err := bw.Flush(); err != nil {
		return sum, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return sum, fmt.Errorf("write %s: %w", tmp, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return sum, err
	}
	sum.bytes = fi.Size()
	if err := f.Close(); err != nil {
		return sum, fmt.Errorf("write %s: %w", tmp, err)
	}
	// A link, not a rename: it refuses to replace a file made meanwhile.
	if err := os.Link(tmp, out); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return sum, fmt.Errorf("%s appeared during the backup: a backup never overwrites a file; choose another -o", out)
		}
		return sum, fmt.Errorf("write %s: %w", out, err)
	}
	_ = os.Remove(tmp)
	return sum, fsutil.SyncDir(filepath.Dir(out))
}

// verifyBackup reads a backup through, checking it against its manifest.
func verifyBackup(r io.Reader, sum *backupSummary) error {
	ar, err := archive.NewReader(r)
	if err != nil {
		return err
	}
	sum.created = ar.Header().Created
	for {
		f, err := ar.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		sum.files++
		for _, s := range secretEntries {
			if f.Name == s {
				sum.secrets = append(sum.secrets, strings.TrimPrefix(s, "certs/"))
			}
		}
	}
}

func newRestoreCommand(stdout io.Writer) *cobra.Command {
	def := DefaultConfig()
	data, certsDir := def.Data, def.Certs
	cmd := &cobra.Command{
		Use:   "restore FILE [--data DIR] [--certs DIR]",
		Short: "Lay a backup into empty data and certs folders",
		Long: `Lay a backup written by 'deviceupdate backup' into --data and --certs, which
must be empty or absent (stop the server and move the old folders aside
first). It runs here, with no server. Every byte is checked against the
backup's manifest and the store against bbolt's consistency check before
anything is put in place: the files go into temporary folders beside the
targets, which are renamed into place only when both are complete, so a
damaged or truncated backup leaves the folders as they were. Start 'serve'
on the restored folders afterwards.`,
		Example: `  deviceupdate restore state.tar --data /var/lib/deviceupdate/DeviceUpdateFiles --certs /var/lib/deviceupdate/certs`,
		Args:    exactArgs(1, "one FILE"),
	}
	cmd.Flags().StringVar(&data, "data", data, "the data folder to restore into: empty or absent")
	cmd.Flags().StringVar(&certsDir, "certs", certsDir, "the certs folder to restore into: empty or absent")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f, err := os.Open(args[0])
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		defer f.Close()
		// Ctrl-C or SIGTERM stops the restore mid-file (the backup is
		// closed under it), and it cleans up after itself.
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		defer context.AfterFunc(ctx, func() { f.Close() })()
		res, err := backup.Restore(ctx, bufio.NewReaderSize(f, 1<<20), data, certsDir)
		if ctx.Err() != nil {
			return fmt.Errorf("restore %s: interrupted; nothing was restored", args[0])
		}
		if err != nil {
			return fmt.Errorf("restore %s: %w; nothing was restored", args[0], err)
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(cmd.ErrOrStderr(), "deviceupdate: warning: %s\n", w)
		}
		fmt.Fprintf(stdout, "restored %s (%s, %s) into %s and %s: the state of %s (deviceupdate %s) as of %s\n",
			args[0], plural(int64(res.Files), "file"), plural(res.Bytes, "byte"), data, certsDir,
			orUnknown(res.Meta.Host), orUnknown(res.Meta.Server), res.Header.Created.Format(time.RFC3339))
		fmt.Fprintf(stdout, "start it with: deviceupdate serve --data %s --certs %s\n", data, certsDir)
		return nil
	}
	return cmd
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
