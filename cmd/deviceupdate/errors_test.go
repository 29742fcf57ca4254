package main

import (
	"bytes"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestErrorsAreOneReadableLine runs real sources of multi-line errors
// (cobra's unknown commands with suggestions, YAML errors from a bad
// --config file, a server's message holding line breaks) and checks that
// each is printed as one clear line: no empty "; ;" parts, no tabs, the
// suggestion kept.
func TestErrorsAreOneReadableLine(t *testing.T) {
	dir := t.TempDir()
	config := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	server := multiLineErrorServer(t, dir)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string // the whole line after "deviceupdate: "
	}{
		{"unknown command with a suggestion", []string{"rules"}, exitUsage,
			`unknown command "rules" for "deviceupdate"; did you mean "rule"? (see 'deviceupdate --help')`},
		{"unknown command with several suggestions", []string{"c"}, exitUsage,
			`unknown command "c" for "deviceupdate"; did you mean "cab", "certs" or "config"? (see 'deviceupdate --help')`},
		{"unknown command without a suggestion", []string{"xyzzy"}, exitUsage,
			`unknown command "xyzzy" for "deviceupdate" (see 'deviceupdate --help')`},
		{"unknown subcommand of a group", []string{"rule", "aprove", "3f1a9c0b2d4e"}, exitUsage,
			`unknown command "aprove" for "deviceupdate rule"; did you mean "approve"? (see 'deviceupdate rule --help')`},
		{"unknown subcommand, flags first", []string{"cab", "--help=false", "lst"}, exitUsage,
			`unknown command "lst" for "deviceupdate cab"; did you mean "list"? (see 'deviceupdate cab --help')`},
		{"yaml syntax error", []string{"serve", "--config", config("syntax.yaml", "https: [\n  bad\nfoo: 1\n")}, exitError,
			"config " + dir + "/syntax.yaml: line 2: did not find expected ',' or ']'"},
		{"yaml key twice", []string{"serve", "--config", config("twice.yaml", "https: :8443\nhttp: :8080\nhttps: :9443\n")}, exitError,
			"config " + dir + `/twice.yaml: line 3: mapping key "https" already defined at line 1`},
		{"yaml unknown key and a list", []string{"serve", "--config", config("kinds.yaml", "https: :8443\nnope: 1\nhttp:\n  - :80\n")}, exitError,
			"config " + dir + `/kinds.yaml: line 2: unknown setting "nope" (settings: certs, data, dns, dns-answer, domain, external, files, files-cache, http, https, log-level, log-quota, max-devices, max-downloads, max-external-downloads, max-external-polls, max-external-uploads, max-polls, max-uploads, metrics, store, tls-min); line 4: want one value, not a list`},
		{"yaml not a mapping", []string{"serve", "--config", config("list.yaml", "- https\n- http\n")}, exitError,
			"config " + dir + "/list.yaml: line 1: want settings as KEY: VALUE lines"},
		{"multi-line server error", []string{"rule", "list", "--server", server, "--certs", dir, "--token", "t"}, exitError,
			"two problems:; CPE.xml: no <Version>; CPE.cat: not signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := runExpecting(t, tt.args, tt.wantCode), "deviceupdate: "+tt.want+"\n"; got != want {
				t.Errorf("stderr:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// runExpecting runs a command line in this process, checks its exit code
// and returns what it printed on stderr.
func runExpecting(t *testing.T, args []string, wantCode int) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != wantCode {
		t.Errorf("%q: exit code = %d, want %d; stderr %q", args, code, wantCode, stderr.String())
	}
	return stderr.String()
}

// multiLineErrorServer is an HTTPS server whose admin API answers every
// request with an error message of several lines, as a server of another
// version or a proxy might; its certificate is written to dir/ca.crt.
func multiLineErrorServer(t *testing.T, dir string) string {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"code":"invalid","message":"two problems:\n\n\tCPE.xml: no <Version>\n\tCPE.cat:   not signed\n"}}`))
	}))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL
}

// TestEditDistance: the distance behind "did you mean" counts runes, not
// bytes, and a swap of two letters as two edits.
func TestEditDistance(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{"both empty", "", "", 0},
		{"equal", "rule", "rule", 0},
		{"one deleted", "rules", "rule", 1},
		{"two swapped", "improt", "import", 2},
		{"from empty", "", "abc", 3},
		{"classic", "kitten", "sitting", 3},
		{"one rune of two bytes", "é", "e", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := editDistance(tt.a, tt.b); got != tt.want {
				t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := editDistance(tt.b, tt.a); got != tt.want {
				t.Errorf("editDistance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
			}
		})
	}
}
