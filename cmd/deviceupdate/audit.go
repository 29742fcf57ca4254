package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
)

func newAuditCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("audit", "Read and verify the admin audit trail",
		newAuditListCommand(stdout), newAuditVerifyCommand(stdout))
}

func newAuditListCommand(stdout io.Writer) *cobra.Command {
	var asJSON bool
	var since, until, action, target string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List admin actions: who did what, when, to what, and the outcome",
		Long: `List the entries of the admin audit trail, oldest first. --since and --until
take a time (2026-11-21T08:00:00Z) or an age (24h, 90m). --action takes an
action (import, rule.approve) or a family ending in a dot (rule.).`,
		Example: "  deviceupdate audit list --since 24h\n  deviceupdate audit list --action rule. --json",
		Args:    exactArgs(0, "no arguments"),
	}
	connect := addClientFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print one JSON array")
	f.StringVar(&since, "since", "", "only entries at or after this time or age")
	f.StringVar(&until, "until", "", "only entries at or before this time or age")
	f.StringVar(&action, "action", "", "only this action, or family ending in '.'")
	f.StringVar(&target, "target", "", "only entries on this target (a rule ID, a package file)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q := url.Values{}
		for _, p := range []struct{ name, v string }{{"since", since}, {"until", until}} {
			if p.v == "" {
				continue
			}
			t, err := parseTimeOrAge(p.v)
			if err != nil {
				return usageError{fmt.Errorf("--%s %q: want a time such as 2026-11-21T08:00:00Z or an age such as 24h or 7d", p.name, p.v)}
			}
			q.Set(p.name, t.UTC().Format(time.RFC3339))
		}
		if action != "" {
			q.Set("action", action)
		}
		if target != "" {
			q.Set("target", target)
		}
		c, err := connect()
		if err != nil {
			return err
		}
		var entries []deviceupdate.AuditEntry
		if err := c.Do(cmd.Context(), http.MethodGet, "/audit?"+q.Encode(), nil, &entries); err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(entries)
		}
		fmt.Fprintf(stdout, "%5s  %-20s  %-24s  %-14s  %-14s  %s\n", "SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "RESULT")
		for _, e := range entries {
			fmt.Fprintf(stdout, "%5d  %-20s  %-24s  %-14s  %-14s  %s\n", e.Seq, e.Time.Format(time.RFC3339), e.Actor, e.Action, e.Target, e.Result)
		}
		return nil
	}
	return cmd
}

// parseTimeOrAge reads a time (RFC 3339) or an age before now (24h, 7d).
func parseTimeOrAge(s string) (time.Time, error) {
	if d, err := deviceupdate.ParseAge(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}

func newAuditVerifyCommand(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that no audit entry was altered, removed or reordered",
		Long: `Check every entry of the admin audit trail: its hash, its sequence number and
its link to the entry before it. Exits non-zero, naming the first bad entry,
when the trail was altered.`,
		Example: "  deviceupdate audit verify",
		Args:    exactArgs(0, "no arguments"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON document")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := connect()
		if err != nil {
			return err
		}
		var v deviceupdate.AuditVerification
		if err := c.Do(cmd.Context(), http.MethodGet, "/audit/verify", nil, &v); err != nil {
			return err
		}
		if asJSON {
			if err := json.NewEncoder(stdout).Encode(v); err != nil {
				return err
			}
		} else if v.Intact {
			fmt.Fprintf(stdout, "audit trail intact: %d entries\n", v.Entries)
		}
		if !v.Intact {
			return fmt.Errorf("audit trail is broken at line %d (entry %d): %s; the %d entries before it are intact; restore the file from a backup",
				v.Line, v.Seq, v.Reason, v.Entries)
		}
		return nil
	}
	return cmd
}
