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

func newSiteCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("site", "Manage sites: groups of phones known by their subnets",
		newSiteSetCommand(stdout), newSiteListCommand(stdout), newSiteRemoveCommand(stdout))
}

func newSiteSetCommand(stdout io.Writer) *cobra.Command {
	var subnets []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "set NAME --subnet CIDR [--subnet CIDR...]",
		Aliases: []string{"add"},
		Short:   "Create a site or replace its subnets",
		Long: `Create a site, or replace the subnets of an existing one. A phone belongs to
the site whose subnet holds its address (the longest prefix wins); a site's
settings ('config set --site NAME') win over the global ones, and a test
device may be limited to a site ('testdevice add --site NAME').`,
		Example: "  deviceupdate site set Redmond --subnet 10.1.0.0/16 --subnet 2001:db8:1::/48",
		Args:    exactArgs(1, "one NAME"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().StringSliceVar(&subnets, "subnet", nil, "a subnet of the site in CIDR form (repeat, or separate with commas)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the site as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(subnets) == 0 {
			return usageError{fmt.Errorf("site set needs at least one --subnet (see 'deviceupdate site set --help')")}
		}
		c, err := connect()
		if err != nil {
			return err
		}
		var site deviceupdate.Site
		if err := c.Do(cmd.Context(), http.MethodPut, "/sites/"+url.PathEscape(args[0]), map[string]any{"subnets": subnets}, &site); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, site)
		}
		fmt.Fprintf(stdout, "site %s: %s\n", site.Name, joinPrefixes(site))
		return nil
	}
	return cmd
}

func joinPrefixes(s deviceupdate.Site) string {
	out := make([]string, len(s.Subnets))
	for i, p := range s.Subnets {
		out[i] = p.String()
	}
	return strings.Join(out, ", ")
}

func newSiteListCommand(stdout io.Writer) *cobra.Command {
	return newListCommand(stdout, "List the sites and their subnets", "  deviceupdate site list --json", "/sites",
		func(w io.Writer, sites []deviceupdate.Site) {
			tb := newTable(w, "NAME", "SUBNETS")
			for _, s := range sites {
				tb.row(s.Name, joinPrefixes(s))
			}
			tb.flush()
		})
}

func newSiteRemoveCommand(stdout io.Writer) *cobra.Command {
	return newRemoveCommand(stdout, "site", "/sites/", "Remove a site and its settings", "  deviceupdate site remove Redmond")
}
