package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/client"
)

func newRuleCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("rule", "List device update rules; approve, reset, restore or remove one",
		newRuleListCommand(stdout),
		newRuleActionCommand(stdout, deviceupdate.RuleApprove, "Approve a rule's pending version for every device",
			"The pending version becomes the approved one, offered to every device; the approved version\nbefore it becomes the restore version.\n\n"+
				"With --waves it is approved in stages (a staged rollout): a growing share of the devices\n"+
				"is offered it, wave after wave, each after --soak when at most --max-failures of the\n"+
				"devices judged failed (reverted, did not install, crashed, or fell silent); else the\n"+
				"rollout pauses itself. `rule rollout ID` follows it; when the last wave passes, the rule\n"+
				"is approved as without --waves. --window (hh:mm-hh:mm in the TimeZone setting's zone,\n"+
				"the site's or the global one) and --max-per-hour limit when and how fast new devices are\n"+
				"offered it. A reset aborts it: every device is offered the previous version again."),
		newRuleActionCommand(stdout, deviceupdate.RuleReset, "Drop a rule's pending version",
			"Test devices go back to the approved version."),
		newRuleActionCommand(stdout, deviceupdate.RuleRestore, "Roll a rule back to its restore version",
			"The approved version becomes the restore version; with none, the rule has no approved\nversion and devices are offered nothing: that is asked first on a terminal (--yes in scripts)."),
		newRuleActionCommand(stdout, deviceupdate.RuleRemove, "Remove a rule",
			"The rule is deleted; its stored files stay until `deviceupdate files clear`. It is asked\nfirst on a terminal (--yes in scripts)."),
		newRolloutCommand(stdout),
		newRolloutChangeCommand(stdout, "pause", "Pause a rule's staged rollout",
			"No device is newly offered the version and no wave starts until `rule resume`; devices\nalready offered it keep it."),
		newRolloutChangeCommand(stdout, "resume", "Resume a rule's paused staged rollout",
			"New offers go on in the current wave, whose soak starts again. The failures judged so far\nare accepted: only new ones count against --max-failures."),
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
	var staged *deviceupdate.RolloutFlags
	if action == deviceupdate.RuleApprove {
		staged = addRolloutFlags(cmd)
		cmd.Example += "\n  deviceupdate rule approve 3f1a9c0b2d4e --waves 5,25,100 --soak 1h --max-failures 5% --window 22:00-05:00"
	}
	yes := new(bool)
	if action == deviceupdate.RuleRemove || action == deviceupdate.RuleRestore {
		yes = addYesFlag(cmd)
		cmd.Example += fmt.Sprintf("\n  deviceupdate rule %s --yes 3f1a9c0b2d4e", name)
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id, err := ruleIDArg(args[0])
		if err != nil {
			return err
		}
		if staged != nil && !cmd.Flags().Changed("waves") {
			for _, f := range []string{"soak", "max-failures", "min-devices", "window", "max-per-hour"} {
				if cmd.Flags().Changed(f) {
					return usageError{fmt.Errorf("--%s goes with --waves (a staged rollout)", f)}
				}
			}
			staged = nil
		}
		if staged != nil {
			if _, err := staged.Parse(); err != nil {
				return usageError{fmt.Errorf("%s", deviceupdate.ErrorMessage(err))}
			}
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
		if staged != nil {
			var st deviceupdate.RolloutStatus
			if err := c.Do(cmd.Context(), http.MethodPost, "/rules/"+url.PathEscape(id)+"/"+name, map[string]any{"expect": seen, "rollout": staged}, &st); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(stdout, st)
			}
			fmt.Fprintf(stdout, "started a staged rollout of %s for rule %s (%s): wave 1 of %d, %d%% of the devices\n",
				st.Version, id, seen.RuleKey, len(st.Waves), st.Waves[0].Percent)
			return nil
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

// addRolloutFlags adds approve's staged rollout flags (SPEC §10).
func addRolloutFlags(cmd *cobra.Command) *deviceupdate.RolloutFlags {
	f := &deviceupdate.RolloutFlags{}
	fl := cmd.Flags()
	fl.StringVar(&f.Waves, "waves", "", "approve in stages: percents of the devices, increasing, ending at 100 (5,25,100)")
	fl.StringVar(&f.Soak, "soak", "", "how long each wave runs before it is judged (default 1h)")
	fl.StringVar(&f.MaxFailures, "max-failures", "", "share of judged devices that may fail for the next wave to start (default 5%)")
	fl.IntVar(&f.MinDevices, "min-devices", 0, "devices that must be judged before the next wave starts")
	fl.StringVar(&f.Window, "window", "", "offer to new devices only between these times (22:00-05:00), in the TimeZone setting's zone")
	fl.IntVar(&f.MaxPerHour, "max-per-hour", 0, "offer to at most this many new devices an hour (0: no cap)")
	return f
}

// ruleIDArg reads a rule named by its ID or its key.
func ruleIDArg(arg string) (string, error) {
	if !strings.Contains(arg, "/") {
		return arg, nil
	}
	key, err := deviceupdate.ParseRuleKey(arg)
	if err != nil {
		return "", usageError{fmt.Errorf("%s", deviceupdate.ErrorMessage(err))}
	}
	return deviceupdate.RuleID(key), nil
}

func newRolloutCommand(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rollout ID|KEY",
		Short: "Show a rule's staged rollout",
		Long: `Show a rule's staged rollout (rule approve --waves): its state (running, paused, completed,
aborted), the current wave, why it paused, and per wave the devices it reached first that were
offered the version, updated, failed and are silent.`,
		Example: "  deviceupdate rule rollout 3f1a9c0b2d4e\n  deviceupdate rule rollout --json UCPhone/Polycom/CX600/A/ENU/CPE",
		Args:    exactArgs(1, "one rule ID or key"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rollout as one JSON document")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return showRollout(cmd, stdout, connect, args[0], http.MethodGet, "rollout", asJSON)
	}
	return cmd
}

func newRolloutChangeCommand(stdout io.Writer, action, short, long string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     action + " ID|KEY",
		Short:   short,
		Long:    short + ". " + long,
		Example: fmt.Sprintf("  deviceupdate rule %s 3f1a9c0b2d4e", action),
		Args:    exactArgs(1, "one rule ID or key"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the rollout after it as one JSON document")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return showRollout(cmd, stdout, connect, args[0], http.MethodPost, action, asJSON)
	}
	return cmd
}

// showRollout sends method to /rules/ID/what and prints the rollout it
// answers.
func showRollout(cmd *cobra.Command, stdout io.Writer, connect func() (*client.Client, error), arg, method, what string, asJSON bool) error {
	id, err := ruleIDArg(arg)
	if err != nil {
		return err
	}
	c, err := connect()
	if err != nil {
		return err
	}
	var st deviceupdate.RolloutStatus
	if err := c.Do(cmd.Context(), method, "/rules/"+url.PathEscape(id)+"/"+what, nil, &st); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, st)
	}
	fmt.Fprintf(stdout, "rule %s: rollout of %s %s, wave %d of %d\n", st.Rule, st.Version, st.State, st.Wave, len(st.Waves))
	if st.Reason != "" {
		fmt.Fprintf(stdout, "reason: %s\n", st.Reason)
	}
	tb := newTable(stdout, "WAVE", "PERCENT", "OFFERED", "UPDATED", "FAILED", "SILENT")
	for i, w := range st.Waves {
		tb.row(strconv.Itoa(i+1), strconv.Itoa(w.Percent)+"%", strconv.Itoa(w.Offered), strconv.Itoa(w.Updated), strconv.Itoa(w.Failed), strconv.Itoa(w.Silent))
	}
	tb.flush()
	return nil
}
