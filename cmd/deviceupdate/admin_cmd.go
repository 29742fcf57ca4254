package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/handler"
)

func newAdminCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("admin", "Manage the people who administer the service, their roles and tokens",
		newAdminAddCommand(stdout), newAdminListCommand(stdout), newAdminRemoveCommand(stdout), newAdminTokenCommand(stdout))
}

const rolesHelp = `Roles (SPEC §7): a viewer reads everything; an operator also acts on rules,
test devices, device logs and device settings; an admin also imports, changes
configuration, sites, users and admins, clears files, takes backups and
removes devices.`

func newAdminAddCommand(stdout io.Writer) *cobra.Command {
	var role string
	var passwordStdin, noPassword, asJSON bool
	cmd := &cobra.Command{
		Use:   "add NAME --role viewer|operator|admin [--password-stdin | --no-password]",
		Short: "Add an admin with a role and a console password",
		Long: `Add an admin: a person with a name, a role and their own credentials, a
password for the web console and personal API tokens (deviceupdate admin token)
for the CLI and scripts. The audit trail names them.

` + rolesHelp + `

NAME follows the rules of user names and is unique regardless of case;
"bootstrap" is the admin.token's holder. The password (12 to 256 characters)
is asked twice on a terminal, or read from the first line of standard input
with --password-stdin; --no-password makes an admin who uses tokens only.
The server stores only a bcrypt hash of it.`,
		Example: `  deviceupdate admin add alice --role operator
  printf '%s\n' "$PASSWORD" | deviceupdate admin add alice --role operator --password-stdin
  deviceupdate admin add ci --role operator --no-password`,
		Args: exactArgs(1, "one NAME"),
	}
	connect := addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "viewer, operator or admin (required)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	f.BoolVar(&noPassword, "no-password", false, "no console password: the admin uses tokens only")
	f.BoolVar(&asJSON, "json", false, "print the admin added as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name := args[0]
		r, err := deviceupdate.ParseRole(role)
		switch {
		case role == "":
			return usageError{fmt.Errorf("admin add needs --role viewer, operator or admin (see 'deviceupdate admin add --help')")}
		case err != nil:
			return usageError{fmt.Errorf("--role: %s", deviceupdate.ErrorMessage(err))}
		case noPassword && passwordStdin:
			return usageError{fmt.Errorf("--no-password and --password-stdin exclude each other")}
		}
		if err := deviceupdate.ValidateAdminName(name); err != nil {
			return err
		}
		c, err := connect() // before the prompt: no password typed in vain
		if err != nil {
			return err
		}
		var password string
		if !noPassword {
			if password, err = readNewPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), passwordStdin); err != nil {
				return err
			}
			if err := deviceupdate.ValidatePassword(name, password); err != nil {
				return err
			}
		}
		var added deviceupdate.Admin
		body := map[string]string{"name": name, "role": string(r), "password": password}
		if err := c.Do(cmd.Context(), http.MethodPost, "/admins", body, &added); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, added)
		}
		fmt.Fprintf(stdout, "added %s %q\n", added.Role, added.Name)
		return nil
	}
	return cmd
}

func newAdminListCommand(stdout io.Writer) *cobra.Command {
	return newListCommand(stdout, "List the admins and their roles", "  deviceupdate admin list\n  deviceupdate admin list --json", "/admins",
		func(w io.Writer, admins []deviceupdate.Admin) {
			tb := newTable(w, "NAME", "ROLE", "PASSWORD", "CREATED", "CREATED BY")
			for _, a := range admins {
				pw := "no"
				if a.HasPassword {
					pw = "yes"
				}
				tb.row(a.Name, string(a.Role), pw, a.CreatedAt.UTC().Format(time.RFC3339), a.CreatedBy)
			}
			tb.flush()
		})
}

func newAdminRemoveCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove an admin; their tokens and console sessions end at once",
		Long: `Remove an admin. Their personal tokens and console sessions stop working at
once; the audit trail keeps what they did. On a terminal it asks first;
scripts pass --yes.`,
		Example: "  deviceupdate admin remove alice\n  deviceupdate admin remove alice --yes",
		Args:    exactArgs(1, "one NAME"),
	}
	connect := addClientFlags(cmd)
	yes := addYesFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := connect()
		if err != nil {
			return err
		}
		if err := confirm(cmd, *yes, fmt.Sprintf("remove admin %q with their tokens and console sessions", args[0])); err != nil {
			return err
		}
		if err := c.Do(cmd.Context(), http.MethodDelete, "/admins/"+url.PathEscape(args[0]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed admin %q\n", args[0])
		return nil
	}
	return cmd
}

func newAdminTokenCommand(stdout io.Writer) *cobra.Command {
	var expires, revoke string
	var list, asJSON bool
	cmd := &cobra.Command{
		Use:   "token NAME [--expires 90d | --list | --revoke ID]",
		Short: "Make, list or revoke an admin's personal API tokens",
		Long: `Make a personal API token for an admin, for the CLI and scripts (--token or
$DEVICEUPDATE_TOKEN): it acts as that admin, with their role, and the audit
trail names them. The token is printed once, alone on standard output; the
server keeps only its hash. It expires after --expires (a duration such as
720h, or days such as 90d; at most 366d; default 90d).

--list shows the admin's tokens (their IDs, never the secrets), --revoke ID
ends one at once. Every admin may do this for their own tokens, whatever
their role; for another admin's, the admin role is needed.`,
		Example: `  export DEVICEUPDATE_TOKEN=$(deviceupdate admin token alice --expires 30d)
  deviceupdate admin token alice --list
  deviceupdate admin token alice --revoke 3f9a61c0d2e4`,
		Args: exactArgs(1, "one NAME"),
	}
	connect := addClientFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&expires, "expires", "", "lifetime of a new token: 720h, 90d (default 90d, at most 366d)")
	f.BoolVar(&list, "list", false, "list the admin's tokens instead")
	f.StringVar(&revoke, "revoke", "", "revoke the token of this ID instead")
	f.BoolVar(&asJSON, "json", false, "print one JSON document")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		modes := 0
		for _, on := range []bool{expires != "", list, revoke != ""} {
			if on {
				modes++
			}
		}
		if modes > 1 {
			return usageError{fmt.Errorf("--expires, --list and --revoke exclude each other (see 'deviceupdate admin token --help')")}
		}
		if expires != "" {
			if _, err := deviceupdate.ParseAge(expires); err != nil {
				return usageError{fmt.Errorf("--expires: %s", deviceupdate.ErrorMessage(err))}
			}
		}
		c, err := connect()
		if err != nil {
			return err
		}
		path := "/admins/" + url.PathEscape(args[0]) + "/tokens"
		switch {
		case list:
			var toks []deviceupdate.AdminToken
			if err := c.Do(cmd.Context(), http.MethodGet, path, nil, &toks); err != nil {
				return err
			}
			if asJSON {
				if toks == nil {
					toks = []deviceupdate.AdminToken{}
				}
				return writeJSON(stdout, toks)
			}
			printTokens(stdout, toks, time.Now())
			return nil
		case revoke != "":
			if err := c.Do(cmd.Context(), http.MethodDelete, path+"/"+url.PathEscape(revoke), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked token %s of %s\n", revoke, args[0])
			return nil
		}
		var made handler.NewTokenResponse
		if err := c.Do(cmd.Context(), http.MethodPost, path, map[string]string{"expires": expires}, &made); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, made)
		}
		fmt.Fprintln(stdout, made.Secret)
		fmt.Fprintf(cmd.ErrOrStderr(), "token %s of %s, expires %s; it is shown only this once: keep it in a secret store, and revoke it with `deviceupdate admin token %s --revoke %s`\n",
			made.Token.ID, made.Token.Admin, made.Token.ExpiresAt.UTC().Format(time.RFC3339), made.Token.Admin, made.Token.ID)
		return nil
	}
	return cmd
}

func printTokens(w io.Writer, toks []deviceupdate.AdminToken, now time.Time) {
	tb := newTable(w, "ID", "CREATED", "EXPIRES", "STATE")
	for _, t := range toks {
		state := "live"
		if t.Expired(now) {
			state = "expired"
		}
		tb.row(t.ID, t.CreatedAt.UTC().Format(time.RFC3339), t.ExpiresAt.UTC().Format(time.RFC3339), state)
	}
	tb.flush()
}
