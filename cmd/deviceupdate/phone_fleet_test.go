package main_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/phone"
)

// TestPhoneSimFleet: over a few seconds of polling, against a plain
// approve, half of the phones fail their update in each mode, and both
// the simulation's report and the server's inventory show it: reverting
// phones end on the old version (with their crash dumps uploaded), stuck
// ones never report the new one, silent ones poll once and never again.
func TestPhoneSimFleet(t *testing.T) {
	const oldV, newV, count = "4.0.7577.4100", "4.0.7577.4366", 10
	srv, env, trust := phoneSite(t, 64<<10)
	tests := []struct {
		name  string
		flags []string
		// What the simulation reports.
		onOld, onNew, failed, silent int
		// Crash dumps uploaded.
		dumps int
	}{
		{"healthy", nil, 0, count, 0, 0, 0},
		{"revert", []string{"--fail-rate", "0.5", "--fail-mode", "revert", "--crash-dump"}, count / 2, count / 2, count / 2, 0, count / 2},
		{"stuck", []string{"--fail-rate", "50%", "--fail-mode", "stuck"}, count / 2, count / 2, count / 2, 0, 0},
		{"silent", []string{"--fail-rate", "0.5", "--fail-mode", "silent"}, 0, count / 2, count / 2, count / 2, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A block of addresses, so MACs, per case: the cases share the server.
			first := netip.AddrFrom4([4]byte{127, 77, byte(i + 1), 1})
			addrs, err := phone.SimAddrs(first, count)
			if err != nil {
				t.Fatal(err)
			}
			args := append([]string{"phone", "sim", "--server", srv.InternalURL(), "--count", fmt.Sprint(count), "--model", "CX600",
				"--version", oldV, "--trust", trust, "--peer-sharing", "off", "--first-addr", first.String(),
				"--duration", "3s", "--poll-every", "200ms", "--json"}, tt.flags...)
			res := e2e.Run(t, "", nil, args...)
			var got phone.SimResult
			if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil || res.Code != 0 {
				t.Fatalf("phone sim: exit %d (%v)\nstdout: %s\nstderr: %s", res.Code, err, res.Stdout, res.Stderr)
			}
			t.Logf("%+v", got)
			ended := map[string]int{}
			for _, v := range got.Versions {
				ended[v.Version] = v.Phones
				if v.Version == newV && (v.Offered != count || v.FirstOfferedSeconds == nil) {
					t.Errorf("%s was offered to %d phones, first at %v; want all %d", newV, v.Offered, v.FirstOfferedSeconds, count)
				}
			}
			if ended[oldV] != tt.onOld || ended[newV] != tt.onNew || got.Failed != tt.failed || got.Silent != tt.silent {
				t.Errorf("ended on %s: %d, on %s: %d, failed %d, silent %d; want %d, %d, %d, %d",
					oldV, ended[oldV], newV, ended[newV], got.Failed, got.Silent, tt.onOld, tt.onNew, tt.failed, tt.silent)
			}

			// The server's view: what each of these phones last reported, and how often it polled.
			ours := map[string]bool{}
			for _, a := range addrs {
				b := a.As4()
				ours[fmt.Sprintf("02-00-%02X-%02X-%02X-%02X", b[0], b[1], b[2], b[3])] = true
			}
			var devices []deviceupdate.Device
			list := e2e.Run(t, "", env, "device", "list", "--json", "--limit", "1000")
			if err := json.Unmarshal([]byte(list.Stdout), &devices); err != nil {
				t.Fatalf("device list: %v\n%s", err, list.Stderr)
			}
			reported, pollsOnce, pollsOften, oldOnceNew := map[string]int{}, 0, 0, 0
			for _, d := range devices {
				if !ours[d.ID] {
					continue
				}
				reported[d.Modules[0].Version.String()]++
				switch {
				case d.Polls == 1:
					pollsOnce++
				case d.Polls >= 3:
					pollsOften++
				}
				for _, h := range d.History {
					if d.Modules[0].Version.String() == oldV && h.To.String() == newV {
						oldOnceNew++
					}
				}
			}
			want := map[string]int{oldV: tt.onOld + tt.silent, newV: tt.onNew}
			for v, n := range want {
				if n == 0 {
					delete(want, v)
				}
			}
			if fmt.Sprint(reported) != fmt.Sprint(want) {
				t.Errorf("the inventory has these phones on %v; want %v", reported, want)
			}
			if pollsOnce != tt.silent || pollsOften != count-tt.silent {
				t.Errorf("%d phones polled once, %d three times or more; want %d and %d", pollsOnce, pollsOften, tt.silent, count-tt.silent)
			}
			if tt.name == "stuck" && oldOnceNew != 0 {
				t.Errorf("%d phones on %s once reported %s; stuck phones never do", oldOnceNew, oldV, newV)
			}

			var logs []deviceupdate.DeviceLog
			list = e2e.Run(t, "", env, "logs", "list", "--type", "Watson", "--json", "--limit", "1000")
			if err := json.Unmarshal([]byte(list.Stdout), &logs); err != nil {
				t.Fatalf("logs list: %v\n%s", err, list.Stderr)
			}
			dumps := 0
			for _, l := range logs {
				if ours[l.Device] && strings.HasSuffix(l.Name, ".dmp") {
					dumps++
				}
			}
			if dumps != tt.dumps {
				t.Errorf("%d crash dumps uploaded; want %d", dumps, tt.dumps)
			}
		})
	}
	t.Run("the table", func(t *testing.T) {
		t.Parallel()
		res := e2e.Run(t, "", nil, "phone", "sim", "--server", srv.InternalURL(), "--count", "4", "--model", "CX600",
			"--version", oldV, "--trust", trust, "--peer-sharing", "off", "--first-addr", "127.77.9.1",
			"--duration", "1s", "--poll-every", "200ms", "--fail-rate", "25%", "--fail-mode", "stuck")
		lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
		if res.Code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "4 phones polled every 200ms for 1s: ") ||
			!strings.Contains(lines[0], "1 failing (stuck), 1 failed, 0 silent") ||
			strings.Join(strings.Fields(lines[1]), " ") != "VERSION PHONES OFFERED FIRST OFFERED LAST FIRST OFFERED" ||
			!strings.HasPrefix(strings.Join(strings.Fields(lines[2]), " "), oldV+" 1 0 - -") ||
			!strings.HasPrefix(strings.Join(strings.Fields(lines[3]), " "), newV+" 3 4 ") {
			t.Errorf("exit %d, stdout:\n%s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
		}
	})
}

// TestPhoneSimFleetBusyServer: a server busy with log uploads answers
// 503 with Retry-After 60 to each phone's log of its update; in a
// simulation over time a phone waits at most one poll interval for it,
// so the fleet goes on polling and updating instead of stalling for a
// minute (before, the run outlived its --timeout).
func TestPhoneSimFleetBusyServer(t *testing.T) {
	srv, _, trust := phoneSiteWith(t, 64<<10, e2e.Options{Args: []string{"--max-uploads", "1", "--stall-timeout", "2m"}})
	// Take the only upload slot: an upload whose body never comes.
	conn, err := net.Dial("tcp", srv.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /RequestHandler/Files?DeviceType=UCPhone&MacAddress=00-04-F2-00-00-01&LogType=Diaglog&FileName=held.txt HTTP/1.1\r\n"+
		"Host: %s\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nx", srv.HTTPAddr)
	res := e2e.Run(t, "", nil, "phone", "sim", "--server", srv.InternalURL(), "--count", "6", "--model", "CX600",
		"--version", "4.0.7577.4100", "--trust", trust, "--peer-sharing", "off", "--first-addr", "127.77.20.1",
		"--duration", "2s", "--poll-every", "200ms", "--timeout", "15s", "--json")
	var got phone.SimResult
	if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil || res.Code != 0 {
		t.Fatalf("phone sim: exit %d (%v)\nstdout: %s\nstderr: %s", res.Code, err, res.Stdout, res.Stderr)
	}
	if len(got.Versions) != 1 || got.Versions[0].Version != "4.0.7577.4366" || got.Versions[0].Phones != 6 || got.Polls < 12 {
		t.Errorf("%+v; want all 6 phones on 4.0.7577.4366, polling on", got)
	}
}

// TestPhoneSimFleetFlags: the new flags' bad values and combinations are
// refused with one line and exit 2, before any phone polls.
func TestPhoneSimFleetFlags(t *testing.T) {
	base := []string{"phone", "sim", "--server", "http://127.0.0.1:1", "--model", "CX600", "--version", "4.0.7577.4100", "--trust", "x.pem"}
	tests := []struct {
		name  string
		flags []string
		want  string
	}{
		{"fail rate over one", []string{"--duration", "1s", "--fail-rate", "1.5"}, "--fail-rate"},
		{"fail rate as words", []string{"--duration", "1s", "--fail-rate", "half"}, "--fail-rate"},
		{"unknown fail mode", []string{"--duration", "1s", "--fail-rate", "0.1", "--fail-mode", "crash"}, "--fail-mode"},
		{"fail rate without a duration", []string{"--fail-rate", "0.1"}, "need --duration"},
		{"poll interval without a duration", []string{"--poll-every", "1s"}, "need --duration"},
		{"zero poll interval", []string{"--duration", "1s", "--poll-every", "0s"}, "--poll-every"},
		{"negative duration", []string{"--duration", "-1s"}, "--duration"},
		{"crash dumps without failures", []string{"--duration", "1s", "--crash-dump"}, "need --fail-rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e2e.Run(t, "", nil, append(base, tt.flags...)...)
			if res.Code != 2 || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 || !strings.Contains(res.Stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and one line about %s", res.Code, res.Stderr, tt.want)
			}
		})
	}
}
