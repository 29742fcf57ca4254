package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

// TestDoctorInARepositoryClone: run where ./DeviceUpdateFiles holds only a
// README, as in a clone, doctor skips the disk check with a note; named
// with --data, the same folder fails the check and says what to do.
func TestDoctorInARepositoryClone(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "DeviceUpdateFiles"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "DeviceUpdateFiles", "README.md"), []byte("The default data folder.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		extra      []string
		wantStatus string
		wantText   string
		wantFix    string
	}{
		{"found here", nil, "skip", "./DeviceUpdateFiles holds no deviceupdate.db: not a server's data folder; pass --data", ""},
		{"named with --data", []string{"--data", "./DeviceUpdateFiles"}, "FAIL", "./DeviceUpdateFiles holds no deviceupdate.db", "point --data at the server's data folder (serve's --data)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Nothing answers at the server or the DNS server: only the disk check matters here.
			args := append([]string{"doctor", "--domain", "contoso.com", "--server", "https://127.0.0.1:1", "--dns-server", "127.0.0.1:9",
				"--certs", t.TempDir(), "--timeout", "2s", "--json"}, tt.extra...)
			res := e2e.Run(t, dir, nil, args...)
			var doc struct {
				Checks []struct{ Check, Status, Message, Fix string }
			}
			if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil || res.Code != 1 {
				t.Fatalf("doctor: exit %d, %v\n%s%s", res.Code, err, res.Stdout, res.Stderr)
			}
			for _, c := range doc.Checks {
				if c.Check == "disk" {
					if c.Status != tt.wantStatus || c.Message != tt.wantText || c.Fix != tt.wantFix {
						t.Errorf("disk: %s %q (fix %q); want %s %q (fix %q)", c.Status, c.Message, c.Fix, tt.wantStatus, tt.wantText, tt.wantFix)
					}
					return
				}
			}
			t.Errorf("no disk check in %s", res.Stdout)
		})
	}
}
