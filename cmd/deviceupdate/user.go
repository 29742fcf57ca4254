package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/deviceupdate/deviceupdate"
)

func newUserCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("user", "Manage the users external phones sign in with",
		newUserAddCommand(stdout), newUserListCommand(stdout), newUserRemoveCommand(stdout))
}

func newUserAddCommand(stdout io.Writer) *cobra.Command {
	var passwordStdin, asJSON bool
	cmd := &cobra.Command{
		Use:   "add NAME [--password-stdin]",
		Short: "Add a user for external phones (HTTP Basic)",
		Long: `Add a user that external phones sign in with, by HTTP Basic authentication, on
POST /RequestHandlerExt/ucdevice.upx and GET /DeviceUpdateFiles_Ext/.

NAME is 1-64 letters, digits, '.', '-', '_' or '@', starting with a letter or
a digit; names are unique regardless of case. The password (12 to 256
characters, on one line) is never a flag, so that it stays out of shell
history and process lists: on a terminal it is asked twice without echo;
with --password-stdin the first line of standard input is read. The server
stores only a bcrypt hash of it.`,
		Example: `  deviceupdate user add phone-redmond
  printf '%s\n' "$PASSWORD" | deviceupdate user add phone-redmond --password-stdin`,
		Args: exactArgs(1, "one NAME"),
	}
	connect := addClientFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	f.BoolVar(&asJSON, "json", false, "print the user added as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name := args[0]
		if err := deviceupdate.ValidateUserName(name); err != nil {
			return err
		}
		c, err := connect() // before the prompt: no password typed in vain
		if err != nil {
			return err
		}
		password, err := readNewPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), passwordStdin)
		if err != nil {
			return err
		}
		if err := deviceupdate.ValidatePassword(name, password); err != nil {
			return err
		}
		var added deviceupdate.User
		body := struct {
			Name     string `json:"name"`
			Password string `json:"password"`
		}{name, password}
		if err := c.Do(cmd.Context(), http.MethodPost, "/users", body, &added); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, added)
		}
		fmt.Fprintf(stdout, "added user %q\n", added.Name)
		return nil
	}
	return cmd
}

// maxPasswordLine bounds what --password-stdin reads: the longest
// password in UTF-8 and a line end.
const maxPasswordLine = 4*deviceupdate.MaxPasswordLen + 2

// readNewPassword reads a new password: the first line of in with
// fromStdin, else twice from the terminal without echo, prompting on
// prompt.
func readNewPassword(in io.Reader, prompt io.Writer, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReaderSize(io.LimitReader(in, maxPasswordLine+1), maxPasswordLine+1).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		if len(line) > maxPasswordLine {
			return "", fmt.Errorf("password: too long; want at most %d characters", deviceupdate.MaxPasswordLen)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			return "", fmt.Errorf("no password on standard input; write it on the first line")
		}
		return line, nil
	}
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageError{fmt.Errorf("standard input is not a terminal; pass --password-stdin to read the password from it")}
	}
	ask := func(label string) (string, error) {
		fmt.Fprint(prompt, label)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		return string(b), nil
	}
	first, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	second, err := ask("Password again: ")
	if err != nil {
		return "", err
	}
	if first != second {
		return "", fmt.Errorf("the two passwords differ; nothing changed")
	}
	return first, nil
}

func newUserListCommand(stdout io.Writer) *cobra.Command {
	return newListCommand(stdout, "List the users external phones sign in with", "  deviceupdate user list --json", "/users",
		func(w io.Writer, users []deviceupdate.User) {
			tb := newTable(w, "NAME", "CREATED", "CREATED BY")
			for _, u := range users {
				tb.row(u.Name, u.CreatedAt.UTC().Format(time.RFC3339), u.CreatedBy)
			}
			tb.flush()
		})
}

func newUserRemoveCommand(stdout io.Writer) *cobra.Command {
	return newRemoveCommand(stdout, "user", "/users/", "Remove a user; its credentials stop working at once", "  deviceupdate user remove phone-redmond")
}
