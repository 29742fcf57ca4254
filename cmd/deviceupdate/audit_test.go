package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

// TestTamperedAuditTrail: after the trail file is tampered with (a byte of
// a line edited, a middle line deleted), audit list still lists it and
// marks the break, audit verify names it, the metric says so, doctor fails
// its audit check, and the server logs it at error level, also when it
// starts on the broken trail.
func TestTamperedAuditTrail(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Domain: "contoso.test", Args: []string{"--dns", "127.0.0.1:0"}})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	for i := range 5 {
		if res := e2e.Run(t, "", env, "testdevice", "add", "--name", fmt.Sprintf("lab%d", i), "--serial", fmt.Sprintf("SN%d", i)); res.Code != 0 {
			t.Fatal(res.Stderr)
		}
	}
	path := filepath.Join(srv.Data, audit.Dir, audit.FileName)
	intact, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(intact), "\n")
	metric := func() string {
		t.Helper()
		for _, l := range strings.Split(srv.Metrics(), "\n") {
			if strings.HasPrefix(l, "deviceupdate_audit_trail_broken ") {
				return l
			}
		}
		t.Fatalf("no deviceupdate_audit_trail_broken in /metrics")
		return ""
	}
	if got := metric(); got != "deviceupdate_audit_trail_broken 0" {
		t.Errorf("intact trail: %s", got)
	}

	tests := []struct {
		name           string
		trail          string
		wantMarker     string
		wantVerified   []string
		wantUnverified []string
	}{
		{"a byte of a line edited", strings.Replace(string(intact), `"target":"lab2"`, `"target":"lab9"`, 1),
			"---- chain broken at line 3: its content does not match its hash (the entry was altered); entries below are not verified ----",
			[]string{"lab0", "lab1"}, []string{"lab9", "lab3", "lab4"}},
		{"a middle line deleted", lines[0] + lines[2] + lines[3] + lines[4],
			"---- chain broken at line 2: sequence number 3 follows 1 (an entry was removed or moved); entries below are not verified ----",
			[]string{"lab0"}, []string{"lab2", "lab3", "lab4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.trail), 0o640); err != nil {
				t.Fatal(err)
			}
			res := e2e.Run(t, "", env, "audit", "list")
			if res.Code != 0 {
				t.Fatalf("audit list: exit %d %s", res.Code, res.Stderr)
			}
			out := strings.Split(strings.TrimSpace(res.Stdout), "\n")
			marker := 1 + len(tt.wantVerified)
			if len(out) != marker+1+len(tt.wantUnverified) || out[marker] != tt.wantMarker {
				t.Fatalf("audit list:\n%s\nwant the marker %q on line %d", res.Stdout, tt.wantMarker, marker+1)
			}
			for i, target := range tt.wantVerified {
				if l := out[1+i]; !strings.Contains(l, " "+target+" ") || strings.Contains(l, "unverified") {
					t.Errorf("verified row %q, want %s", l, target)
				}
			}
			for i, target := range tt.wantUnverified {
				if l := out[marker+1+i]; !strings.Contains(l, " "+target+" ") || !strings.HasSuffix(l, "ok (unverified)") {
					t.Errorf("row after the break %q, want %s marked unverified", l, target)
				}
			}

			var list deviceupdate.AuditList
			if err := json.Unmarshal([]byte(e2e.Run(t, "", env, "audit", "list", "--json").Stdout), &list); err != nil {
				t.Fatal(err)
			}
			if list.Broken == nil || list.Broken.Line != marker || len(list.Entries) != len(tt.wantVerified)+len(tt.wantUnverified) ||
				list.Entries[marker-2].Unverified || !list.Entries[marker-1].Unverified {
				t.Errorf("audit list --json: %+v", list)
			}

			res = e2e.Run(t, "", env, "audit", "verify")
			if res.Code != 1 || !strings.Contains(res.Stderr, fmt.Sprintf("broken at line %d", marker)) {
				t.Errorf("audit verify: exit %d %q", res.Code, res.Stderr)
			}
			if got := metric(); got != "deviceupdate_audit_trail_broken 1" {
				t.Errorf("metric: %s", got)
			}
			res = e2e.Run(t, t.TempDir(), nil, "doctor", "--domain", "contoso.test", "--server", srv.URL(),
				"--dns-server", srv.DNSAddr, "--certs", srv.Certs)
			wantDoctor := fmt.Sprintf("FAIL  audit: the admin audit trail is broken at line %d", marker)
			if res.Code != 1 || !strings.Contains(res.Stdout, wantDoctor) || !strings.Contains(res.Stdout, "restore audit.log") ||
				res.Stderr != "deviceupdate: 1 of 16 checks failed\n" {
				t.Errorf("doctor: exit %d\n%s%s\nwant %q alone", res.Code, res.Stdout, res.Stderr, wantDoctor)
			}
		})
	}

	// Put back, the trail is intact again.
	if err := os.WriteFile(path, intact, 0o640); err != nil {
		t.Fatal(err)
	}
	if res := e2e.Run(t, "", env, "audit", "verify"); res.Code != 0 {
		t.Errorf("audit verify of the trail put back: %s", res.Stderr)
	}
	if got := metric(); got != "deviceupdate_audit_trail_broken 0" {
		t.Errorf("metric after the trail was put back: %s", got)
	}

	// A start on a broken trail serves, says so at error level, and
	// reports it before anyone reads the trail.
	if err := os.WriteFile(path, []byte(tests[1].trail), 0o640); err != nil {
		t.Fatal(err)
	}
	if code := srv.Stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	var errors []string
	for _, l := range srv.Logs() {
		if l["msg"] == "audit trail is broken" && l["level"] == "error" {
			errors = append(errors, fmt.Sprint(l["line"]))
		}
	}
	if len(errors) < 6 { // each listing and verification above, by the CLI and by doctor
		t.Errorf("the broken trail was logged at error level %d times: %v", len(errors), errors)
	}
	srv = e2e.Start(t, e2e.Options{Data: srv.Data, Certs: srv.Certs})
	if got := metric(); got != "deviceupdate_audit_trail_broken 1" {
		t.Errorf("metric after a start on a broken trail: %s", got)
	}
	if res := e2e.Run(t, "", []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs},
		"testdevice", "add", "--name", "lab5", "--serial", "SN5"); res.Code != 0 {
		t.Errorf("an admin change on a broken trail: %s", res.Stderr)
	}
	srv.Stop()
	if l := srv.FindLog("audit trail is broken"); l == nil || l["level"] != "error" || l["line"] != float64(2) {
		t.Errorf("start on a broken trail logged %v", l)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `"target":"lab5"`) {
		t.Error("the change made on a broken trail is not in it")
	}
}
