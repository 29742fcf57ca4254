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
	"strconv"
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
	code := exitError
	if errors.As(err, new(usageError)) {
		code = exitUsage
	}
	fmt.Fprintf(stderr, "deviceupdate: %s\n", oneLine(err.Error()))
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
		Args:          noSubcommand,
		RunE:          func(c *cobra.Command, _ []string) error { return c.Help() },
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
		newAdminCommand(stdout),
		newConfigCommand(stdout),
		newFilesCommand(stdout),
		newDeviceCommand(stdout),
		newSiteCommand(stdout),
		newLogsCommand(stdout),
		newPhoneCommand(stdout),
		newDoctorCommand(stdout),
		newBackupCommand(stdout),
		newRestoreCommand(stdout),
		newMigrateCommand(stdout),
	)
	return root
}

// newGroupCommand returns a command that only groups subcommands; run
// alone it prints its help.
func newGroupCommand(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  noSubcommand,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(subs...)
	return cmd
}

// noSubcommand refuses an argument to a command that only groups
// subcommands: it names none of them. The error suggests the closest
// names, as in `unknown command "rules" for "deviceupdate"; did you mean
// "rule"?`.
func noSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if names := suggest(c, args[0]); len(names) > 0 {
		msg += "; did you mean " + quoteOr(names) + "?"
	}
	return usageError{fmt.Errorf("%s (see '%s --help')", msg, c.CommandPath())}
}

const (
	maxSuggestions  = 3 // names an unknown command is answered with
	maxSuggestEdits = 2 // how far a suggested name may be from the typed one
)

// suggest returns the subcommands of c closest to typed: those it begins
// (a prefix), else those the fewest edits away, at most two.
func suggest(c *cobra.Command, typed string) []string {
	typed = strings.ToLower(typed)
	if typed == "" {
		return nil
	}
	best, names := maxSuggestEdits, []string(nil)
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() {
			continue
		}
		d := maxSuggestEdits + 1
		for _, name := range append([]string{sub.Name()}, sub.Aliases...) {
			if strings.HasPrefix(name, typed) {
				d = 0
			} else {
				d = min(d, editDistance(typed, name))
			}
		}
		switch {
		case d < best:
			best, names = d, []string{sub.Name()}
		case d == best:
			names = append(names, sub.Name())
		}
	}
	if len(names) > maxSuggestions {
		names = names[:maxSuggestions]
	}
	return names
}

// editDistance is the Levenshtein distance between a and b: the fewest
// insertions, deletions and substitutions of runes that turn a into b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// quoteOr writes names as `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
func quoteOr(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// usageError marks a wrong command line, which exits with exitUsage.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exactArgs is cobra.ExactArgs with a usage error that names the arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %s, got %s (see '%s --help')", c.CommandPath(), names, plural(int64(len(args)), "argument"), c.CommandPath())}
		}
		return nil
	}
}

// oneLine folds a multi-line message into one line: its non-blank lines,
// each with its runs of spaces and tabs made one space, joined by "; ".
func oneLine(s string) string {
	var parts []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}
