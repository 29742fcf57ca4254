package main_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

// TestDiscoveryDNS is issue 8's "done when" for the responder: serve with
// --dns answers ucupdates-r2.<domain> in any case over UDP and TCP with
// the HTTPS listener's address, NXDOMAINs other names of the domain and
// refuses names outside it; doctor passes on that fresh serve.
func TestDiscoveryDNS(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Domain: "contoso.test", Args: []string{"--dns", "127.0.0.1:0", "--external", "127.0.0.1:0"}})
	if srv.DNSAddr == "" {
		t.Fatalf("no dns listening line:\n%s", srv.Stderr())
	}
	for _, transport := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: transport, Timeout: 10 * time.Second}
		for _, tc := range []struct {
			name   string
			qtype  uint16
			rcode  int
			answer string
		}{
			{"UCUpdates-R2.Contoso.TEST.", dns.TypeA, dns.RcodeSuccess, "UCUpdates-R2.Contoso.TEST.\t300\tIN\tA\t127.0.0.1"},
			{"ucupdates-r2.contoso.test.", dns.TypeAAAA, dns.RcodeSuccess, ""}, // NODATA: HTTPS listens on IPv4 only
			{"other.contoso.test.", dns.TypeA, dns.RcodeNameError, ""},
			{"example.com.", dns.TypeA, dns.RcodeRefused, ""},
		} {
			q := new(dns.Msg)
			q.SetQuestion(tc.name, tc.qtype)
			in, _, err := c.Exchange(q, srv.DNSAddr)
			if err != nil {
				t.Fatalf("%s %s: %v", transport, tc.name, err)
			}
			var answers []string
			for _, rr := range in.Answer {
				answers = append(answers, rr.String())
			}
			if in.Rcode != tc.rcode || strings.Join(answers, "\n") != tc.answer {
				t.Errorf("%s %s %s: %s %q, want %s %q", transport, tc.name, dns.TypeToString[tc.qtype],
					dns.RcodeToString[in.Rcode], answers, dns.RcodeToString[tc.rcode], tc.answer)
			}
			if wantAA := tc.rcode != dns.RcodeRefused; in.Authoritative != wantAA {
				t.Errorf("%s %s: AA = %v, want %v", transport, tc.name, in.Authoritative, wantAA)
			}
		}
	}

	metrics := srv.Metrics()
	for _, want := range []string{
		`deviceupdate_dns_queries_total{qtype="A",rcode="NOERROR",transport="udp"} 1`,
		`deviceupdate_dns_queries_total{qtype="A",rcode="NXDOMAIN",transport="tcp"} 1`,
		`deviceupdate_dns_queries_total{qtype="A",rcode="REFUSED",transport="udp"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	t.Run("doctor passes", func(t *testing.T) {
		res := e2e.Run(t, t.TempDir(), nil, "doctor", "--domain", "contoso.test", "--server", srv.URL(),
			"--dns-server", srv.DNSAddr, "--certs", srv.Certs, "--data", srv.Data)
		if res.Code != 0 || res.Stderr != "" {
			t.Fatalf("doctor: exit %d, stderr %q\n%s", res.Code, res.Stderr, res.Stdout)
		}
		lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
		if len(lines) != 16 {
			t.Errorf("%d lines, want one per check:\n%s", len(lines), res.Stdout)
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, "ok    ") {
				t.Errorf("not ok: %s", l)
			}
		}
		if want := "ok    dns: ucupdates-r2.contoso.test resolves to 127.0.0.1 through " + srv.DNSAddr; !strings.Contains(res.Stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, res.Stdout)
		}

		// --json, with the server, certs and token from the environment.
		res = e2e.Run(t, t.TempDir(), []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs},
			"doctor", "--domain", "contoso.test", "--dns-server", srv.DNSAddr, "--json")
		var doc struct {
			OK     bool `json:"ok"`
			Checks []struct {
				Check, Status, Message string
			} `json:"checks"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil || res.Code != 0 || !doc.OK {
			t.Fatalf("doctor --json: exit %d, %v, %q %q", res.Code, err, res.Stdout, res.Stderr)
		}
		statuses := map[string]string{}
		for _, c := range doc.Checks {
			statuses[c.Check] = c.Status
		}
		if statuses["server"] != "ok" || statuses["http"] != "ok" || statuses["disk"] != "skip" {
			t.Errorf("statuses %v: want the token from $DEVICEUPDATE_CERTS used, and disk skipped without --data", statuses)
		}
	})

	if code := srv.Stop(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d\n%s", code, srv.Stderr())
	}
	if srv.FindLog("stopped") == nil {
		t.Error(`no "stopped" log line`)
	}
}

// TestDoctorMissingSAN is issue 8's "done when" for doctor: with a server
// certificate that lacks UCUpdates-R2.<domain>, doctor fails and names it.
func TestDoctorMissingSAN(t *testing.T) {
	certsDir := filepath.Join(t.TempDir(), "certs")
	if res := e2e.Run(t, "", nil, "certs", "init", "--domain", "fabrikam.test", "--certs", certsDir, "--ip", "127.0.0.1"); res.Code != 0 {
		t.Fatalf("certs init: %d %s", res.Code, res.Stderr)
	}
	srv := e2e.Start(t, e2e.Options{Certs: certsDir, Domain: "contoso.test", Args: []string{"--dns", "127.0.0.1:0"}})
	defer srv.Stop()
	res := e2e.Run(t, t.TempDir(), nil, "doctor", "--domain", "contoso.test", "--server", srv.URL(),
		"--dns-server", srv.DNSAddr, "--certs", certsDir, "--data", srv.Data)
	if res.Code != 1 {
		t.Fatalf("doctor: exit %d, want 1\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	want := "FAIL  cert-sans: the server certificate lacks UCUpdates-R2.contoso.test"
	if !strings.Contains(res.Stdout, want) || !strings.Contains(res.Stdout, "deviceupdate certs init --domain contoso.test --certs "+certsDir) {
		t.Errorf("stdout lacks %q and its fix:\n%s", want, res.Stdout)
	}
	if strings.Count(res.Stdout, "FAIL") != 1 {
		t.Errorf("more than the SAN check failed:\n%s", res.Stdout)
	}
	if res.Stderr != "deviceupdate: 1 of 16 checks failed\n" {
		t.Errorf("stderr %q", res.Stderr)
	}
}
