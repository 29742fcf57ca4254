package main

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestConfigValidateDNS(t *testing.T) {
	tests := []struct {
		name      string
		change    func(*Config)
		wantErr   string
		wantUsage bool
	}{
		{"off", func(*Config) {}, "", false},
		{"on", func(c *Config) { c.DNS, c.Domain = "10.0.0.5:53", "contoso.com" }, "", false},
		{"port 0", func(c *Config) { c.DNS, c.Domain = "127.0.0.1:0", "contoso.com" }, "", false},
		{"answers", func(c *Config) { c.DNS, c.Domain, c.DNSAnswer = ":53", "contoso.com", "10.0.0.5, 2001:db8::5" }, "", false},
		{"no domain", func(c *Config) { c.DNS = ":53" }, "--dns needs --domain", true},
		{"no port", func(c *Config) { c.DNS, c.Domain = "10.0.0.5", "contoso.com" }, `--dns "10.0.0.5" is not a listen address`, false},
		{"bad answer", func(c *Config) { c.DNS, c.Domain, c.DNSAnswer = ":53", "contoso.com", "10.0.0.5,fe01" }, `--dns-answer: "fe01" is not an IP address`, false},
		{"unspecified answer", func(c *Config) { c.DNS, c.Domain, c.DNSAnswer = ":53", "contoso.com", "0.0.0.0" }, `"0.0.0.0" is not an IP address phones can reach`, false},
		{"answers without --dns", func(c *Config) { c.DNSAnswer = "10.0.0.5" }, "--dns-answer is set but --dns is not", true},
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
			var ue usageError
			if errors.As(err, &ue) != tt.wantUsage {
				t.Errorf("usage error: %v, want %v", errors.As(err, &ue), tt.wantUsage)
			}
		})
	}
}

// TestServeDNSNeedsDomain: the command line is refused, exit 2, before
// anything is bound or written.
func TestServeDNSNeedsDomain(t *testing.T) {
	var stdout, stderr bytes.Buffer
	dir := t.TempDir()
	code := run([]string{"serve", "--dns", "127.0.0.1:0", "--https", "127.0.0.1:0", "--http", "", "--data", dir + "/data", "--certs", dir + "/certs"}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "--dns needs --domain") || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

// TestDoctorUsage: doctor without --domain is a usage error.
func TestDoctorUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"doctor"}, exitUsage, "doctor needs --domain"},
		{[]string{"doctor", "--domain", "contoso..com"}, exitError, `--domain "contoso..com" is not a DNS domain`},
		{[]string{"doctor", "--domain", "contoso.com", "--server", "http://x"}, exitError, "is not an https:// URL"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}

func TestDNSAnswers(t *testing.T) {
	ifaces := func(cidrs ...string) func() ([]net.Addr, error) {
		return func() ([]net.Addr, error) {
			var out []net.Addr
			for _, c := range cidrs {
				ip, n, err := net.ParseCIDR(c)
				if err != nil {
					t.Fatal(err)
				}
				n.IP = ip
				out = append(out, n)
			}
			return out, nil
		}
	}
	host := ifaces("127.0.0.1/8", "::1/128", "10.0.0.5/24", "fe80::1/64", "2001:db8::5/64", "10.0.0.5/24")
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	tests := []struct {
		name    string
		spec    string
		https   net.Addr
		ifaces  func() ([]net.Addr, error)
		want    []string
		wantErr string
	}{
		{"--dns-answer wins", "192.0.2.1,2001:db8::1", tcp("10.0.0.5:443"), host, []string{"192.0.2.1", "2001:db8::1"}, ""},
		{"the HTTPS address", "", tcp("10.0.0.5:443"), host, []string{"10.0.0.5"}, ""},
		{"a loopback HTTPS address", "", tcp("127.0.0.1:8443"), host, []string{"127.0.0.1"}, ""},
		{"an IPv4-mapped HTTPS address", "", tcp("[::ffff:10.0.0.5]:443"), host, []string{"10.0.0.5"}, ""},
		{"every address: the interfaces but loopback and link-local", "", tcp(":443"), host, []string{"10.0.0.5", "2001:db8::5"}, ""},
		{"only loopback", "", tcp("[::]:443"), ifaces("127.0.0.1/8", "::1/128"), nil, "name them with --dns-answer"},
		{"interfaces unreadable", "", tcp(":443"), func() ([]net.Addr, error) { return nil, errors.New("boom") }, nil, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dnsAnswers(tt.spec, tt.https, tt.ifaces)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("dnsAnswers = %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var strs []string
			for _, a := range got {
				strs = append(strs, a.String())
			}
			if !slices.Equal(strs, tt.want) {
				t.Errorf("answers %v, want %v", strs, tt.want)
			}
			if slices.ContainsFunc(got, func(a netip.Addr) bool { return a.Is4In6() }) {
				t.Error("an IPv4-mapped answer")
			}
		})
	}
}

// TestServeDNSPortInUse: a taken DNS port refuses the start with the
// cause and the fix, before anything is written.
func TestServeDNSPortInUse(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve", "--dns", pc.LocalAddr().String(), "--domain", "contoso.test",
		"--https", "127.0.0.1:0", "--http", "", "--data", dir + "/data", "--certs", dir + "/certs"}, &stdout, &stderr)
	if code != exitError || !strings.Contains(stderr.String(), "address already in use") || !strings.Contains(stderr.String(), "--dns") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	for _, p := range []string{dir + "/data", dir + "/certs"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a refused start created %s", p)
		}
	}
}
