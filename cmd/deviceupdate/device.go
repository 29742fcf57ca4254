package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
)

func newDeviceCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("device", "Show the inventory of devices that polled, set a device's own settings, forget devices",
		newDeviceListCommand(stdout), newDeviceConfigCommand(stdout), newDeviceRemoveCommand(stdout), newDevicePruneCommand(stdout))
}

func newDeviceConfigCommand(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config ID [KEY=VALUE...]",
		Short: "Show or change one device's own settings",
		Long: "Show, or with KEY=VALUE change, the settings of one device, named by its MAC\n" +
			"address or serial number as 'device list' shows it. A device's own value wins\n" +
			"over its site's and the global one (Cisco's priority); KEY= removes it.\n" +
			"Settings a device may have: " + strings.Join(deviceupdate.DeviceSettings, ", ") + ".",
		Example: "  deviceupdate device config 00-04-F2-AA-BB-CC PeerFirmwareSharing=false\n  deviceupdate device config SN123",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("device config needs a device ID (see 'deviceupdate device config --help')")}
			}
			return nil
		},
	}
	connect := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the device's settings as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		settings, err := settingArgs(args[1:])
		if err != nil {
			return err
		}
		c, err := connect()
		if err != nil {
			return err
		}
		path := "/devices/" + url.PathEscape(args[0]) + "/config"
		var dc deviceupdate.DeviceConfig
		if len(settings) == 0 {
			err = c.Do(cmd.Context(), http.MethodGet, path, nil, &dc)
		} else {
			err = c.Do(cmd.Context(), http.MethodPut, path, map[string]any{"settings": settings}, &dc)
		}
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, dc)
		}
		if len(dc.Settings) == 0 {
			fmt.Fprintf(stdout, "%s has no settings of its own\n", dc.ID)
		}
		for _, name := range deviceupdate.DeviceSettings {
			if v, ok := dc.Settings[name]; ok {
				fmt.Fprintf(stdout, "%s  %s=%s\n", dc.ID, name, v)
			}
		}
		return nil
	}
	return cmd
}

func newDeviceListCommand(stdout io.Writer) *cobra.Command {
	var asJSON bool
	var model, key, version, site, since, before, search string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every device seen: identity, versions, last poll",
		Long: `List the inventory by device ID. It is fetched and printed a page at a time,
so a large inventory starts printing at once and never sits whole in memory.`,
		Example: "  deviceupdate device list --model CX600 --since 24h\n  deviceupdate device list --version 4.0.7577.4100 --json\n" +
			"  deviceupdate device list --key UCPhone/Polycom/CX600/A/ENU/CPE --site branch1 --before 30d\n  deviceupdate device list --search aa:bb --limit 20",
		Args: exactArgs(0, "no arguments"),
	}
	connect := addClientFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print one JSON array")
	limit := addLimitFlag(f, "devices")
	f.StringVar(&model, "model", "", "only this model")
	f.StringVar(&version, "version", "", "only devices running this version")
	f.StringVar(&key, "key", "", "only devices of this rule key (DeviceType/Brand/Model/Revision/Locale/UpdateType); --version then means this module's")
	f.StringVar(&site, "site", "", "only devices polling from this site's subnets")
	f.StringVar(&since, "since", "", "only devices seen since this time or age (24h)")
	f.StringVar(&before, "before", "", "only devices not seen since this time or age (30d)")
	f.StringVar(&search, "search", "", "only devices whose MAC, serial or user holds this text, in any case")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q := url.Values{}
		for name, v := range map[string]string{"model": model, "key": key, "version": version, "site": site, "search": search} {
			if v != "" {
				q.Set(name, v)
			}
		}
		for name, v := range map[string]string{"since": since, "before": before} {
			if v == "" {
				continue
			}
			t, err := parseTimeOrAge(v)
			if err != nil {
				return usageError{fmt.Errorf("--%s %q: want a time such as 2026-11-21T08:00:00Z or an age such as 24h or 7d", name, v)}
			}
			q.Set(name, t.UTC().Format(time.RFC3339))
		}
		if err := checkLimit(*limit); err != nil {
			return err
		}
		c, err := connect()
		if err != nil {
			return err
		}
		return printList(cmd.Context(), c, stdout, "/devices", q, *limit, asJSON,
			func(l *deviceupdate.DeviceList) ([]deviceupdate.Device, string) { return l.Devices, l.Next },
			[]string{"ID", "MODEL", "RUNNING", "OFFERED", "LAST SEEN", "FROM"},
			func(d deviceupdate.Device) []string {
				running := "-"
				if len(d.Modules) > 0 {
					running = d.Modules[0].Version.String()
				}
				return []string{d.ID, d.Model, running, dash(d.Offered), lastSeen(d.LastSeen), d.Remote}
			})
	}
	return cmd
}

// lastSeen shows a time, or "-" for never (a device that only uploaded logs).
func lastSeen(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func newDeviceRemoveCommand(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Forget one device: its inventory record and its own settings",
		Long: `Forget a device, named by its MAC address or serial number as 'device list'
shows it: a retired phone, a test rig. Its inventory record and its own
settings ('device config') go; its uploaded logs and a test device of the same
MAC stay. A poll from it later records it anew.`,
		Example: "  deviceupdate device remove 00-04-F2-AA-BB-CC",
		Args:    exactArgs(1, "one device ID"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was removed as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := connect()
		if err != nil {
			return err
		}
		var removed deviceupdate.RemovedDevice
		if err := c.Do(cmd.Context(), http.MethodDelete, "/devices/"+url.PathEscape(args[0]), nil, &removed); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, removed)
		}
		var settings []string
		for _, name := range deviceupdate.DeviceSettings {
			if v, ok := removed.Settings[name]; ok {
				settings = append(settings, name+"="+v)
			}
		}
		if removed.Device == nil {
			fmt.Fprintf(stdout, "device %s was not in the inventory; removed its own settings: %s\n", args[0], strings.Join(settings, " "))
			return nil
		}
		line := fmt.Sprintf("removed device %s from the inventory (last seen %s)", removed.Device.ID, lastSeen(removed.Device.LastActive()))
		if len(settings) > 0 {
			line += "; its own settings went with it: " + strings.Join(settings, " ")
		}
		fmt.Fprintln(stdout, line)
		return nil
	}
	return cmd
}

func newDevicePruneCommand(stdout io.Writer) *cobra.Command {
	var asJSON bool
	var notSeen string
	cmd := &cobra.Command{
		Use:   "prune --not-seen AGE",
		Short: "Forget every device not seen for an age (720h, 30d)",
		Long: `Forget every device that has neither polled nor uploaded a log for AGE (a
duration such as 720h, or days such as 30d): retired phones, a load test's fake
ones. Their inventory records and their own settings go. On a terminal it says
how many would go and asks first; scripts pass --yes.`,
		Example: "  deviceupdate device prune --not-seen 30d\n  deviceupdate device prune --not-seen 1h --yes --json",
		Args:    exactArgs(0, "no arguments, only --not-seen"),
	}
	connect := addClientFlags(cmd)
	yes := addYesFlag(cmd)
	cmd.Flags().StringVar(&notSeen, "not-seen", "", "forget devices not seen for this age: 720h, 30d (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON document")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if notSeen == "" {
			return usageError{fmt.Errorf("device prune needs --not-seen AGE, such as 30d (see 'deviceupdate device prune --help')")}
		}
		if _, err := deviceupdate.ParseAge(notSeen); err != nil {
			return usageError{fmt.Errorf("--not-seen: %s", deviceupdate.ErrorMessage(err))}
		}
		c, err := connect()
		if err != nil {
			return err
		}
		prune := func(dryRun bool) (*deviceupdate.PruneResult, error) {
			var res deviceupdate.PruneResult
			err := c.Do(cmd.Context(), http.MethodPost, "/devices/prune", map[string]any{"notSeen": notSeen, "dryRun": dryRun}, &res)
			return &res, err
		}
		if !*yes {
			planned, err := prune(true)
			if err != nil {
				return err
			}
			if planned.Count == 0 {
				return printPrune(stdout, planned, asJSON)
			}
			if err := confirm(cmd, false, fmt.Sprintf("forget %s not seen since %s", plural(int64(planned.Count), "device"),
				planned.NotSeenSince.Format(time.RFC3339))); err != nil {
				return err
			}
		}
		res, err := prune(false)
		if err != nil {
			return err
		}
		return printPrune(stdout, res, asJSON)
	}
	return cmd
}

func printPrune(stdout io.Writer, res *deviceupdate.PruneResult, asJSON bool) error {
	if asJSON {
		return writeJSON(stdout, res)
	}
	since := res.NotSeenSince.Format(time.RFC3339)
	switch {
	case res.Count == 0:
		fmt.Fprintf(stdout, "no device unseen since %s; nothing to forget\n", since)
	case res.Settings > 0:
		fmt.Fprintf(stdout, "forgot %s not seen since %s, with the own settings of %d\n", plural(int64(res.Count), "device"), since, res.Settings)
	default:
		fmt.Fprintf(stdout, "forgot %s not seen since %s\n", plural(int64(res.Count), "device"), since)
	}
	return nil
}
