package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate/internal/handler"
)

func TestDefaultConfig(t *testing.T) {
	got := DefaultConfig()
	want := Config{Data: "./DeviceUpdateFiles", Certs: "./certs", HTTPS: ":443", HTTP: ":80", Domain: "", LogLevel: "info",
		MaxPolls: strconv.Itoa(handler.DefaultPollLimit), MaxDownloads: strconv.Itoa(handler.DefaultDownloadLimit),
		MaxUploads: strconv.Itoa(handler.DefaultUploadLimit), LogQuota: "2GiB",
		TLSMin: "1.2", MaxDevices: "1000000",
		MaxExternalPolls: strconv.Itoa(handler.DefaultExternalPollLimit), MaxExternalDownloads: strconv.Itoa(handler.DefaultExternalDownloadLimit),
		MaxExternalUploads: strconv.Itoa(handler.DefaultExternalUploadLimit), FilesCache: "10GiB"}
	if got != want {
		t.Fatalf("DefaultConfig = %+v, want SPEC §1's %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	// Every setting has a flag and help text.
	for key := range got.fields() {
		if flagHelp[key] == "" {
			t.Errorf("setting %q has no help text", key)
		}
	}
}

// TestConfigLayers: defaults, then the file, then flags.
func TestConfigLayers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "deviceupdate.yaml")
	if err := os.WriteFile(file, []byte("https: :8443\nhttp: :8080\ndomain: file.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	cmd := &cobra.Command{}
	apply := c.bindFlags(cmd.Flags())
	if err := cmd.Flags().Parse([]string{"--http", "", "--log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	got := DefaultConfig()
	if err := got.LoadFile(file); err != nil {
		t.Fatal(err)
	}
	apply(&got)
	want := Config{Data: "./DeviceUpdateFiles", Certs: "./certs", HTTPS: ":8443", HTTP: "", Domain: "file.example", LogLevel: "debug",
		MaxPolls: "1024", MaxDownloads: "512", MaxUploads: "256", LogQuota: "2GiB", TLSMin: "1.2", MaxDevices: "1000000",
		MaxExternalPolls: "256", MaxExternalDownloads: "128", MaxExternalUploads: "64", FilesCache: "10GiB"}
	if got != want {
		t.Errorf("config = %+v, want %+v", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"http disabled", func(c *Config) { c.HTTP = "" }, ""},
		{"both on port 0", func(c *Config) { c.HTTP, c.HTTPS = "127.0.0.1:0", "127.0.0.1:0" }, ""},
		{"https disabled", func(c *Config) { c.HTTPS = "" }, "--https is empty"},
		{"no port", func(c *Config) { c.HTTPS = "localhost" }, `--https "localhost" is not a listen address`},
		{"same port twice", func(c *Config) { c.HTTP, c.HTTPS = ":8443", ":8443" }, "give them different ports"},
		{"bad domain", func(c *Config) { c.Domain = "contoso..com" }, `--domain "contoso..com" is not a DNS domain`},
		{"bad level", func(c *Config) { c.LogLevel = "verbose" }, `--log-level "verbose"`},
		{"no data", func(c *Config) { c.Data = "" }, "--data is empty"},
		{"zero polls", func(c *Config) { c.MaxPolls = "0" }, `--max-polls "0"`},
		{"bad download limit", func(c *Config) { c.MaxDownloads = "many" }, `--max-downloads "many"`},
		{"zero external polls", func(c *Config) { c.MaxExternalPolls = "0" }, `--max-external-polls "0"`},
		{"bad quota", func(c *Config) { c.LogQuota = "lots" }, `--log-quota "lots"`},
		{"no quota", func(c *Config) { c.LogQuota = "0" }, ""},
		{"external and metrics", func(c *Config) { c.External, c.Metrics = ":8444", "10.0.0.5:9100" }, ""},
		{"external not an address", func(c *Config) { c.External = "internet" }, `--external "internet" is not a listen address`},
		{"metrics not an address", func(c *Config) { c.Metrics = "9100" }, `--metrics "9100" is not a listen address`},
		{"external on the https port", func(c *Config) { c.External = ":443" }, "--https and --external are both :443"},
		{"metrics on the http port", func(c *Config) { c.Metrics = ":80" }, "--http and --metrics are both :80"},
		{"tls 1.0 for Lync Phone Edition", func(c *Config) { c.TLSMin = "1.0" }, ""},
		{"tls 1.3 only", func(c *Config) { c.TLSMin = "1.3" }, ""},
		{"bad tls version", func(c *Config) { c.TLSMin = "TLS1.2" }, `--tls-min "TLS1.2": want 1.2`},
		{"ssl 3", func(c *Config) { c.TLSMin = "0.3" }, `--tls-min "0.3"`},
		{"small inventory", func(c *Config) { c.MaxDevices = "1000" }, ""},
		{"no inventory", func(c *Config) { c.MaxDevices = "0" }, `--max-devices "0": want a whole number from 1`},
		{"inventory of words", func(c *Config) { c.MaxDevices = "1e6" }, `--max-devices "1e6"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestEveryCommandHasHelp walks the command tree: each command answers
// --help with its usage and exit code 0, and has a one-line summary.
func TestEveryCommandHasHelp(t *testing.T) {
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Short == "" {
			t.Errorf("%q has no short description", strings.Join(path, " "))
		}
		var stdout, stderr bytes.Buffer
		code := run(append(append([]string{}, path...), "--help"), &stdout, &stderr)
		if code != exitOK || !strings.Contains(stdout.String(), "Usage:") {
			t.Errorf("%q --help: exit %d, stdout %q, stderr %q", strings.Join(path, " "), code, stdout.String(), stderr.String())
		}
		for _, sub := range c.Commands() {
			if sub.Name() == "help" {
				continue
			}
			walk(sub, append(append([]string{}, path...), sub.Name()))
		}
	}
	walk(newRootCommand(&bytes.Buffer{}, &bytes.Buffer{}), nil)
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate" for "deviceupdate" (see 'deviceupdate --help')`},
		{"unknown flag", []string{"serve", "--nope"}, exitUsage, "unknown flag: --nope (see 'deviceupdate serve --help')"},
		{"stray argument", []string{"serve", "extra"}, exitUsage, "deviceupdate serve takes no arguments, got 1"},
		// --domain after the argument is still parsed as a flag: 1 argument, not 3.
		{"flag after an argument", []string{"certs", "init", "x", "--domain", "contoso.com"}, exitUsage, "takes no arguments, got 1 argument (see"},
		{"bad domain", []string{"certs", "init", "--domain", "-bad-", "--certs", "unused"}, exitError, `--domain "-bad-" is not a DNS domain`},
		{"bad host", []string{"certs", "init", "--host", "fe_01", "--certs", filepath.Join(t.TempDir(), "certs")}, exitError,
			`host name "fe_01" is not a DNS name: its label "fe_01" holds '_'; a label is letters, digits and '-'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runExpecting(t, tt.args, tt.wantCode)
			if got != "deviceupdate: "+tt.wantErr+"\n" && !strings.Contains(got, tt.wantErr) {
				t.Errorf("stderr = %q, want %q", got, tt.wantErr)
			}
			if strings.Count(got, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", got)
			}
		})
	}
}

func TestHTTPServerTimeouts(t *testing.T) {
	m := NewMain(DefaultConfig(), zap.NewNop(), &bytes.Buffer{})
	for _, name := range []string{handler.ListenerHTTP, handler.ListenerHTTPS} {
		srv := m.newHTTPServer(name, nil)
		if srv.ReadHeaderTimeout <= 0 || srv.ReadHeaderTimeout > 30e9 {
			t.Errorf("%s: ReadHeaderTimeout = %v, want a few seconds", name, srv.ReadHeaderTimeout)
		}
		if srv.IdleTimeout <= 0 || srv.IdleTimeout > 300e9 {
			t.Errorf("%s: IdleTimeout = %v, want at most a few minutes", name, srv.IdleTimeout)
		}
		if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
			t.Errorf("%s: MaxHeaderBytes = %d", name, srv.MaxHeaderBytes)
		}
	}
}
