package main

import (
	"encoding/json"
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
	return newGroupCommand("device", "Show the inventory of devices that polled, and set a device's own settings",
		newDeviceListCommand(stdout), newDeviceConfigCommand(stdout))
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
	var model, version, since string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List every device seen: identity, versions, last poll",
		Example: "  deviceupdate device list --model CX600 --since 24h\n  deviceupdate device list --version 4.0.7577.4100 --json",
		Args:    exactArgs(0, "no arguments"),
	}
	connect := addClientFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print one JSON array")
	f.StringVar(&model, "model", "", "only this model")
	f.StringVar(&version, "version", "", "only devices running this version")
	f.StringVar(&since, "since", "", "only devices seen since this time or age (24h)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q := url.Values{}
		if model != "" {
			q.Set("model", model)
		}
		if version != "" {
			q.Set("version", version)
		}
		if since != "" {
			t, err := parseTimeOrAge(since)
			if err != nil {
				return usageError{fmt.Errorf("--since %q: want a time such as 2026-11-21T08:00:00Z or an age such as 24h", since)}
			}
			q.Set("since", t.UTC().Format(time.RFC3339))
		}
		c, err := connect()
		if err != nil {
			return err
		}
		var devices []deviceupdate.Device
		if err := c.Do(cmd.Context(), http.MethodGet, "/devices?"+q.Encode(), nil, &devices); err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(devices)
		}
		fmt.Fprintf(stdout, "%-18s  %-8s  %-16s  %-16s  %-20s  %s\n", "ID", "MODEL", "RUNNING", "OFFERED", "LAST SEEN", "FROM")
		for _, d := range devices {
			running := "-"
			if len(d.Modules) > 0 {
				running = d.Modules[0].Version.String()
			}
			fmt.Fprintf(stdout, "%-18s  %-8s  %-16s  %-16s  %-20s  %s\n", d.ID, d.Model, running, dash(d.Offered), d.LastSeen.Format(time.RFC3339), d.Remote)
		}
		return nil
	}
	return cmd
}
