package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
)

func newRuleCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("rule", "List device update rules; approve, reset, restore or remove one",
		newRuleListCommand(stdout),
		newRuleActionCommand(stdout, deviceupdate.RuleApprove, "Approve a rule's pending version for every device",
			"The pending version becomes the approved one, offered to every device; the approved version\nbefore it becomes the restore version."),
		newRuleActionCommand(stdout, deviceupdate.RuleReset, "Drop a rule's pending version",
			"Test devices go back to the approved version."),
		newRuleActionCommand(stdout, deviceupdate.RuleRestore, "Roll a rule back to its restore version",
			"The approved version becomes the restore version; with none, the rule has no approved\nversion and devices are offered nothing: that is asked first on a terminal (--yes in scripts)."),
		newRuleActionCommand(stdout, deviceupdate.RuleRemove, "Remove a rule",
			"The rule is deleted; its stored files stay until `deviceupdate files clear`. It is asked\nfirst on a terminal (--yes in scripts)."),
	)
}

func newRuleListCommand(stdout io.Writer) *cobra.Command {
	return newListCommand(stdout, "List the device update rules", "  deviceupdate rule list\n  deviceupdate rule list --json", "/rules",
		func(w io.Writer, rules []deviceupdate.Rule) {
			tb := newTable(w, "ID", "KEY", "APPROVED", "PENDING", "RESTORE")
			for _, r := range rules {
				tb.row(r.ID, r.RuleKey.String(), dash(r.ApprovedVersion), dash(r.PendingVersion), dash(r.RestoreVersion))
			}
			tb.flush()
		})
}

func newRuleActionCommand(stdout io.Writer, action deviceupdate.RuleAction, short, long string) *cobra.Command {
	var asJSON bool
	name := string(action)
	cmd := &cobra.Command{
		Use:   name + " ID|KEY",
		Short: short,
		Long: short + ". " + long + `

The rule is named by its ID (from 'rule list') or its key
DeviceType/Brand/Model/Revision/Locale/UpdateType. If another admin changed
the rule since it was read here, nothing happens and the command says so.`,
		Example: fmt.Sprintf("  deviceupdate rule %s 3f1a9c0b2d4e\n  deviceupdate rule %s UCPhone/Polycom/CX600/A/ENU/CPE", name, name),
		Args:    exactArgs(1, "one rule ID or key"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rule before and after as one JSON document")
	yes := new(bool)
	if action == deviceupdate.RuleRemove || action == deviceupdate.RuleRestore {
		yes = addYesFlag(cmd)
		cmd.Example += fmt.Sprintf("\n  deviceupdate rule %s --yes 3f1a9c0b2d4e", name)
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id := args[0]
		if strings.Contains(id, "/") {
			key, err := deviceupdate.ParseRuleKey(id)
			if err != nil {
				return usageError{fmt.Errorf("%s", deviceupdate.ErrorMessage(err))}
			}
			id = deviceupdate.RuleID(key)
		}
		c, err := connect()
		if err != nil {
			return err
		}
		var rules []deviceupdate.Rule
		if err := c.Do(cmd.Context(), http.MethodGet, "/rules", nil, &rules); err != nil {
			return err
		}
		var seen *deviceupdate.Rule
		for i := range rules {
			if rules[i].ID == id {
				seen = &rules[i]
			}
		}
		if seen == nil {
			return fmt.Errorf("no rule %q; `deviceupdate rule list` shows the rules", args[0])
		}
		if what := ruleLoss(*seen, action); what != "" {
			if err := confirm(cmd, *yes, what); err != nil {
				return err
			}
		}
		var res struct {
			Before deviceupdate.Rule  `json:"before"`
			After  *deviceupdate.Rule `json:"after"`
		}
		if err := c.Do(cmd.Context(), http.MethodPost, "/rules/"+url.PathEscape(id)+"/"+name, map[string]any{"expect": seen}, &res); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, res)
		}
		if res.After == nil {
			fmt.Fprintf(stdout, "removed rule %s (%s)\n", id, res.Before.RuleKey)
			return nil
		}
		fmt.Fprintf(stdout, "%s rule %s (%s): approved %s, pending %s, restore %s\n", pastTense[action], id, res.After.RuleKey,
			dash(res.After.ApprovedVersion), dash(res.After.PendingVersion), dash(res.After.RestoreVersion))
		return nil
	}
	return cmd
}

// ruleLoss says what action on r would take from the phones, for the
// question asked before it: a removal, or a restore that leaves no
// approved version. It is "" for an action that needs no confirmation.
func ruleLoss(r deviceupdate.Rule, action deviceupdate.RuleAction) string {
	state := "nothing approved"
	if !r.ApprovedVersion.IsZero() {
		state = "approved " + r.ApprovedVersion.String()
	}
	switch action {
	case deviceupdate.RuleRemove:
		if r.ApprovedVersion.IsZero() {
			return fmt.Sprintf("remove rule %s (%s, %s)", r.ID, r.RuleKey, state)
		}
		return fmt.Sprintf("remove rule %s (%s, %s): phones of that model will be offered nothing", r.ID, r.RuleKey, state)
	case deviceupdate.RuleRestore:
		if after, err := r.Restore(); err == nil && after.ApprovedVersion.IsZero() {
			return fmt.Sprintf("restore rule %s (%s, %s) with no restore version: phones of that model will be offered nothing", r.ID, r.RuleKey, state)
		}
	}
	return ""
}

var pastTense = map[deviceupdate.RuleAction]string{
	deviceupdate.RuleApprove: "approved", deviceupdate.RuleReset: "reset", deviceupdate.RuleRestore: "restored",
}

func dash(v deviceupdate.Version) string {
	if v.IsZero() {
		return "-"
	}
	return v.String()
}
