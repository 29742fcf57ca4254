package main

import (
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
