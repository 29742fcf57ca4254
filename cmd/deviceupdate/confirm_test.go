package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestConfirmFrom(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		ok           bool
	}{
		{"yes", "yes\n", true},
		{"y in capitals", "Y\n", true},
		{"no", "n\n", false},
		{"empty line", "\n", false},
		{"end of input", "", false},
		{"anything else", "sure\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prompt bytes.Buffer
			err := confirmFrom(strings.NewReader(tc.answer), &prompt, "delete 2 stored versions")
			if (err == nil) != tc.ok {
				t.Errorf("answer %q: err = %v, want ok=%v", tc.answer, err, tc.ok)
			}
			if !strings.Contains(prompt.String(), "delete 2 stored versions? [y/N]") {
				t.Errorf("prompt = %q", prompt.String())
			}
		})
	}
}

func TestConfirmWithoutTerminalNeedsYes(t *testing.T) {
	cmd := &cobra.Command{}
	cmd.SetIn(strings.NewReader("yes\n")) // not a terminal: never read
	if err := confirm(cmd, false, "remove rule X"); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("confirm without a terminal = %v, want a refusal naming --yes", err)
	}
	if err := confirm(cmd, true, "remove rule X"); err != nil {
		t.Errorf("confirm --yes = %v", err)
	}
}
