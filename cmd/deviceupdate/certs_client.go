package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/certs"
)

func newCertsClientCommand(stdout io.Writer) *cobra.Command {
	var out, keyType string
	cmd := &cobra.Command{
		Use:   "client NAME [-o DIR]",
		Short: "Issue a client certificate an external phone signs in with",
		Long: `Issue, with the service CA (ca.crt and ca.key in the certs folder), a
certificate for TLS client authentication whose common name is NAME, valid
for two years, and write it and its key as PEM: DIR/NAME.crt and DIR/NAME.key
(mode 0600). Existing files are never overwritten.

An external phone that presents it on HTTPS may poll
/RequestHandlerExt/ucdevice.upx and download from /DeviceUpdateFiles_Ext/
without a password; the server logs it as cert:NAME. It grants no admin
access. NAME follows the rules of user names: 1-64 letters, digits, '.',
'-', '_' or '@', starting with a letter or a digit.`,
		Example: `  deviceupdate certs client lab-phone-01
  deviceupdate certs client lab-phone-01 -o /srv/provisioning --key-type ecdsa`,
		Args: exactArgs(1, "one NAME"),
	}
	certsDir := addCertsFlag(cmd, "certs folder holding ca.crt and ca.key")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		dir := certsDir()
		name := args[0]
		if err := deviceupdate.ValidateUserName(name); err != nil {
			return err
		}
		certPath, keyPath, err := certs.IssueClient(dir, out, name, certs.ClientOptions{KeyType: keyType})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s (client certificate for %s, from %s)\n", certPath, name, dir)
		fmt.Fprintf(stdout, "created %s (its private key, mode 0600: install it on the phone only)\n", keyPath)
		return nil
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", ".", "folder to write NAME.crt and NAME.key to")
	f.StringVar(&keyType, "key-type", certs.KeyRSA, "key type: rsa (RSA 2048, any phone) or ecdsa (P-256)")
	return cmd
}
