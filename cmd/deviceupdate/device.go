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

func newDeviceCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("device", "Show the inventory of devices that polled", newDeviceListCommand(stdout))
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
