package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

func TestTestDevicesThroughCLI(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	if res := e2e.Run(t, "", env, "site", "set", "Redmond", "--subnet", "10.1.0.0/16"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantText string
	}{
		{"add by MAC", []string{"testdevice", "add", "--name", "Lab CX600", "--mac", "00:04:f2:aa:bb:cc"}, 0, `added test device "Lab CX600" (00-04-F2-AA-BB-CC, global)`},
		{"add by serial at a site", []string{"testdevice", "add", "--name", "lab2", "--serial", "SN123", "--site", "redmond"}, 0, "(SN123, site:Redmond)"},
		{"add at an unknown site", []string{"testdevice", "add", "--name", "lab5", "--serial", "SN5", "--site", "Dublin"}, 1,
			`no site named "Dublin"; ` + "`deviceupdate site list` shows the sites, `deviceupdate site set Dublin --subnet CIDR` creates it"},
		{"duplicate name", []string{"testdevice", "add", "--name", "lab cx600", "--serial", "SN999"}, 1, `a test device named "lab cx600" exists`},
		{"duplicate MAC in another form", []string{"testdevice", "add", "--name", "lab3", "--mac", "0004F2AABBCC"}, 1, `00-04-F2-AA-BB-CC is already test device "Lab CX600"`},
		{"malformed MAC", []string{"testdevice", "add", "--name", "lab4", "--mac", "00-04-F2-AA-BB"}, 1, "needs six to eight pairs"},
		{"malformed serial", []string{"testdevice", "add", "--name", "lab4", "--serial", "SN 1"}, 1, `serial number "SN 1"`},
		{"both identifiers", []string{"testdevice", "add", "--name", "lab4", "--serial", "S", "--mac", "0004f2aabbcd"}, 1, "not both"},
		{"no name", []string{"testdevice", "add", "--serial", "S"}, 2, "needs --name"},
		{"remove", []string{"testdevice", "remove", "lab2"}, 0, `removed test device "lab2"`},
		{"remove unknown", []string{"testdevice", "remove", "lab2"}, 1, `no test device named "lab2"`},
	}
	for _, tt := range tests {
		res := e2e.Run(t, "", env, tt.args...)
		if res.Code != tt.wantCode || !strings.Contains(res.Stdout+res.Stderr, tt.wantText) {
			t.Fatalf("%s: exit %d\nstdout %s\nstderr %s\nwant %d and %q", tt.name, res.Code, res.Stdout, res.Stderr, tt.wantCode, tt.wantText)
		}
	}
	var devices []deviceupdate.TestDevice
	res := e2e.Run(t, "", env, "testdevice", "list", "--json")
	if err := json.Unmarshal([]byte(res.Stdout), &devices); err != nil {
		t.Fatal(err)
	}
	if len(devices) != 1 || devices[0] != (deviceupdate.TestDevice{Name: "Lab CX600", MAC: "00-04-F2-AA-BB-CC", Scope: "global"}) {
		t.Errorf("test devices = %+v", devices)
	}
	var list deviceupdate.AuditList
	json.Unmarshal([]byte(e2e.Run(t, "", env, "audit", "list", "--action", "testdevice.", "--json").Stdout), &list)
	if entries := list.Entries; len(entries) != 10 { // 8 adds and 2 removes reached the server, refused or not (the one without --name did not)
		t.Errorf("%d audit entries for test devices, want 10", len(entries))
	}
}
