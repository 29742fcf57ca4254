package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestEveryJSONOutputIsOneCompactDocument runs every command that has
// --json against one running server, in an order that gives each
// something to show, and checks what each prints: one JSON document on
// one line, compact, with no duration in nanoseconds (no key ending in
// "Ns"). A command with --json that the test does not run fails it.
func TestEveryJSONOutputIsOneCompactDocument(t *testing.T) {
	srv, ca := startTrusting(t)
	trust := filepath.Join(t.TempDir(), "publisher.pem")
	testpki.WriteCert(t, trust, ca.Cert)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	pkg := func(version string) string {
		files := testpkg.Files{}
		testpkg.AddUpdate(t, files, "", version, testpkg.Image(64<<10, byte(len(version))), sign)
		return testpkg.MakeCab(t, files)
	}
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	const key, mac = "UCPhone/Polycom/CX600/A/ENU/CPE", "00-04-F2-00-40-01"
	first := pkg("4.0.7577.4100")
	phone := []string{"--model", "CX600", "--version", "4.0.7577.4000", "--trust", trust, "--peer-sharing", "off", "--json"}
	block := "127." + strconv.Itoa(100+rand.IntN(150)) + "." + strconv.Itoa(1+rand.IntN(250)) + ".1"

	steps := []struct {
		args  []string
		stdin string
		fails bool // exits 1, still printing its document
	}{
		{args: []string{"cab", "list", first, "--json"}},
		{args: []string{"import", first, "--json"}},
		{args: []string{"rule", "list", "--json"}},
		{args: []string{"rule", "approve", key, "--json"}},
		{args: []string{"import", pkg("4.0.7577.4366"), "--json"}},
		{args: []string{"rule", "approve", key, "--json"}},
		{args: []string{"import", pkg("4.0.7577.4400"), "--json"}},
		{args: []string{"rule", "approve", key, "--waves", "50,100", "--json"}},
		{args: []string{"rule", "rollout", key, "--json"}},
		{args: []string{"rule", "pause", key, "--json"}},
		{args: []string{"rule", "resume", key, "--json"}},
		{args: []string{"rule", "reset", key, "--json"}},   // aborts the rollout
		{args: []string{"rule", "restore", key, "--json"}}, // 4.0.7577.4100 approved again
		{args: append([]string{"phone", "run", "--server", srv.InternalURL(), "--mac", mac, "--state", t.TempDir(), "--once"}, phone...)},
		{args: append([]string{"phone", "sim", "--server", srv.InternalURL(), "--count", "2", "--first-addr", block}, phone...)},
		{args: []string{"phone", "load", "--server", srv.InternalURL(), "--phones", "5", "--requests", "10", "--concurrency", "2", "--json"}},
		{args: []string{"phone", "download", "--clients", "2", "--json", srv.InternalURL() + "/DeviceUpdateFiles_Int/" + key[:strings.LastIndex(key, "/")] + "/4.0.7577.4100/CPE/CPE.nbt"}},
		{args: []string{"device", "list", "--json"}},
		{args: []string{"device", "config", mac, "--json"}},
		{args: []string{"device", "prune", "--not-seen", "30d", "--yes", "--json"}},
		{args: []string{"device", "remove", mac, "--json"}},
		{args: []string{"site", "set", "Lab", "--subnet", "10.9.0.0/16", "--json"}},
		{args: []string{"site", "list", "--json"}},
		{args: []string{"testdevice", "add", "--name", "lab", "--mac", "00-04-F2-00-40-02", "--json"}},
		{args: []string{"testdevice", "list", "--json"}},
		{args: []string{"config", "set", "--site", "Lab", "PollIntervalSeconds=3600", "--json"}},
		{args: []string{"config", "get", "--json"}},
		{args: []string{"user", "add", "phone-redmond", "--password-stdin", "--json"}, stdin: "correct horse battery staple\n"},
		{args: []string{"user", "list", "--json"}},
		{args: []string{"admin", "add", "olivia", "--role", "operator", "--no-password", "--json"}},
		{args: []string{"admin", "list", "--json"}},
		{args: []string{"admin", "token", "olivia", "--expires", "7d", "--json"}},
		{args: []string{"admin", "token", "olivia", "--list", "--json"}},
		{args: []string{"logs", "list", "--json"}},
		{args: []string{"logs", "clear", "--days-back", "7", "--json"}},
		{args: []string{"files", "clear", "--yes", "--json"}},
		{args: []string{"rule", "remove", key, "--yes", "--json"}},
		{args: []string{"audit", "list", "--json"}},
		{args: []string{"audit", "verify", "--json"}},
		{args: []string{"doctor", "--domain", "contoso.com", "--server", srv.URL(), "--certs", srv.Certs, "--dns-server", "127.0.0.1:9", "--json"}, fails: true},
	}

	root := newRootCommand(io.Discard, io.Discard)
	ran := map[string]bool{}
	for _, s := range steps {
		c, _, err := root.Find(s.args)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(c.CommandPath(), "deviceupdate ")
		ran[name] = true
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := runBinary(t, env, s.stdin, s.args...)
			if code != 0 && !(s.fails && code == 1) {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			checkOneCompactDocument(t, stdout)
		})
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if name := strings.TrimPrefix(c.CommandPath(), "deviceupdate "); c.Flags().Lookup("json") != nil && !ran[name] {
			t.Errorf("%q has --json but this test does not run it: add a step", name)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// checkOneCompactDocument fails unless out is one compact JSON document
// and a newline, with no key naming nanoseconds.
func checkOneCompactDocument(t *testing.T, out string) {
	t.Helper()
	doc, ok := strings.CutSuffix(out, "\n")
	if !ok || strings.Contains(doc, "\n") {
		t.Fatalf("not one line: %q", out)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(doc)); err != nil {
		t.Fatalf("not JSON (%v): %q", err, out)
	}
	if compact.String() != doc {
		t.Errorf("not compact:\n%s\nwant\n%s", doc, compact.String())
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if k, isKey := tok.(string); isKey && (strings.HasSuffix(k, "Ns") || strings.Contains(strings.ToLower(k), "nano")) {
			t.Errorf("key %q holds nanoseconds; write seconds or a duration string", k)
		}
	}
}

// runBinary runs the built binary with the admin environment env and
// stdin as its standard input.
func runBinary(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(e2e.Binary(t), args...)
	cmd.Env = e2e.Env(env...)
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return out.String(), errOut.String(), exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), 0
}
