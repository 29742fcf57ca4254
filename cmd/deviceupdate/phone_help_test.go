package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestPhoneLoadHelpSaysPhonesAreRecorded: a load test fills the inventory
// with fake phones; its help says so and how to forget them.
func TestPhoneLoadHelpSaysPhonesAreRecorded(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"phone", "load", "--help"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	help := strings.Join(strings.Fields(stdout.String()), " ")
	for _, want := range []string{"records every phone that polls in its inventory", "deviceupdate device prune --not-seen AGE"} {
		if !strings.Contains(help, want) {
			t.Errorf("phone load --help lacks %q:\n%s", want, stdout.String())
		}
	}
}
