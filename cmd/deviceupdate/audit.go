package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
		Long: `List the entries of the admin audit trail, oldest first, fetched and printed a
page at a time. --since and --until
take a time (2026-11-21T08:00:00Z) or an age (24h, 90m, 7d). --action takes an
action (import, rule.approve) or a family ending in a dot (rule.).

When the trail was altered, the entries before the first altered one are
listed, then a line marking where the hash chain breaks, then the entries
after it that can still be read, marked unverified ('audit verify' fails).`,
		Example: "  deviceupdate audit list --since 24h\n  deviceupdate audit list --action rule. --json",
		Args:    exactArgs(0, "no arguments"),
	}
	connect := addClientFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, `print one JSON document: {"entries": [...], "broken": {"line", "seq", "reason"}}`)
	f.StringVar(&since, "since", "", "only entries at or after this time or age")
	f.StringVar(&until, "until", "", "only entries at or before this time or age")
	f.StringVar(&action, "action", "", "only this action, or family ending in '.'")
	f.StringVar(&target, "target", "", "only entries on this target (a rule ID, a package file)")
	limit := addLimitFlag(f, "entries")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := checkLimit(*limit); err != nil {
			return err
		}
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
		arr := &jsonArray{w: stdout, before: `{"entries":`}
		var tbl auditTable
		var broken *deviceupdate.AuditBreak
		err = listPages(cmd.Context(), c, "/audit", q, *limit, func(list *deviceupdate.AuditList) (int, string, error) {
			broken = list.Broken
			if !asJSON {
				return len(list.Entries), list.Next, tbl.page(stdout, list.Entries, list.Broken)
			}
			for _, e := range list.Entries {
				if err := arr.add(e); err != nil {
					return 0, "", err
				}
			}
			return len(list.Entries), list.Next, nil
		})
		switch {
		case err != nil:
			return err
		case !asJSON:
			return tbl.end(stdout, broken)
		case broken == nil:
			return arr.end("}\n")
		}
		b, err := json.Marshal(broken)
		if err != nil {
			return err
		}
		return arr.end(`,"broken":` + string(b) + "}\n")
	}
	return cmd
}

// auditTable prints audit entries as a table, a page at a time; on a
// broken trail, a line marks the break and the entries after it are
// marked unverified. The columns of a page line up across the marker: it
// takes the place of an empty row.
type auditTable struct {
	headed bool // the header line is out
	marked bool // the marker is out
}

// page prints one page of entries.
func (t *auditTable) page(w io.Writer, entries []deviceupdate.AuditRecord, broken *deviceupdate.AuditBreak) error {
	headers := []string{"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "RESULT"}
	var buf bytes.Buffer
	tbl := newTable(&buf, headers...) // on every page, for the columns' width
	markAt := -1                      // the row the marker takes
	for i, e := range entries {
		result := e.Result
		if e.Unverified {
			if markAt < 0 && !t.marked {
				markAt = i
				tbl.row(make([]string, len(headers))...)
			}
			result += " (unverified)"
		}
		tbl.row(strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339), e.Actor, e.Action, e.Target, result)
	}
	if err := tbl.flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	if markAt >= 0 && broken != nil {
		lines[1+markAt] = auditMarker(broken)
		t.marked = true
	}
	if t.headed {
		lines = lines[1:]
	}
	t.headed = true
	_, err := io.WriteString(w, strings.Join(lines, ""))
	return err
}

// end marks a break after the last entry, where no entry after it could
// be read.
func (t *auditTable) end(w io.Writer, broken *deviceupdate.AuditBreak) error {
	if broken == nil || t.marked {
		return nil
	}
	_, err := io.WriteString(w, auditMarker(broken))
	return err
}

// auditMarker is the line that marks where the chain breaks.
func auditMarker(b *deviceupdate.AuditBreak) string {
	return fmt.Sprintf("---- chain broken at line %d: %s; entries below are not verified ----\n", b.Line, b.Reason)
}

// entryCount is "1 entry", "2 entries".
func entryCount(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
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
its link to the entry before it, and that the trail reaches the last entry the
store records as written. Exits non-zero, naming the first bad or missing
entry, when the trail was altered.`,
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
			fmt.Fprintf(stdout, "audit trail intact: %s\n", entryCount(v.Entries))
		}
		if !v.Intact {
			intact := "the " + entryCount(v.Entries) + " before it are intact"
			switch v.Entries {
			case 0:
				intact = "no entry before it"
			case 1:
				intact = "the entry before it is intact"
			}
			return fmt.Errorf("audit trail is broken at line %d (entry %d): %s; %s; stop serve, restore the file from a backup and start serve again",
				v.Line, v.Seq, v.Reason, intact)
		}
		return nil
	}
	return cmd
}
