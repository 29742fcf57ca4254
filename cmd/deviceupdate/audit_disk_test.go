package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestAuditFullDisk: with the disk holding the audit trail full, an admin
// change fails with a clear error and takes no effect: user add, config
// set, rule approve and testdevice add each leave their list as it was.
// Once there is room again they succeed and the trail verifies.
func TestAuditFullDisk(t *testing.T) {
	data := e2e.Tmpfs(t, 4<<20)
	srv := e2e.Start(t, e2e.Options{Data: filepath.Join(data, "DeviceUpdateFiles")})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", testpkg.Image(20000, 1), testpkg.NewSigner(t, ca, testpki.Options{}))
	if res := e2e.Run(t, "", env, "import", testpkg.MakeCab(t, files)); res.Code != 0 {
		t.Fatalf("import: %s", res.Stderr)
	}
	const rule = "UCPhone/Polycom/CX600/A/ENU/CPE"
	lists := func() string {
		t.Helper()
		var out []string
		for _, args := range [][]string{{"user", "list", "--json"}, {"config", "get", "--json"}, {"rule", "list", "--json"}, {"testdevice", "list", "--json"}} {
			res := e2e.Run(t, "", env, args...)
			if res.Code != 0 {
				t.Fatalf("%v: %s", args, res.Stderr)
			}
			out = append(out, res.Stdout)
		}
		return strings.Join(out, "\n")
	}
	// A full disk refuses an append only once the trail's last block is
	// full: a real one reaches that state, so make the test's trail reach
	// it, with changes, before the disk is filled. Every entry has more
	// than 250 bytes (two SHA-256 in hex, a time, the names).
	trail := filepath.Join(srv.Data, audit.Dir, audit.FileName)
	room := func() int64 {
		t.Helper()
		fi, err := os.Stat(trail)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Blocks*512 - fi.Size()
	}
	for i := 0; room() >= 250; i++ {
		if i == 64 {
			t.Fatalf("the trail's last block still has %d bytes free", room())
		}
		if res := e2e.Run(t, "", env, "config", "set", fmt.Sprintf("PollIntervalSeconds=%d", 3600+i)); res.Code != 0 {
			t.Fatal(res.Stderr)
		}
	}
	before := lists()
	changes := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"user add", "a long enough password\n", []string{"user", "add", "phone-redmond", "--password-stdin"}},
		{"config set", "", []string{"config", "set", "MaxLogFileSize=2048000"}},
		{"rule approve", "", []string{"rule", "approve", rule}},
		{"testdevice add", "", []string{"testdevice", "add", "--name", "lab", "--serial", "SN1"}},
	}

	free := e2e.Fill(t, data)
	for _, c := range changes {
		res := runStdin(t, env, c.stdin, c.args...)
		t.Logf("%s: %s", c.name, res.Stderr)
		if res.Code != 1 || !strings.HasPrefix(res.Stderr, "deviceupdate: the change was not made: ") || !strings.Contains(res.Stderr, "disk is full") ||
			strings.Count(res.Stderr, "\n") != 1 {
			t.Errorf("%s on a full disk: exit %d %q, want one line saying it was not made", c.name, res.Code, res.Stderr)
		}
	}
	if after := lists(); after != before {
		t.Errorf("changes refused on a full disk took effect:\nbefore %s\nafter  %s", before, after)
	}

	free()
	for _, c := range changes {
		if res := runStdin(t, env, c.stdin, c.args...); res.Code != 0 {
			t.Errorf("%s with room again: %s", c.name, res.Stderr)
		}
	}
	if res := e2e.Run(t, "", env, "audit", "verify"); res.Code != 0 {
		t.Errorf("audit verify: %s", res.Stderr)
	}
	var list deviceupdate.AuditList
	if err := json.Unmarshal([]byte(e2e.Run(t, "", env, "audit", "list", "--json").Stdout), &list); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range list.Entries {
		actions = append(actions, e.Action+" "+e.Result)
	}
	t.Logf("audit trail: %q", actions)
	if n := len(list.Entries); n < 5 || list.Entries[n-1].Action != "testdevice.add" || list.Entries[n-1].Result != audit.ResultOK {
		t.Errorf("audit trail after the disk had room again: %q", actions)
	}
}

// TestAuditLastEntryDeleted: the store keeps the trail's last entry, so a
// trail whose last line was deleted while the server was stopped fails
// audit verify, naming the missing entry, and the metric says so.
func TestAuditLastEntryDeleted(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	env := func() []string {
		return []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	}
	for _, name := range []string{"lab0", "lab1", "lab2"} {
		if res := e2e.Run(t, "", env(), "testdevice", "add", "--name", name, "--serial", "SN-"+name); res.Code != 0 {
			t.Fatal(res.Stderr)
		}
	}
	if code := srv.Stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	path := filepath.Join(srv.Data, audit.Dir, audit.FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:len(lines)-1], "")), 0o640); err != nil {
		t.Fatal(err)
	}

	srv = e2e.Start(t, e2e.Options{Data: srv.Data, Certs: srv.Certs})
	res := e2e.Run(t, "", env(), "audit", "verify")
	t.Logf("audit verify: %s", res.Stderr)
	if res.Code != 1 || !strings.Contains(res.Stderr, "entry 3") || !strings.Contains(res.Stderr, "removed") {
		t.Errorf("audit verify of a trail without its last entry: exit %d %q", res.Code, res.Stderr)
	}
	_, body := adminGet(t, srv, "/metrics")
	if !strings.Contains(body, "\ndeviceupdate_audit_trail_broken 1\n") {
		t.Error("the metric does not report the trail broken")
	}
	// The break stays: a change made after it does not hide it.
	if res := e2e.Run(t, "", env(), "testdevice", "add", "--name", "lab3", "--serial", "SN-lab3"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	if res := e2e.Run(t, "", env(), "audit", "verify"); res.Code != 1 {
		t.Errorf("audit verify after another change: exit %d %q", res.Code, res.Stderr)
	}
}
