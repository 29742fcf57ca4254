package main_test

import (
	"encoding/json"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/phone"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// phoneSite starts a server with version 4.0.7577.4366 of a size-byte
// image approved for CX600, and returns it, the admin environment and
// the path of a PEM file holding the publisher's root.
func phoneSite(t *testing.T, size int) (*e2e.Server, []string, string) {
	t.Helper()
	return phoneSiteWith(t, size, e2e.Options{})
}

// phoneSiteWith is phoneSite with a server started with o.
func phoneSiteWith(t *testing.T, size int, o e2e.Options) (*e2e.Server, []string, string) {
	t.Helper()
	srv := e2e.Start(t, o)
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", testpkg.Image(size, 5), testpkg.NewSigner(t, ca, testpki.Options{}))
	for _, args := range [][]string{{"import", testpkg.MakeCab(t, files)}, {"rule", "approve", "UCPhone/Polycom/CX600/A/ENU/CPE"}} {
		if res := e2e.Run(t, "", env, args...); res.Code != 0 {
			t.Fatalf("%s: %s", strings.Join(args, " "), res.Stderr)
		}
	}
	trust := filepath.Join(t.TempDir(), "publisher.pem")
	testpki.WriteCert(t, trust, ca.Cert)
	return srv, env, trust
}

// TestPhoneRun: `phone run --once` updates an old phone and exits 0, then
// finds nothing to do; a phone that does not trust the publisher refuses
// the update and exits 1 with one line; a wrong command line exits 2.
func TestPhoneRun(t *testing.T) {
	srv, _, trust := phoneSite(t, 300<<10)
	other := filepath.Join(t.TempDir(), "other.pem")
	testpki.WriteCert(t, other, testpki.NewCA(t, "Someone Else").Cert)
	state := filepath.Join(t.TempDir(), "phone")
	runPhone := func(trust, state string, extra ...string) e2e.Result {
		return e2e.Run(t, "", nil, append([]string{"phone", "run", "--server", srv.InternalURL(), "--mac", "00-04-F2-00-40-01",
			"--model", "CX600", "--version", "4.0.7577.4100", "--trust", trust, "--state", state, "--once", "--peer-sharing", "off"}, extra...)...)
	}

	res := runPhone(trust, state, "--json")
	var got phone.Result
	if err := json.Unmarshal([]byte(res.Stdout), &got); res.Code != 0 || err != nil || !got.Updated || got.Running != "4.0.7577.4366" {
		t.Fatalf("phone run: exit %d, %+v (%v)\nstderr: %s", res.Code, got, err, res.Stderr)
	}
	st, err := phone.LoadState(state)
	if m, _ := st.Module("CPE"); err != nil || m.Version != "4.0.7577.4366" || len(m.Files) != 2 {
		t.Fatalf("state after the update: %+v, %v", st, err)
	}
	if res := runPhone(trust, state); res.Code != 0 || !strings.Contains(res.Stdout, "nothing offered") {
		t.Errorf("second run: exit %d, %q, %s", res.Code, res.Stdout, res.Stderr)
	}

	res = runPhone(other, filepath.Join(t.TempDir(), "untrusting"))
	lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
	if last := lines[len(lines)-1]; res.Code != 1 || !strings.HasPrefix(last, "deviceupdate: ") || !strings.Contains(last, "not trusted") {
		t.Errorf("untrusted publisher: exit %d, stderr %q", res.Code, res.Stderr)
	}

	for _, args := range [][]string{
		{"phone", "run", "--server", srv.InternalURL(), "--mac", "00-04-F2-00-40-02", "--model", "CX600", "--version", "4.0.7577.4100", "--once"}, // no --trust
		{"phone", "run", "--server", srv.InternalURL(), "--model", "CX600", "--version", "4.0.7577.4100", "--trust", trust, "--once"},             // no --mac
		{"phone", "sim", "--server", srv.InternalURL(), "--model", "CX600", "--version", "4.0.7577.4100", "--trust", trust, "--wan-rate", "fast"},
		{"phone", "sim", "--server", srv.InternalURL(), "--model", "CX600", "--version", "4.0.7577.4100", "--trust", trust, "--peer-sharing", "maybe"},
	} {
		if res := e2e.Run(t, "", nil, args...); res.Code != 2 || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line", strings.Join(args[:2], " "), res.Code, res.Stderr)
		}
	}
}

// freePort returns a TCP port free on 127.0.0.1 now, for the peers of a
// simulation (they all share on one port, each on its own address).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestPhoneSim: six phones behind a slow WAN link each download the
// update when the server says not to share; when sharing is forced on,
// when the server says to share, and store-and-forward, the site reads
// about one copy from the server; every phone updates each time.
func TestPhoneSim(t *testing.T) {
	const size = 2 << 20
	srv, env, trust := phoneSite(t, size)
	// A block of loopback addresses and a port of our own, so parallel
	// tests do not meet these phones.
	block := "127." + strconv.Itoa(100+rand.IntN(150)) + "." + strconv.Itoa(1+rand.IntN(250)) + ".1"
	sim := func(t *testing.T, extra ...string) phone.SimResult {
		t.Helper()
		args := append([]string{"phone", "sim", "--server", srv.InternalURL(), "--count", "6", "--model", "CX600",
			"--version", "4.0.7577.4100", "--trust", trust, "--wan-rate", "4MiB", "--json",
			"--first-addr", block, "--peer-port", freePort(t)}, extra...)
		res := e2e.Run(t, "", nil, args...)
		var got phone.SimResult
		if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil || res.Code != 0 || got.Phones != 6 || got.Updated != 6 {
			t.Fatalf("phone sim %s: exit %d, %+v (%v)\nstdout: %s\nstderr: %s", strings.Join(extra, " "), res.Code, got, err, res.Stdout, res.Stderr)
		}
		t.Logf("%s: %+v", strings.Join(extra, " "), got)
		return got
	}

	t.Run("the server says not to share", func(t *testing.T) {
		got := sim(t, "--peer-sharing", "auto")
		if got.ServerBytes < 6*got.FileBytes || got.ServerBytes > 6*got.FileBytes+6*size/4 || got.PeerBytes != 0 {
			t.Errorf("read %d bytes from the server and %d from peers; want about 6 × %d from the server", got.ServerBytes, got.PeerBytes, got.FileBytes)
		}
	})
	shared := func(t *testing.T, mode ...string) {
		t.Helper()
		got := sim(t, mode...)
		if got.ServerBytes > got.FileBytes*5/4 || got.PeerBytes < 5*size {
			t.Errorf("read %d bytes from the server (%.2f × the update's %d) and %d from peers; want at most 1.25 × from the server, 5 images from peers",
				got.ServerBytes, float64(got.ServerBytes)/float64(got.FileBytes), got.FileBytes, got.PeerBytes)
		}
	}
	// Forced on, the phones share though the answer names no chunk list.
	t.Run("shared: forced on", func(t *testing.T) { shared(t, "--peer-sharing", "on") })
	if res := e2e.Run(t, "", env, "config", "set", "PeerFirmwareSharing=true"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	t.Run("shared: the server says to share", func(t *testing.T) { shared(t, "--peer-sharing", "auto") })
	t.Run("shared: store and forward", func(t *testing.T) { shared(t, "--peer-sharing", "on", "--store-and-forward") })
}
