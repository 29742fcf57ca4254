package main_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// pollDevices polls once as each of n devices whose MACs start with
// prefix (two hex digits), and returns their MACs.
func pollDevices(t *testing.T, srv *e2e.Server, prefix string, n int) []string {
	t.Helper()
	var macs []string
	for i := range n {
		mac := fmt.Sprintf("00-04-F2-%s-%02X-%02X", prefix, i/256, i%256)
		if code, body := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(mac, "CX600", "4.0.7577.4000")); code != 200 {
			t.Fatalf("poll %s: %d %s", mac, code, body)
		}
		macs = append(macs, mac)
	}
	return macs
}

// waitFor polls cond every 50 ms until it holds or the deadline passes.
func waitFor(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(deadline); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, deadline)
		}
	}
}

// storedDevices opens the store of a stopped server and returns the IDs
// of its inventory.
func storedDevices(t *testing.T, data string) map[string]bool {
	t.Helper()
	db, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	devices, err := db.Devices()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, d := range devices {
		out[d.ID] = true
	}
	return out
}

func missing(have map[string]bool, want []string) []string {
	var out []string
	for _, id := range want {
		if !have[id] {
			out = append(out, id)
		}
	}
	return out
}

// adminGet sends an admin API GET and returns the status and body.
func adminGet(t *testing.T, srv *e2e.Server, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	return do(t, srv.Client("UCUpdates-R2.contoso.com"), req)
}

// TestInventorySurvivesFullDisk: polls recorded while the disk is full
// are kept in memory and written once space returns; none is lost, and
// the device listing answers meanwhile.
func TestInventorySurvivesFullDisk(t *testing.T) {
	disk := e2e.TinyDisk(t, 1<<20)
	srv := e2e.Start(t, e2e.Options{Data: filepath.Join(disk, "data")})
	free := e2e.FillDisk(t, disk)
	macs := pollDevices(t, srv, "10", 300)
	waitFor(t, "an inventory write fails on the full disk", 20*time.Second, func() bool {
		return strings.Contains(srv.Stderr(), `"level":"error"`) && strings.Contains(srv.Stderr(), "inventory")
	})
	if code, body := adminGet(t, srv, "/admin/api/v1/devices"); code != 200 {
		t.Errorf("GET /devices on a full disk: %d %s", code, body)
	}
	free()
	if code := srv.Stop(); code != 0 {
		t.Errorf("stop: exit %d", code)
	}
	if lost := missing(storedDevices(t, srv.Data), macs); len(lost) > 0 {
		t.Errorf("%d of %d devices polled while the disk was full are not in the inventory, e.g. %s", len(lost), len(macs), lost[0])
	}
}

// TestRequestLogRecoversAfterFullDisk: the request log drops what it could
// not write on a full disk, counts it, and writes the lines of later polls
// once space returns; the device listing never depends on it.
func TestRequestLogRecoversAfterFullDisk(t *testing.T) {
	disk := e2e.TinyDisk(t, 1<<20)
	srv := e2e.Start(t, e2e.Options{Data: filepath.Join(disk, "data")})
	free := e2e.FillDisk(t, disk)
	pollDevices(t, srv, "20", 200)
	waitFor(t, "a write fails on the full disk", 20*time.Second, func() bool {
		return strings.Contains(srv.Stderr(), `"level":"error"`)
	})
	if code, body := adminGet(t, srv, "/admin/api/v1/devices"); code != 200 {
		t.Errorf("GET /devices on a full disk: %d %s", code, body)
	}
	free()

	later := pollDevices(t, srv, "21", 20)
	logDir := filepath.Join(srv.Data, filepath.FromSlash(audit.RequestLogDir))
	var text string
	waitFor(t, "the later polls' lines appear in the request log", 15*time.Second, func() bool {
		text = readRequestLogs(t, logDir)
		return len(missingIn(text, later)) == 0
	})
	line := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ;127\.0\.0\.1;UCPhone;00-04-F2-2[01]-00-[0-9A-F]{2};;Polycom;CX600;A;ENU;CPE\.nbt;4\.0\.7577\.4000;;;$`)
	for i, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if !line.MatchString(l) {
			t.Errorf("line %d of the request log is not a whole line: %q", i+1, l)
		}
	}
	code, body := adminGet(t, srv, "/metrics")
	m := regexp.MustCompile(`(?m)^deviceupdate_request_log_dropped_lines_total (\d+)$`).FindStringSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("/metrics: %d, no deviceupdate_request_log_dropped_lines_total", code)
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 || n > 200 {
		t.Errorf("dropped lines = %d, want 1 to 200", n)
	}
	if code := srv.Stop(); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
}

// readRequestLogs returns the text of every request log file in dir.
func readRequestLogs(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "RequestHandlerAuditLog_*.log"))
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func missingIn(text string, macs []string) []string {
	var out []string
	for _, mac := range macs {
		if !strings.Contains(text, ";"+mac+";") {
			out = append(out, mac)
		}
	}
	return out
}

// TestInventorySurvivesSIGKILL: a server killed with SIGKILL keeps every
// poll answered 1.5 s or more before it died: the inventory is written
// every second. Three rounds, each killing the server at a random moment
// after a burst of polls.
func TestInventorySurvivesSIGKILL(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	certsDir := filepath.Join(t.TempDir(), "certs")
	rng := rand.New(rand.NewPCG(3, 5))
	var polled []string
	for round := range 3 {
		srv := e2e.Start(t, e2e.Options{Data: data, Certs: certsDir})
		// Polls for a random while, so that the kill falls anywhere in
		// the flush period.
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
		polled = append(polled, pollDevices(t, srv, fmt.Sprintf("3%d", round), 40)...)
		time.Sleep(1500 * time.Millisecond)
		srv.Kill()
	}
	srv := e2e.Start(t, e2e.Options{Data: data, Certs: certsDir})
	if code := srv.Stop(); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	if lost := missing(storedDevices(t, data), polled); len(lost) > 0 {
		t.Errorf("%d of %d devices polled 1.5 s before a SIGKILL are not in the inventory: %v", len(lost), len(polled), lost)
	}
}
