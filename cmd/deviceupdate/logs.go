package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
)

func newLogsCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("logs", "List, fetch and clear the logs phones uploaded",
		newLogsListCommand(stdout), newLogsGetCommand(stdout), newLogsClearCommand(stdout))
}

func newLogsListCommand(stdout io.Writer) *cobra.Command {
	var device, logType string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list [--device ID] [--type T]",
		Short:   "List the stored device logs, newest first (fetched and printed a page at a time)",
		Example: "  deviceupdate logs list --device 00-04-F2-AA-BB-CC\n  deviceupdate logs list --type Watson --json",
		Args:    exactArgs(0, "no arguments"),
	}
	connect := addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&device, "device", "", "only this device's logs (its MAC address or serial number)")
	f.StringVar(&logType, "type", "", "only logs of this type (CELog, Watson, ...)")
	f.BoolVar(&asJSON, "json", false, "print one JSON array")
	limit := addLimitFlag(f, "logs")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkLimit(*limit); err != nil {
			return err
		}
		q := url.Values{}
		if device != "" {
			q.Set("device", device)
		}
		if logType != "" {
			q.Set("type", logType)
		}
		c, err := connect()
		if err != nil {
			return err
		}
		return printList(cmd.Context(), c, stdout, "/logs", q, *limit, asJSON,
			func(l *deviceupdate.LogList) ([]deviceupdate.DeviceLog, string) { return l.Logs, l.Next },
			[]string{"MODIFIED", "BYTES", "LOG"},
			func(l deviceupdate.DeviceLog) []string {
				return []string{l.Modified.Format(time.RFC3339), strconv.FormatInt(l.Size, 10), l.Path()}
			})
	}
	return cmd
}

func newLogsGetCommand(stdout io.Writer) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "get TYPE/DEVICE/FILE [-o PATH]",
		Short: "Download one device log",
		Long: `Download one stored device log, named as 'logs list' shows it, to -o PATH
(default: its file name in the current folder; - for standard output). An
existing file is not overwritten.`,
		Example: "  deviceupdate logs get CELog/00-04-F2-AA-BB-CC/celog.clg -o /tmp/celog.clg",
		Args:    exactArgs(1, "one TYPE/DEVICE/FILE"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "where to write the log")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		parts := strings.Split(args[0], "/")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return usageError{fmt.Errorf("%q: name the log as TYPE/DEVICE/FILE, as 'deviceupdate logs list' shows it", args[0])}
		}
		c, err := connect()
		if err != nil {
			return err
		}
		if out == "" {
			out = parts[2]
		}
		var w io.Writer = stdout
		var f *os.File
		if out != "-" {
			if f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
				return fmt.Errorf("write %s: %w; choose another -o", out, err)
			}
			w = f
		}
		path := "/logs/" + url.PathEscape(parts[0]) + "/" + url.PathEscape(parts[1]) + "/" + url.PathEscape(parts[2])
		err = c.Do(cmd.Context(), http.MethodGet, path, nil, w)
		if f != nil {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				_ = os.Remove(out)
				return err
			}
			abs, _ := filepath.Abs(out)
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", abs)
		}
		return err
	}
	return cmd
}

func newLogsClearCommand(stdout io.Writer) *cobra.Command {
	var days int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "clear --days-back N",
		Short: "Delete the device logs older than N days (1-30)",
		Long: `Delete, now, every stored device log last written more than N days ago
(Lync's Clear-CsDeviceUpdateLog). The service also deletes logs older than
LogCleanUpInterval days by itself, at LogCleanUpTimeOfDay or every hour.`,
		Example: "  deviceupdate logs clear --days-back 7",
		Args:    exactArgs(0, "no arguments, only --days-back"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().IntVar(&days, "days-back", 0, "delete logs older than this many days, 1 to 30 (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if days < deviceupdate.MinClearDays || days > deviceupdate.MaxClearDays {
			return usageError{fmt.Errorf("logs clear needs --days-back from %d to %d", deviceupdate.MinClearDays, deviceupdate.MaxClearDays)}
		}
		c, err := connect()
		if err != nil {
			return err
		}
		var res deviceupdate.ClearLogsResult
		if err := c.Do(cmd.Context(), http.MethodPost, "/logs/clear", map[string]int{"daysBack": days}, &res); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, res)
		}
		fmt.Fprintf(stdout, "deleted %s (%s) older than %s\n", plural(int64(res.Deleted), "device log"), plural(res.Bytes, "byte"), plural(int64(days), "day"))
		return nil
	}
	return cmd
}
