package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

func TestConfigThroughCLI(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	get := func(args ...string) map[string]deviceupdate.ConfigValue {
		t.Helper()
		res := e2e.Run(t, "", env, append([]string{"config", "get", "--json"}, args...)...)
		var values []deviceupdate.ConfigValue
		if err := json.Unmarshal([]byte(res.Stdout), &values); err != nil || res.Code != 0 {
			t.Fatalf("config get: %v %s", err, res.Stderr)
		}
		out := map[string]deviceupdate.ConfigValue{}
		for _, v := range values {
			out[v.Name] = v
		}
		return out
	}
	if v := get()["MaxLogFileSize"]; v.Value != "1024000" || v.Source != "default" {
		t.Errorf("default MaxLogFileSize = %+v", v)
	}
	if v := get()["ValidLogFileTypes"]; v.Value != "Watson,Config,Diaglog,CELog" {
		t.Errorf("default ValidLogFileTypes = %+v", v)
	}

	steps := []struct {
		args     []string
		wantCode int
		wantText string
	}{
		{[]string{"config", "set", "MaxLogFileSize=2048000", "logflushinterval=10m"}, 0, "00:10:00"},
		{[]string{"config", "set", "--site", "Redmond", "PeerFirmwareSharing=true"}, 1, `no site named "Redmond"; ` + "`deviceupdate site list`"},
		{[]string{"config", "get", "--site", "Redmond"}, 1, `no site named "Redmond"`},
		{[]string{"site", "set", "Redmond", "--subnet", "10.1.0.0/16"}, 0, "site Redmond"},
		{[]string{"config", "set", "--site", "redmond", "PeerFirmwareSharing=true"}, 0, "site:Redmond"},
		{[]string{"config", "set", "MaxLogFileSize=4096000", "LogCleanUpInterval=400"}, 1, "LogCleanUpInterval=400: out of range"},
		{[]string{"config", "set", "MaxLogSize=1"}, 1, `unknown setting "MaxLogSize"`},
		{[]string{"config", "set", "MaxLogFileSize"}, 2, "is not KEY=VALUE"},
		{[]string{"config", "set", "--site", "../x", "PeerFirmwareSharing=true"}, 1, `site "../x"`},
	}
	for _, s := range steps {
		res := e2e.Run(t, "", env, s.args...)
		if res.Code != s.wantCode || !strings.Contains(res.Stdout+res.Stderr, s.wantText) {
			t.Fatalf("%v: exit %d %s%s; want %d and %q", s.args, res.Code, res.Stdout, res.Stderr, s.wantCode, s.wantText)
		}
		if res.Code != 0 && strings.Count(res.Stderr, "\n") != 1 {
			t.Errorf("%v: stderr is not one line: %q", s.args, res.Stderr)
		}
	}
	global := get()
	if v := global["MaxLogFileSize"]; v.Value != "2048000" || v.Source != "global" {
		t.Errorf("MaxLogFileSize after a refused batch = %+v, want the earlier 2048000", v)
	}
	if v := global["PeerFirmwareSharing"]; v.Value != "false" || v.Source != "default" {
		t.Errorf("global PeerFirmwareSharing = %+v", v)
	}
	site := get("--site", "Redmond")
	if v := site["PeerFirmwareSharing"]; v.Value != "true" || v.Source != "site:Redmond" {
		t.Errorf("Redmond PeerFirmwareSharing = %+v", v)
	}
	if v := site["MaxLogFileSize"]; v.Value != "2048000" || v.Source != "global" {
		t.Errorf("Redmond MaxLogFileSize = %+v, want the global value", v)
	}
	// KEY= removes the override.
	e2e.Run(t, "", env, "config", "set", "--site", "Redmond", "PeerFirmwareSharing=")
	if v := get("--site", "Redmond")["PeerFirmwareSharing"]; v.Source != "default" {
		t.Errorf("after removing the override: %+v", v)
	}
}
