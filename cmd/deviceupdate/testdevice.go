package main

import (
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
)

func newTestDeviceCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("testdevice", "Manage test devices, which get pending versions first",
		newTestDeviceAddCommand(stdout), newTestDeviceListCommand(stdout), newTestDeviceRemoveCommand(stdout))
}

func newTestDeviceAddCommand(stdout io.Writer) *cobra.Command {
	var d deviceupdate.TestDevice
	var site string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "add --name N (--mac M | --serial S) [--site S]",
		Short: "Add a test device",
		Long: `Add a test device: a phone, named by its MAC address (six hex pairs, with or
without '-' or ':') or its serial number, that is offered a rule's pending
version before it is approved. Without --site it is a test device everywhere.`,
		Example: "  deviceupdate testdevice add --name \"Lab CX600\" --mac 00-04-F2-AA-BB-CC\n  deviceupdate testdevice add --name lab2 --serial SN123 --site Redmond",
		Args:    exactArgs(0, "no arguments, only flags"),
	}
	connect := addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&d.Name, "name", "", "the device's name (required)")
	f.StringVar(&d.MAC, "mac", "", "its MAC address")
	f.StringVar(&d.Serial, "serial", "", "its serial number")
	f.StringVar(&site, "site", "", "limit it to a site, one 'site list' shows (default: global)")
	f.BoolVar(&asJSON, "json", false, "print the device added as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if d.Name == "" {
			return usageError{fmt.Errorf("testdevice add needs --name (see 'deviceupdate testdevice add --help')")}
		}
		if site != "" {
			d.Scope = "site:" + site
		}
		c, err := connect()
		if err != nil {
			return err
		}
		var added deviceupdate.TestDevice
		if err := c.Do(cmd.Context(), http.MethodPost, "/testdevices", d, &added); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, added)
		}
		fmt.Fprintf(stdout, "added test device %q (%s, %s)\n", added.Name, added.Identifier(), added.Scope)
		return nil
	}
	return cmd
}

func newTestDeviceListCommand(stdout io.Writer) *cobra.Command {
	return newListCommand(stdout, "List the test devices", "  deviceupdate testdevice list --json", "/testdevices",
		func(w io.Writer, devices []deviceupdate.TestDevice) {
			tb := newTable(w, "NAME", "IDENTIFIER", "SCOPE")
			for _, d := range devices {
				tb.row(d.Name, d.Identifier(), d.Scope)
			}
			tb.flush()
		})
}

func newTestDeviceRemoveCommand(stdout io.Writer) *cobra.Command {
	return newRemoveCommand(stdout, "test device", "/testdevices/", "Remove a test device", "  deviceupdate testdevice remove \"Lab CX600\"")
}
