package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

func pollBody(mac, model, version string) string {
	return fmt.Sprintf(`<Request><DeviceType>UCPhone</DeviceType><MacAddress>%s</MacAddress><Brand>Polycom</Brand>
<Model>%s</Model><Revision>A</Revision><Locale>ENU</Locale><Trigger>boot</Trigger>
<Modules><Module UpdateType="CPE" Filename="CPE.nbt" Version="%s"/></Modules></Request>`, mac, model, version)
}

func post(t *testing.T, c *http.Client, url, body string) (int, string) {
	t.Helper()
	resp, err := c.Post(url, "text/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPhonesPollAndDownload: an old phone is offered the approved build, a
// test device the pending one, a current phone nothing; the files download
// with the bytes the answer names; Range and ETag work; anonymous external
// polls and downloads get 401.
func TestPhonesPollAndDownload(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	images := map[string][]byte{}
	for _, v := range []string{"4.0.7577.4100", "4.0.7577.4366", "4.0.7577.4400"} {
		files := testpkg.Files{}
		images[v] = testpkg.Image(300<<10, byte(v[len(v)-1]))
		testpkg.AddUpdate(t, files, "", v, images[v], sign)
		if res := e2e.Run(t, "", env, "import", testpkg.MakeCab(t, files)); res.Code != 0 {
			t.Fatal(res.Stderr)
		}
		if v != "4.0.7577.4400" {
			if res := e2e.Run(t, "", env, "rule", "approve", "UCPhone/Polycom/CX600/A/ENU/CPE"); res.Code != 0 {
				t.Fatal(res.Stderr)
			}
		}
	}
	if res := e2e.Run(t, "", env, "testdevice", "add", "--name", "lab", "--mac", "00-04-F2-00-00-01"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}

	internal := srv.InternalURL() + "/RequestHandler/ucdevice.upx"
	tests := []struct {
		name, mac, model, running string
		want                      string // offered version, "" for none
	}{
		{"old phone gets the approved build", "00-04-F2-00-00-02", "CX600", "4.0.7577.4100", "4.0.7577.4366"},
		{"test device gets the pending build", "00:04:f2:00:00:01", "CX600", "4.0.7577.4366", "4.0.7577.4400"},
		{"current phone gets nothing", "00-04-F2-00-00-03", "CX600", "4.0.7577.4366", ""},
		{"unknown model gets nothing", "00-04-F2-00-00-04", "CX700", "1.0.0.0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(t, http.DefaultClient, internal, pollBody(tt.mac, tt.model, tt.running))
			if code != 200 {
				t.Fatalf("poll: %d %s", code, body)
			}
			var res upx.Response
			if err := xml.Unmarshal([]byte(body), &res); err != nil {
				t.Fatalf("%v\n%s", err, body)
			}
			if res.PollIntervalSeconds < 77760 || res.PollIntervalSeconds > 95040 || res.PeerSharing == nil || res.PeerSharing.Port != 4051 {
				t.Errorf("interval %d, peer sharing %+v", res.PollIntervalSeconds, res.PeerSharing)
			}
			if tt.want == "" {
				if res.NumOfFiles != 0 || res.Files != nil {
					t.Fatalf("offered %s: %s", res.Version, body)
				}
				return
			}
			wantBase := srv.InternalURL() + "/DeviceUpdateFiles_Int/UCPhone/Polycom/CX600/A/ENU/" + tt.want + "/CPE"
			if res.Version != tt.want || res.NumOfFiles != 2 || res.BaseURL != wantBase || !strings.HasPrefix(res.ExternalBaseURL, "https://127.0.0.1:") {
				t.Fatalf("answer = %+v", res)
			}
			for _, f := range res.Files.File {
				resp, err := http.Get(res.BaseURL + "/" + f.Name)
				if err != nil {
					t.Fatal(err)
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				sum := sha256.Sum256(data)
				if resp.StatusCode != 200 || int64(len(data)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
					t.Fatalf("%s: %d, %d bytes, sha256 %x; answer says %d bytes, %s", f.Name, resp.StatusCode, len(data), sum, f.Size, f.SHA256)
				}
				if f.Name == "CPE.nbt" && !bytes.Equal(data, images[tt.want]) {
					t.Error("the image differs from the one imported")
				}
				wantType := map[string]string{"CPE.nbt": "application/octet-stream", "CPE.cat": "application/vnd.ms-pki.seccat"}[f.Name]
				if ct := resp.Header.Get("Content-Type"); ct != wantType {
					t.Errorf("%s Content-Type = %q, want %q", f.Name, ct, wantType)
				}
			}
		})
	}

	file := srv.InternalURL() + "/DeviceUpdateFiles_Int/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt"
	t.Run("range and etag", func(t *testing.T) {
		req, _ := http.NewRequest("GET", file, nil)
		req.Header.Set("Range", "bytes=100-199")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		part, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 206 || !bytes.Equal(part, images["4.0.7577.4366"][100:200]) {
			t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(part))
		}
		etag := resp.Header.Get("ETag")
		req, _ = http.NewRequest("GET", file, nil)
		req.Header.Set("If-None-Match", etag)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if etag == "" || resp.StatusCode != 304 {
			t.Errorf("If-None-Match %q: %d, want 304", etag, resp.StatusCode)
		}
	})
	t.Run("no way out of the store", func(t *testing.T) {
		for _, p := range []string{"/DeviceUpdateFiles_Int/../../certs/admin.token", "/DeviceUpdateFiles_Int/%2e%2e/%2e%2e/deviceupdate.db",
			"/DeviceUpdateFiles_Int/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.xml/../../../../../../../deviceupdate.db",
			"/DeviceUpdateFiles_Int/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/..%2f..%2fCPE.nbt"} {
			resp, err := http.Get(srv.InternalURL() + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 404 && resp.StatusCode != 400 {
				t.Errorf("%s: %d", p, resp.StatusCode)
			}
		}
	})
	t.Run("external needs credentials", func(t *testing.T) {
		c := srv.Client("ucupdates-r2.contoso.com")
		code, body := post(t, c, srv.URL()+"/RequestHandlerExt/ucdevice.upx", pollBody("00-04-F2-00-00-02", "CX600", "4.0.7577.4100"))
		if code != 401 || !strings.Contains(body, "anonymous access is not supported") {
			t.Errorf("external poll: %d %q", code, body)
		}
		resp, err := c.Get(srv.URL() + "/DeviceUpdateFiles_Ext/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("external download: %d", resp.StatusCode)
		}
		// The internal poll works over HTTPS too.
		if code, _ := post(t, c, srv.URL()+"/RequestHandler/ucdevice.upx", pollBody("00-04-F2-00-00-02", "CX600", "4.0.7577.4100")); code != 200 {
			t.Errorf("internal poll over HTTPS: %d", code)
		}
	})
	t.Run("bad polls", func(t *testing.T) {
		for _, c := range []struct {
			body string
			want int
		}{
			{"garbage", 400},
			{pollBody("00-04-F2-00-00-02", "CX600", "99999999999.1.1.1"), 400},
			{strings.Replace(pollBody("00-04-F2-00-00-02", "CX600", "4.0.7577.4100"), "<Model>CX600</Model>", "", 1), 400},
			{"<Request>" + strings.Repeat("x", 70<<10) + "</Request>", 413},
		} {
			if code, body := post(t, http.DefaultClient, internal, c.body); code != c.want {
				t.Errorf("poll %.40q: %d %s, want %d", c.body, code, body, c.want)
			}
		}
	})
	t.Run("inventory and request log hold every poll", func(t *testing.T) {
		res := e2e.Run(t, "", env, "device", "list", "--json", "--model", "CX600")
		var devices []deviceupdate.Device
		if err := json.Unmarshal([]byte(res.Stdout), &devices); err != nil {
			t.Fatalf("%v: %s %s", err, res.Stdout, res.Stderr)
		}
		byID := map[string]deviceupdate.Device{}
		for _, d := range devices {
			byID[d.ID] = d
		}
		old := byID["00-04-F2-00-00-02"]
		// One poll in the table, one over HTTPS; the bad ones never count.
		if len(devices) != 3 || old.Polls != 2 || old.Offered.String() != "4.0.7577.4366" || old.Trigger != "boot" || old.Remote != "127.0.0.1" {
			t.Errorf("inventory = %+v", devices)
		}
		if d := byID["00-04-F2-00-00-03"]; !d.Offered.IsZero() || d.Modules[0].Version.String() != "4.0.7577.4366" {
			t.Errorf("current phone's record = %+v", d)
		}
		if code := srv.Stop(); code != 0 {
			t.Fatalf("stop: %d", code)
		}
		if srv.FindLog("unreadable poll") == nil { // the log is flushed by now
			t.Error("an unreadable poll was not logged")
		}
		logs, _ := filepath.Glob(filepath.Join(srv.Data, "Logs/Server/Audit/imageUpdates/RequestHandlerAuditLog_*_*.log"))
		if len(logs) != 1 {
			t.Fatalf("request logs: %v", logs)
		}
		data, _ := os.ReadFile(logs[0])
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 5 { // the four polls of the table and the one over HTTPS
			t.Errorf("%d request log lines:\n%s", len(lines), data)
		}
		want := ";127.0.0.1;UCPhone;00-04-F2-00-00-02;;Polycom;CX600;A;ENU;CPE.nbt;4.0.7577.4100;;CPE.nbt;4.0.7577.4366#CPE.cat;4.0.7577.4366;"
		if !strings.Contains(string(data), want) {
			t.Errorf("request log lacks %q:\n%s", want, data)
		}
		// The inventory survived the stop.
		again := e2e.Start(t, e2e.Options{Data: srv.Data, Certs: srv.Certs})
		defer again.Stop()
		res = e2e.Run(t, "", []string{"DEVICEUPDATE_SERVER=" + again.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}, "device", "list", "--json")
		if err := json.Unmarshal([]byte(res.Stdout), &devices); err != nil || len(devices) != 4 {
			t.Errorf("inventory after restart: %d devices, %v", len(devices), err)
		}
	})
}
