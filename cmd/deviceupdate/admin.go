package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate/internal/client"
)

// addClientFlags gives an admin command the flags that find and
// authenticate to the server (SPEC §1); connect resolves them against the
// environment and the certs folder.
func addClientFlags(cmd *cobra.Command) (connect func() (*client.Client, error)) {
	var o client.Options
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "server URL (or $"+client.EnvServer+"; default "+client.DefaultServer+")")
	f.StringVar(&o.Token, "token", "", "admin token (or $"+client.EnvToken+"; default: <certs>/admin.token)")
	f.StringVar(&o.Certs, "certs", "", "folder with ca.crt and admin.token (or $"+client.EnvCerts+"; default "+client.DefaultCerts+")")
	return func() (*client.Client, error) {
		resolved, err := client.Resolve(o, os.Getenv)
		if err != nil {
			return nil, err
		}
		return client.New(resolved)
	}
}

// newRemoveCommand is `<group> remove NAME`: DELETE <path><NAME> on the
// admin API, and a line saying what went.
func newRemoveCommand(stdout io.Writer, noun, path, short, example string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "remove NAME",
		Short:   short,
		Example: example,
		Args:    exactArgs(1, "one NAME"),
	}
	connect := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := connect()
		if err != nil {
			return err
		}
		if err := c.Do(cmd.Context(), http.MethodDelete, path+url.PathEscape(args[0]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s %q\n", noun, args[0])
		return nil
	}
	return cmd
}

// newListCommand is `<group> list [--json]`: GET path on the admin API,
// printed as one JSON array (an empty one for none) or as the table that
// table writes.
func newListCommand[T any](stdout io.Writer, short, example, path string, table func(w io.Writer, items []T)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   short,
		Example: example,
		Args:    exactArgs(0, "no arguments"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON array")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := connect()
		if err != nil {
			return err
		}
		var items []T
		if err := c.Do(cmd.Context(), http.MethodGet, path, nil, &items); err != nil {
			return err
		}
		if asJSON {
			if items == nil {
				items = []T{}
			}
			return writeJSON(stdout, items)
		}
		table(stdout, items)
		return nil
	}
	return cmd
}
