package main

import (
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
)

func newFilesCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("files", "Manage the stored update files", newFilesClearCommand(stdout))
}

func newFilesClearCommand(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "clear",
		Short: "Delete stored versions that no rule references",
		Long: `Delete every stored version that no rule names as its approved, pending or
restore version (Lync's Clear-CsDeviceUpdateFile), and say what was freed.
It is asked first on a terminal; scripts pass --yes.`,
		Example: "  deviceupdate files clear\n  deviceupdate files clear --yes --json",
		Args:    exactArgs(0, "no arguments"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON document")
	yes := addYesFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := connect()
		if err != nil {
			return err
		}
		if err := confirm(cmd, *yes, "files clear: delete stored versions no rule references"); err != nil {
			return err
		}
		var res deviceupdate.ClearResult
		if err := c.Do(cmd.Context(), http.MethodPost, "/files/clear", nil, &res); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, res)
		}
		for _, u := range res.Removed {
			fmt.Fprintf(stdout, "removed %s %s (%s)\n", u.Key, u.Version, plural(u.Bytes, "byte"))
		}
		fmt.Fprintf(stdout, "freed %s in %s\n", plural(res.Bytes, "byte"), plural(int64(len(res.Removed)), "version"))
		return nil
	}
	return cmd
}
