package poll_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

var update = flag.Bool("update", false, "rewrite the golden answers in testdata/answers")

// goldenFixture stores two versions of the CX600's firmware, each two
// images (one of more than a chunk) and a catalog: 4.0.7577.4366
// approved, 4.0.7577.4400 pending.
func goldenFixture(t testing.TB) *fixture {
	f := newFixture(t)
	f.addUpdate(t, cx600, "4.0.7577.4366", map[string][]byte{"CPE.nbt": content(3<<19, 1), "Boot.nbt": content(1000, 2)})
	f.approve(t, cx600)
	f.addUpdate(t, cx600, "4.0.7577.4400", map[string][]byte{"CPE.nbt": content(3<<19, 3), "Boot.nbt": content(1000, 4)})
	return f
}

// TestAnswerGolden: the bytes of a poll's answer, through the handler
// stack, are those of testdata/answers/<case>.xml (go test -update
// rewrites them): offers with peer sharing on and off, hosts from the
// request and from the settings, and no offer.
func TestAnswerGolden(t *testing.T) {
	const phone, lab = "00-04-F2-00-00-02", "00-04-F2-00-00-01"
	tests := []struct {
		name         string
		setup        func(t *testing.T, f *fixture)
		mac, running string
		host, remote string
	}{
		{"nothing", func(*testing.T, *fixture) {}, phone, "4.0.7577.4366", "updates.example", "192.0.2.10"},
		{"approved-sharing-off", func(*testing.T, *fixture) {}, phone, "4.0.7577.4100", "updates.example", "192.0.2.10"},
		{"approved-sharing-on", func(t *testing.T, f *fixture) {
			f.set(t, deviceupdate.ScopeGlobal, map[string]string{"PeerFirmwareSharing": "true"})
		}, phone, "4.0.7577.4100", "updates.example", "192.0.2.10"},
		{"pending-test-device-configured-hosts", func(t *testing.T, f *fixture) {
			f.addTestDevice(t, deviceupdate.TestDevice{Name: "lab", MAC: lab, Scope: deviceupdate.ScopeGlobal})
			f.set(t, deviceupdate.ScopeGlobal, map[string]string{"InternalHostName": "files.example:8080", "ExternalHostName": "ext.example"})
			f.setDevice(t, lab, map[string]string{"PeerFirmwareSharing": "true"})
		}, lab, "4.0.7577.4366", "updates.example:8081", "192.0.2.10"},
		{"site-settings", func(t *testing.T, f *fixture) {
			f.addSite(t, "Redmond", "10.1.0.0/16")
			f.set(t, "site:Redmond", map[string]string{"PollIntervalSeconds": "3600", "PeerFirmwareSharing": "true", "InternalHostName": "redmond.example"})
		}, phone, "4.0.7577.4100", "[2001:db8::1]", "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := goldenFixture(t)
			tt.setup(t, f)
			got := f.post(t, tt.host, tt.remote, pollBody(tt.mac, tt.running))
			path := filepath.Join("testdata", "answers", tt.name+".xml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal([]byte(got), want) {
				t.Errorf("answer differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}
