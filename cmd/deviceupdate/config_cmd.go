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

func newConfigCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("config", "Show or change the service configuration (global or per site)",
		newConfigGetCommand(stdout), newConfigSetCommand(stdout))
}

func configPath(site string) string {
	if site == "" {
		return "/config"
	}
	return "/config?site=" + url.QueryEscape(site)
}

func printConfig(stdout io.Writer, values []deviceupdate.ConfigValue, asJSON bool) error {
	if asJSON {
		return writeJSON(stdout, values)
	}
	tb := newTable(stdout, "SETTING", "VALUE", "FROM")
	for _, v := range values {
		tb.row(v.Name, v.Value, v.Source)
	}
	return tb.flush()
}

func newConfigGetCommand(stdout io.Writer) *cobra.Command {
	var site string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "get [--site S]",
		Short:   "Show the effective configuration and where each value comes from",
		Example: "  deviceupdate config get\n  deviceupdate config get --site Redmond --json",
		Args:    exactArgs(0, "no arguments"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().StringVar(&site, "site", "", "show the settings in force at this site")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON array")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := connect()
		if err != nil {
			return err
		}
		var values []deviceupdate.ConfigValue
		if err := c.Do(cmd.Context(), http.MethodGet, configPath(site), nil, &values); err != nil {
			return err
		}
		return printConfig(stdout, values, asJSON)
	}
	return cmd
}

func newConfigSetCommand(stdout io.Writer) *cobra.Command {
	var site string
	var asJSON bool
	var help strings.Builder
	for _, s := range deviceupdate.Settings {
		fmt.Fprintf(&help, "  %-24s %s (default %q)\n", s.Name, s.Help, s.Default)
	}
	cmd := &cobra.Command{
		Use:   "set [--site S] KEY=VALUE...",
		Short: "Change settings, globally or for one site",
		Long: "Change settings, globally or, with --site, for one site (a site's value wins over the\n" +
			"global one). KEY= with no value removes the setting at that scope. Every value is\n" +
			"checked before any is applied. The settings:\n\n" + help.String(),
		Example: "  deviceupdate config set MaxLogFileSize=2048000 LogFlushInterval=00:10:00\n  deviceupdate config set --site Redmond PeerFirmwareSharing=true",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("config set needs at least one KEY=VALUE (see 'deviceupdate config set --help')")}
			}
			return nil
		},
	}
	connect := addClientFlags(cmd)
	cmd.Flags().StringVar(&site, "site", "", "change the settings of this site only")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the effective settings as one JSON array")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		settings, err := settingArgs(args)
		if err != nil {
			return err
		}
		c, err := connect()
		if err != nil {
			return err
		}
		var values []deviceupdate.ConfigValue
		if err := c.Do(cmd.Context(), http.MethodPut, configPath(site), map[string]any{"settings": settings}, &values); err != nil {
			return err
		}
		return printConfig(stdout, values, asJSON)
	}
	return cmd
}

// settingArgs reads KEY=VALUE arguments.
func settingArgs(args []string) (map[string]string, error) {
	settings := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("%q is not KEY=VALUE", a)}
		}
		settings[k] = v
	}
	return settings, nil
}
