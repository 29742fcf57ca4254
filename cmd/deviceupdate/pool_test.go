package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/pgtest"
	"github.com/deviceupdate/deviceupdate/internal/phone"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// poolNode is one `serve` of a pool, and the environment of the admin
// commands that talk to it.
type poolNode struct {
	*e2e.Server
	env []string
}

// run runs an admin command against the node and returns its stdout.
func (n poolNode) run(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, n.env, args...)
}

// poll polls the node's internal handler as a CX600 phone.
func (n poolNode) poll(t *testing.T, mac string) (int, upx.Response) {
	t.Helper()
	code, body := post(t, http.DefaultClient, n.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(mac, "CX600", "4.0.7577.4100"))
	var res upx.Response
	if code == http.StatusOK {
		if err := xml.Unmarshal([]byte(body), &res); err != nil {
			t.Fatalf("poll: %v\n%s", err, body)
		}
	}
	return code, res
}

// pollOK polls and fails the test unless the answer is 200.
func (n poolNode) pollOK(t *testing.T, mac string) upx.Response {
	t.Helper()
	code, res := n.poll(t, mac)
	if code != http.StatusOK {
		t.Fatalf("poll on %s: %d", n.URL(), code)
	}
	return res
}

// testPool is a pool for a test: front ends on one throwaway PostgreSQL
// database and one --files folder.
type testPool struct {
	dsn, files, certs string
	nodes             []poolNode
}

// startPool starts n `serve` of one pool. They share one certs folder,
// which the first creates, as a pool's front ends share the CA and the
// admin token.
func startPool(t *testing.T, n int) testPool {
	t.Helper()
	p := testPool{dsn: pgtest.Start(t), files: t.TempDir(), certs: filepath.Join(t.TempDir(), "certs")}
	args := []string{"--store", p.dsn, "--files", p.files}
	for i := range n {
		srv := e2e.Start(t, e2e.Options{Certs: p.certs, Args: args})
		p.nodes = append(p.nodes, poolNode{srv, []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + p.certs}})
		if i == 0 && !strings.Contains(srv.Stdout(), "created") {
			t.Fatalf("the first node created no certificates:\n%s", srv.Stdout())
		}
	}
	return p
}

// rules returns the rules a node lists, by ID.
func (n poolNode) rules(t *testing.T) map[string]deviceupdate.Rule {
	t.Helper()
	var list []deviceupdate.Rule
	if err := json.Unmarshal([]byte(n.run(t, "rule", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]deviceupdate.Rule{}
	for _, r := range list {
		out[r.ID] = r
	}
	return out
}

// TestPool: three `serve` on one PostgreSQL database and one --files
// folder are one service: an import on one is pending on another,
// approved there, and offered and downloaded from the third; of two
// approves at once on two nodes one wins; a setting changed on one is in
// effect on another within a second; polls on all three land in one
// inventory; a node killed with SIGKILL leaves the others serving; the
// one audit trail, written by all of them, verifies.
func TestPool(t *testing.T) {
	pool := startPool(t, 3)
	dsn, files, nodes := pool.dsn, pool.files, pool.nodes
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, n1.Server, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	pkg := func(version string, seed byte) string {
		f := testpkg.Files{}
		testpkg.AddUpdate(t, f, "", version, testpkg.Image(200<<10, seed), sign)
		return testpkg.MakeCab(t, f)
	}
	ruleID := deviceupdate.RuleID(deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"})

	t.Run("import on one, approve on another", func(t *testing.T) {
		n1.run(t, "import", pkg("4.0.7577.4366", 5))
		if r := n2.rules(t)[ruleID]; r.PendingVersion.String() != "4.0.7577.4366" {
			t.Fatalf("the rule on node 2 after an import on node 1: %+v", r)
		}
		n2.run(t, "rule", "approve", ruleID)
		if r := n3.rules(t)[ruleID]; r.ApprovedVersion.String() != "4.0.7577.4366" || !r.PendingVersion.IsZero() {
			t.Fatalf("the rule on node 3 after an approve on node 2: %+v", r)
		}
	})

	t.Run("offered and downloaded from a third", func(t *testing.T) {
		if res := n3.pollOK(t, "00-04-F2-00-50-01"); res.Files == nil || len(res.Files.File) == 0 {
			t.Fatalf("node 3 offers nothing: %+v", res)
		}
		trust := filepath.Join(t.TempDir(), "publisher.pem")
		testpki.WriteCert(t, trust, ca.Cert)
		res := e2e.Run(t, "", nil, "phone", "run", "--server", n3.InternalURL(), "--mac", "00-04-F2-00-50-02",
			"--model", "CX600", "--version", "4.0.7577.4100", "--trust", trust, "--state", filepath.Join(t.TempDir(), "phone"),
			"--once", "--peer-sharing", "off", "--json")
		var got phone.Result
		if err := json.Unmarshal([]byte(res.Stdout), &got); res.Code != 0 || err != nil || !got.Updated || got.Running != "4.0.7577.4366" {
			t.Fatalf("phone run against node 3: exit %d, %+v (%v)\nstderr: %s", res.Code, got, err, res.Stderr)
		}
	})

	t.Run("two approves at once, one wins", func(t *testing.T) {
		n1.run(t, "import", pkg("4.0.7577.4400", 6))
		var wg sync.WaitGroup
		results := make([]e2e.Result, 2)
		for i, n := range []poolNode{n1, n2} {
			wg.Go(func() { results[i] = e2e.Run(t, "", n.env, "rule", "approve", ruleID) })
		}
		wg.Wait()
		won := 0
		for _, r := range results {
			if r.Code == 0 {
				won++
			}
		}
		if won != 1 {
			t.Fatalf("%d of two approves at once succeeded, want one:\n%+v\n%+v", won, results[0], results[1])
		}
		if r := n3.rules(t)[ruleID]; r.ApprovedVersion.String() != "4.0.7577.4400" || r.RestoreVersion.String() != "4.0.7577.4366" {
			t.Fatalf("the rule after the race: %+v", r)
		}
	})

	thirdImport := false // the next subtest imported and approved 4.0.7577.4500
	t.Run("a change on one in effect on another within a second", func(t *testing.T) {
		const phoneMAC, labMAC = "00-04-F2-00-50-03", "00-04-F2-00-50-05"
		const password = "a long enough password"
		extPoll := func(n poolNode) int {
			req, err := http.NewRequest(http.MethodPost, n.URL()+"/RequestHandlerExt/ucdevice.upx", strings.NewReader(pollBody(phoneMAC, "CX600", "4.0.7577.4100")))
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("ext-phone", password)
			resp, err := n.Client("ucupdates-r2.contoso.com").Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		// A phone's interval is the setting moved by up to a tenth
		// (deviceupdate.JitteredInterval).
		near := func(got, base int) bool { return got >= base-base/10 && got <= base+base/10 }
		n2.pollOK(t, phoneMAC) // the poll path works on this store at all
		for _, tt := range []struct {
			name   string
			before [][]string // commands on node 1 not timed
			change [][]string // commands on node 1, timed from the last
			holds  func() bool
		}{
			{"a setting", nil, [][]string{{"config", "set", "PollIntervalSeconds=7200"}}, func() bool {
				return near(n2.pollOK(t, phoneMAC).PollIntervalSeconds, 7200)
			}},
			{"a site and its setting", [][]string{{"site", "set", "Lab", "--subnet", "127.0.0.0/8"}}, [][]string{{"config", "set", "--site", "Lab", "PollIntervalSeconds=10800"}}, func() bool {
				return near(n2.pollOK(t, phoneMAC).PollIntervalSeconds, 10800)
			}},
			{"a test device", [][]string{{"import", pkg("4.0.7577.4500", 7)}}, [][]string{{"testdevice", "add", "--name", "lab", "--mac", labMAC}}, func() bool {
				return n2.pollOK(t, labMAC).Version == "4.0.7577.4500"
			}},
			{"a rule", nil, [][]string{{"rule", "approve", ruleID}}, func() bool {
				return n2.pollOK(t, phoneMAC).Version == "4.0.7577.4500"
			}},
			{"a user removed", nil, [][]string{{"user", "remove", "ext-phone"}}, func() bool {
				return extPoll(n2) == http.StatusUnauthorized
			}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if tt.name == "a user removed" {
					if res := runStdin(t, n1.env, password+"\n", "user", "add", "ext-phone", "--password-stdin"); res.Code != 0 {
						t.Fatal(res.Stderr)
					}
					// Signed in on node 2, which now remembers the password.
					waitFor(t, "a user added on node 1 signing in on node 2", 10*time.Second, func() bool { return extPoll(n2) == http.StatusOK })
				}
				for _, args := range tt.before {
					n1.run(t, args...)
				}
				thirdImport = thirdImport || tt.name == "a rule"
				if tt.holds() {
					t.Fatal("in effect on node 2 before the change")
				}
				for _, args := range tt.change {
					n1.run(t, args...)
				}
				// NOTIFY reaches node 2 at once; a second is the contract
				// (SPEC §11), and the bound of this wait.
				changed := time.Now()
				for !tt.holds() {
					if time.Since(changed) > time.Second {
						t.Fatal("not in effect on node 2 a second after the change on node 1")
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
		}
	})

	t.Run("polls on all three land in one inventory", func(t *testing.T) {
		macs := []string{"00-04-F2-00-60-01", "00-04-F2-00-60-02", "00-04-F2-00-60-03"}
		for i, n := range nodes {
			n.pollOK(t, macs[i])
		}
		// Each node flushes its polls within a second (the inventory's
		// loss bound); the deadline is generous.
		waitFor(t, "every node's polls in node 1's device list", 10*time.Second, func() bool {
			res := e2e.Run(t, "", n1.env, "device", "list", "--json")
			if res.Code != 0 {
				t.Fatalf("device list: %s", res.Stderr)
			}
			for _, mac := range macs {
				if !strings.Contains(strings.ToUpper(res.Stdout), strings.ReplaceAll(mac, "-", "")) &&
					!strings.Contains(strings.ToUpper(res.Stdout), mac) {
					return false
				}
			}
			return true
		})
	})

	t.Run("a device log uploaded to one, read on another, cleared from the third", func(t *testing.T) {
		const mac = "00-04-F2-00-70-01"
		body := bytes.Repeat([]byte("pool log line\r\n"), 500)
		if code, msg := uploadLog(t, http.DefaultClient, n1.InternalURL()+"/RequestHandler/Files", logQuery(mac, "CELog", "celog.clg"), body, false); code != http.StatusOK {
			t.Fatalf("upload to node 1: %d %s", code, msg)
		}
		var logs []deviceupdate.DeviceLog
		if err := json.Unmarshal([]byte(n2.run(t, "logs", "list", "--device", mac, "--json")), &logs); err != nil ||
			len(logs) != 1 || logs[0].Path() != "CELog/"+mac+"/celog.clg" || logs[0].Size != int64(len(body)) {
			t.Fatalf("logs list on node 2: %+v (%v)", logs, err)
		}
		out := filepath.Join(t.TempDir(), "got.clg")
		n2.run(t, "logs", "get", "CELog/"+mac+"/celog.clg", "-o", out)
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("the log node 2 gives differs from the upload to node 1 (%v)", err)
		}
		sum := sha256.Sum256(body)
		key := hex.EncodeToString(sum[:])
		object := filepath.Join(files, "sha256", key[:2], key[2:4], key)
		if _, err := os.Stat(object); err != nil {
			t.Fatalf("the log is not in the file store: %v", err)
		}
		if _, err := os.Stat(filepath.Join(n1.Data, "Logs", "Client", "CELog")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("node 1 kept the log under its --data: %v", err)
		}
		// Uploaded 8 days ago, as far as the pool knows (the phone of an
		// earlier case uploaded logs too, which stay).
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "UPDATE device_logs SET modified = modified - $1 WHERE device = $2", int64(8*24*time.Hour), mac); err != nil {
			t.Fatal(err)
		}
		var cleared deviceupdate.ClearLogsResult
		if err := json.Unmarshal([]byte(n3.run(t, "logs", "clear", "--days-back", "7", "--json")), &cleared); err != nil || cleared.Deleted != 1 {
			t.Fatalf("logs clear on node 3: %+v (%v)", cleared, err)
		}
		if out := n1.run(t, "logs", "list", "--device", mac, "--json"); strings.TrimSpace(out) != "[]" {
			t.Fatalf("logs list on node 1 after the clear on node 3: %s", out)
		}
		if _, err := os.Stat(object); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the cleared log's bytes are still in the file store: %v", err)
		}
	})

	t.Run("a front end with a single server's logs in its --data warns", func(t *testing.T) {
		data := t.TempDir()
		old := filepath.Join(data, "Logs", "Client", "CELog", "00-04-F2-00-70-02", "left.clg")
		if err := os.MkdirAll(filepath.Dir(old), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(old, []byte("a single server's"), 0o640); err != nil {
			t.Fatal(err)
		}
		n4 := e2e.Start(t, e2e.Options{Data: data, Certs: pool.certs, Args: []string{"--store", dsn, "--files", files}})
		waitFor(t, "the warning in node 4's log", 10*time.Second, func() bool {
			return strings.Contains(n4.Stderr(), "--data holds a single server's device logs")
		})
		if n4.Stop() != 0 {
			t.Error("node 4 did not stop cleanly")
		}
	})

	t.Run("a killed node leaves the others serving", func(t *testing.T) {
		n3.Kill()
		for _, n := range []poolNode{n1, n2} {
			if code, _ := get(t, n.Client("ucupdates-r2.contoso.com"), n.URL()+"/healthz"); code != http.StatusOK {
				t.Fatalf("/healthz on %s after node 3 was killed: %d", n.URL(), code)
			}
		}
		n2.run(t, "rule", "restore", ruleID)
		if r := n1.rules(t)[ruleID]; r.ApprovedVersion.String() != map[bool]string{false: "4.0.7577.4366", true: "4.0.7577.4400"}[thirdImport] {
			t.Fatalf("a restore on node 2 after node 3 was killed, as node 1 sees it: %+v", r)
		}
		if res := n1.pollOK(t, "00-04-F2-00-50-04"); res.Version != "4.0.7577.4400" {
			t.Fatalf("node 1 after the restore offers %+v, want 4.0.7577.4400", res)
		}
	})

	t.Run("one audit trail that verifies", func(t *testing.T) {
		for _, n := range []poolNode{n1, n2} {
			if out := n.run(t, "audit", "verify"); !strings.HasPrefix(out, "audit trail intact: ") {
				t.Errorf("audit verify on %s: %s", n.URL(), out)
			}
		}
		var trail struct {
			Entries []deviceupdate.AuditRecord `json:"entries"`
		}
		if err := json.Unmarshal([]byte(n2.run(t, "audit", "list", "--json")), &trail); err != nil {
			t.Fatal(err)
		}
		// From every node, one chain in one order: the imports (node 1),
		// the first approve (node 2), the approve that won and the one
		// refused (nodes 1 and 2), the third import and its approve
		// (node 1; when polls work), the restore (node 2).
		var got []string
		for i, e := range trail.Entries {
			if e.Seq != uint64(i+1) {
				t.Errorf("entry %d has sequence number %d", i+1, e.Seq)
			}
			if e.Action == "import" || strings.HasPrefix(e.Action, "rule.") {
				result := e.Result
				if result != "ok" {
					result = "refused"
				}
				got = append(got, e.Action+" "+result)
			}
		}
		want := []string{"import ok", "rule.approve ok", "import ok", "rule.approve ok", "rule.approve refused"}
		if thirdImport {
			want = append(want, "import ok", "rule.approve ok")
		}
		want = append(want, "rule.restore ok")
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("the trail holds %q, want %q", got, want)
		}
	})
}
