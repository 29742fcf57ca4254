package main

import (
	"encoding/json"
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
restore version (Lync's Clear-CsDeviceUpdateFile), and say what was freed.`,
		Example: "  deviceupdate files clear",
		Args:    exactArgs(0, "no arguments"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON document")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := connect()
		if err != nil {
			return err
		}
		var res deviceupdate.ClearResult
		if err := c.Do(cmd.Context(), http.MethodPost, "/files/clear", nil, &res); err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(res)
		}
		for _, u := range res.Removed {
			fmt.Fprintf(stdout, "removed %s %s (%d bytes)\n", u.Key, u.Version, u.Bytes)
		}
		fmt.Fprintf(stdout, "freed %d bytes in %d versions\n", res.Bytes, len(res.Removed))
		return nil
	}
	return cmd
}
