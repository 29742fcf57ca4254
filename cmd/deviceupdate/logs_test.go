package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

// uploadLog POSTs body to the Files endpoint at base with the query of
// SPEC §6; a nil size sends it chunked (no Content-Length).
func uploadLog(t *testing.T, c *http.Client, base string, q url.Values, body []byte, chunked bool) (int, string) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // hides the length
	}
	req, err := http.NewRequest(http.MethodPost, base+"?"+q.Encode(), r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func logQuery(mac, logType, name string) url.Values {
	return url.Values{"DeviceType": {"UCPhone"}, "MacAddress": {mac}, "LogType": {logType}, "FileName": {name}}
}

// TestDeviceLogs: a valid upload is stored byte for byte and listed,
// downloaded and counted in the inventory; each kind of bad upload gets
// its status and leaves nothing; MaxLogFileSize changes without a
// restart; logs clear removes exactly the logs past their age.
func TestDeviceLogs(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Args: []string{"--log-quota", "64MiB"}})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	files := srv.InternalURL() + "/RequestHandler/Files"
	const mac = "00-04-F2-00-00-42"
	body := bytes.Repeat([]byte("CE log line\r\n"), 1000)

	code, msg := uploadLog(t, http.DefaultClient, files, logQuery("00:04:f2:00:00:42", "CELog", "celog.clg"), body, false)
	if code != 200 {
		t.Fatalf("valid upload: %d %s", code, msg)
	}
	res := e2e.Run(t, "", env, "logs", "list", "--device", mac, "--json")
	var logs []deviceupdate.DeviceLog
	if err := json.Unmarshal([]byte(res.Stdout), &logs); err != nil || len(logs) != 1 || logs[0].Path() != "CELog/"+mac+"/celog.clg" || logs[0].Size != int64(len(body)) {
		t.Fatalf("logs list: %v %s %s", err, res.Stdout, res.Stderr)
	}
	out := filepath.Join(t.TempDir(), "got.clg")
	if res := e2e.Run(t, "", env, "logs", "get", "CELog/"+mac+"/celog.clg", "-o", out); res.Code != 0 {
		t.Fatalf("logs get: %s", res.Stderr)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, body) {
		t.Fatal("the downloaded log differs from the upload")
	}
	if got, _ := os.ReadFile(filepath.Join(srv.Data, "Logs", "Client", "CELog", mac, "celog.clg")); !bytes.Equal(got, body) {
		t.Fatal("the stored log differs from the upload")
	}

	t.Run("bad uploads", func(t *testing.T) {
		tests := []struct {
			name    string
			q       url.Values
			size    int
			chunked bool
			want    int
		}{
			{"unknown type", logQuery(mac, "Passwords", "a.txt"), 10, false, 400},
			{"wrong extension", logQuery(mac, "CELog", "a.exe"), 10, false, 400},
			{"too large, declared", logQuery(mac, "CELog", "a.txt"), 1024001, false, 413},
			{"too large, streamed", logQuery(mac, "CELog", "a.txt"), 1024001, true, 413},
			{"traversal", logQuery(mac, "CELog", "../../../certs/x.txt"), 10, false, 400},
			{"dot dot", logQuery(mac, "CELog", ".."), 10, false, 400},
			{"NUL", logQuery(mac, "CELog", "a\x00.txt"), 10, false, 400},
			{"missing identity", url.Values{"DeviceType": {"UCPhone"}, "LogType": {"CELog"}, "FileName": {"a.txt"}}, 10, false, 400},
			{"missing file name", url.Values{"DeviceType": {"UCPhone"}, "MacAddress": {mac}, "LogType": {"CELog"}}, 10, false, 400},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, msg := uploadLog(t, http.DefaultClient, files, tt.q, make([]byte, tt.size), tt.chunked)
				if code != tt.want || strings.TrimSpace(msg) == "" {
					t.Errorf("%d %q, want %d with a reason", code, msg, tt.want)
				}
			})
		}
		ext := srv.Client("ucupdates-r2.contoso.com")
		if code, msg := uploadLog(t, ext, srv.URL()+"/RequestHandlerExt/Files", logQuery(mac, "CELog", "b.txt"), []byte("x"), false); code != 401 || !strings.Contains(msg, "anonymous access is not supported") {
			t.Errorf("anonymous external upload: %d %q", code, msg)
		}
		if res := runStdin(t, env, "a long enough password\n", "user", "add", "phone1", "--password-stdin"); res.Code != 0 {
			t.Fatal(res.Stderr)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/RequestHandlerExt/Files?"+logQuery(mac, "Config", "x.cfg.xml").Encode(), strings.NewReader("<cfg/>"))
		req.SetBasicAuth("phone1", "wrong password here")
		if resp, err := ext.Do(req); err != nil || resp.StatusCode != 401 {
			t.Errorf("external upload with a wrong password: %v %v", resp, err)
		}
		req, _ = http.NewRequest(http.MethodPost, srv.URL()+"/RequestHandlerExt/Files?"+logQuery(mac, "Config", "x.cfg.xml").Encode(), strings.NewReader("<cfg/>"))
		req.SetBasicAuth("phone1", "a long enough password")
		resp, err := ext.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("external upload signed in: %v %v", resp, err)
		}
		resp.Body.Close()
		res := e2e.Run(t, "", env, "logs", "list", "--json")
		if err := json.Unmarshal([]byte(res.Stdout), &logs); err != nil || len(logs) != 2 {
			t.Errorf("after the bad uploads and one signed-in upload: %s", res.Stdout)
		}
		var left []string
		_ = filepath.WalkDir(filepath.Join(srv.Data, "Logs", "Client"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				left = append(left, p)
			}
			return nil
		})
		if len(left) != 2 {
			t.Errorf("files under Logs/Client: %v, want the two valid logs", left)
		}
	})

	t.Run("MaxLogFileSize applies without a restart", func(t *testing.T) {
		big := make([]byte, 3000)
		if res := e2e.Run(t, "", env, "config", "set", "MaxLogFileSize=2048"); res.Code != 0 {
			t.Fatal(res.Stderr)
		}
		if code, _ := uploadLog(t, http.DefaultClient, files, logQuery(mac, "Diaglog", "d.txt"), big, true); code != 413 {
			t.Errorf("3000 bytes past 2048: %d", code)
		}
		if res := e2e.Run(t, "", env, "config", "set", "MaxLogFileSize=4096"); res.Code != 0 {
			t.Fatal(res.Stderr)
		}
		if code, msg := uploadLog(t, http.DefaultClient, files, logQuery(mac, "Diaglog", "d.txt"), big, true); code != 200 {
			t.Errorf("3000 bytes under 4096: %d %s", code, msg)
		}
	})

	res = e2e.Run(t, "", env, "device", "list", "--json")
	var devices []deviceupdate.Device
	if err := json.Unmarshal([]byte(res.Stdout), &devices); err != nil || len(devices) != 1 || devices[0].LogUploads != 3 || devices[0].ID != mac {
		t.Errorf("inventory after two stored uploads: %s", res.Stdout)
	}

	t.Run("logs clear removes exactly the old logs", func(t *testing.T) {
		if code, _ := uploadLog(t, http.DefaultClient, files, logQuery(mac, "Watson", "old.dmp"), []byte("old"), false); code != 200 {
			t.Fatal("upload old.dmp")
		}
		if res := e2e.Run(t, "", env, "logs", "list"); res.Code != 0 { // flushes the cache to Logs/Client
			t.Fatal(res.Stderr)
		}
		if srv.Stop() != 0 {
			t.Fatal("serve did not stop cleanly")
		}
		old := time.Now().Add(-8 * 24 * time.Hour)
		if err := os.Chtimes(filepath.Join(srv.Data, "Logs", "Client", "Watson", mac, "old.dmp"), old, old); err != nil {
			t.Fatal(err)
		}
		srv2 := e2e.Start(t, e2e.Options{Data: srv.Data, Certs: srv.Certs})
		env2 := []string{"DEVICEUPDATE_SERVER=" + srv2.URL(), "DEVICEUPDATE_CERTS=" + srv2.Certs}
		if res := e2e.Run(t, "", env2, "logs", "clear", "--days-back", "31"); res.Code != 2 {
			t.Errorf("--days-back 31: exit %d", res.Code)
		}
		res := e2e.Run(t, "", env2, "logs", "clear", "--days-back", "7", "--json")
		var cleared deviceupdate.ClearLogsResult
		if err := json.Unmarshal([]byte(res.Stdout), &cleared); err != nil || cleared.Deleted != 1 {
			t.Fatalf("logs clear: %s %s", res.Stdout, res.Stderr)
		}
		res = e2e.Run(t, "", env2, "logs", "list", "--json")
		if err := json.Unmarshal([]byte(res.Stdout), &logs); err != nil || len(logs) != 3 {
			t.Errorf("after logs clear: %s", res.Stdout)
		}
		if res := e2e.Run(t, "", env2, "audit", "list", "--action", "logs.clear"); !strings.Contains(res.Stdout, "logs.clear") {
			t.Errorf("logs clear is not audited: %s", res.Stdout)
		}
	})
}

// TestDeviceLogNames: a 128-byte FileName, the longest allowed, is stored
// and fetched; names that differ only by a percent-escape (a%41.txt,
// aA.txt, a%2541.txt) are three logs, and `logs get` returns each its own.
func TestDeviceLogNames(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	files := srv.InternalURL() + "/RequestHandler/Files"
	const mac = "00-04-F2-00-00-43"
	names := []string{strings.Repeat("n", deviceupdate.MaxLogFileName-4) + ".txt", "a%41.txt", "aA.txt", "a%2541.txt", "100%.txt"}
	for _, name := range names {
		if code, msg := uploadLog(t, http.DefaultClient, files, logQuery(mac, "CELog", name), []byte("log "+name), false); code != 200 {
			t.Fatalf("upload %q: %d %s", name, code, msg)
		}
	}
	for _, name := range names {
		res := e2e.Run(t, "", env, "logs", "get", "CELog/"+mac+"/"+name, "-o", "-")
		if res.Code != 0 || res.Stdout != "log "+name {
			t.Errorf("logs get %q: exit %d, %q %s", name, res.Code, res.Stdout, res.Stderr)
		}
	}
}
