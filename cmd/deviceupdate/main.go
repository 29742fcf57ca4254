// Command deviceupdate is the firmware update service for IP phones and
// the tools to run it: `deviceupdate serve` runs the service, the other
// subcommands administer it or work on update packages. Run
// `deviceupdate --help` for the list.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // the command line was wrong
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code. Failures are
// reported as one line on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	msg := oneLine(err.Error())
	code := exitError
	var ue usageError
	switch {
	case errors.As(err, &ue):
		code = exitUsage
	case strings.HasPrefix(msg, "unknown command"):
		msg += " (see 'deviceupdate --help')"
		code = exitUsage
	}
	fmt.Fprintf(stderr, "deviceupdate: %s\n", msg)
	return code
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "deviceupdate",
		Short: "Firmware update service for IP phones",
		Long: `deviceupdate serves firmware updates to IP phones, as Lync Server's Device
Update Web Service did: admins import signed update packages and approve
them per device model; phones poll, download and upload their logs.`,
		Version:       deviceupdate.BuildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	root.AddCommand(
		newServeCommand(stdout, stderr),
		newCertsCommand(stdout),
		newCabCommand(stdout),
		newImportCommand(stdout, stderr),
		newPackCommand(stdout),
		newRuleCommand(stdout),
		newAuditCommand(stdout),
		newTestDeviceCommand(stdout),
		newUserCommand(stdout),
		newConfigCommand(stdout),
		newFilesCommand(stdout),
		newDeviceCommand(stdout),
		newSiteCommand(stdout),
		newLogsCommand(stdout),
		newPhoneCommand(stdout),
		newDoctorCommand(stdout),
	)
	return root
}

// newGroupCommand returns a command that only groups subcommands; run
// alone it prints its help.
func newGroupCommand(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q (see '%s --help')", args[0], c.CommandPath(), c.CommandPath())}
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(subs...)
	return cmd
}

// usageError marks a wrong command line, which exits with exitUsage.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exactArgs is cobra.ExactArgs with a usage error that names the arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %s, got %d argument(s) (see '%s --help')", c.CommandPath(), names, len(args), c.CommandPath())}
		}
		return nil
	}
}

// oneLine folds a multi-line message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
