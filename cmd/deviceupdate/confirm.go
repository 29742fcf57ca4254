package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addYesFlag gives a destructive command its --yes flag; confirm reads it.
func addYesFlag(cmd *cobra.Command) *bool {
	return cmd.Flags().BoolP("yes", "y", false, "do it without asking (for scripts)")
}

// confirm asks on a terminal whether to go on with what, which says what
// will happen ("delete 3 stored versions"). With --yes it goes on without
// asking; without a terminal to ask on, it refuses, so that a script that
// forgot --yes fails rather than destroying something unasked.
func confirm(cmd *cobra.Command, yes bool, what string) error {
	if yes {
		return nil
	}
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return usageError{fmt.Errorf("%s: confirm with --yes (standard input is not a terminal to ask on)", what)}
	}
	return confirmFrom(in, cmd.ErrOrStderr(), what)
}

// confirmFrom asks on w and reads the answer from r: only "y" or "yes"
// goes on.
func confirmFrom(r io.Reader, w io.Writer, what string) error {
	fmt.Fprintf(w, "%s? [y/N] ", what)
	line, err := bufio.NewReader(io.LimitReader(r, 256)).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(w)
		return fmt.Errorf("%s: not confirmed", what)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("%s: not confirmed; nothing changed", what)
}
