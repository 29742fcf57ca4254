package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// lan is a bridge in the root network namespace with one namespace per
// phone, each joined to it by a veth pair: a real Ethernet segment on
// which broadcasts reach every phone.
type lan struct {
	t      *testing.T
	bridge string
	ns     []string
	prefix string // the first three octets, e.g. "10.77.3"
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newLAN builds the bridge at <prefix>.1/24 and n namespaces at
// <prefix>.11, .12, ...; everything is removed when the test ends.
func newLAN(t *testing.T, n int) *lan {
	t.Helper()
	id := fmt.Sprintf("%04x", os.Getpid()&0xffff)
	l := &lan{t: t, bridge: "dubr" + id, prefix: fmt.Sprintf("10.77.%d", os.Getpid()%250)}
	t.Cleanup(func() {
		for _, ns := range l.ns {
			_ = exec.Command("ip", "netns", "del", ns).Run() // takes its veth end, and so the pair, with it
		}
		_ = exec.Command("ip", "link", "del", l.bridge).Run()
	})
	ip(t, "link", "add", l.bridge, "type", "bridge")
	ip(t, "addr", "add", l.prefix+".1/24", "dev", l.bridge)
	ip(t, "link", "set", l.bridge, "up")
	for i := range n {
		ns, host, peer := fmt.Sprintf("du%s-%d", id, i), fmt.Sprintf("duh%s%d", id, i), fmt.Sprintf("dup%s%d", id, i)
		ip(t, "netns", "add", ns)
		l.ns = append(l.ns, ns)
		ip(t, "link", "add", host, "type", "veth", "peer", "name", peer)
		ip(t, "link", "set", peer, "netns", ns)
		ip(t, "link", "set", host, "master", l.bridge)
		ip(t, "link", "set", host, "up")
		ip(t, "-n", ns, "addr", "add", fmt.Sprintf("%s.%d/24", l.prefix, 11+i), "dev", peer)
		ip(t, "-n", ns, "link", "set", peer, "up")
		ip(t, "-n", ns, "link", "set", "lo", "up")
	}
	return l
}

// TestPeerSharingAcrossNamespaces: four phones, each in its own network
// namespace on one bridge, find each other by real UDP broadcast and
// share the update; every phone ends on the offered version, and the
// server sends about one copy of the image, not four.
func TestPeerSharingAcrossNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the namespace test needs root in CI")
		}
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the namespace test needs ip (iproute2) in CI")
		}
		t.Skip("needs ip (iproute2)")
	}
	const phones = 4
	l := newLAN(t, phones)
	srv := e2e.Start(t, e2e.Options{Args: []string{"--http", l.prefix + ".1:0", "--https", l.prefix + ".1:0"}})

	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	trust := t.TempDir()
	testpki.WriteCert(t, filepath.Join(trust, "publisher.pem"), ca.Cert)
	image := testpkg.Image(3<<20+4321, 9)
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", image, testpkg.NewSigner(t, ca, testpki.Options{}))
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	for _, args := range [][]string{
		{"import", testpkg.MakeCab(t, files)}, {"rule", "approve", "UCPhone/Polycom/CX600/A/ENU/CPE"},
		{"config", "set", "PeerFirmwareSharing=true"},
	} {
		if res := e2e.Run(t, "", env, args...); res.Code != 0 {
			t.Fatalf("%v: %s", args, res.Stderr)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, phones)
	codes := make([]error, phones)
	for i, ns := range l.ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, e2e.Binary(t), "phone", "run",
				"--server", "http://"+srv.HTTPAddr, "--mac", fmt.Sprintf("00-04-F2-77-00-%02X", i+1), "--model", "CX600",
				"--version", "4.0.7577.4100", "--state", filepath.Join(t.TempDir(), "state"), "--trust", trust,
				"--peer-addr", fmt.Sprintf("%s.%d", l.prefix, 11+i), "--broadcast", l.prefix+".255:4051", "--once", "--linger", "4s", "--log-level", "debug")
			cmd.Env = e2e.Env()
			cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
			codes[i] = cmd.Run()
		}()
	}
	wg.Wait()
	for i := range l.ns {
		if codes[i] != nil {
			t.Errorf("phone %d: %v\n%s", i, codes[i], outs[i].String())
		}
	}
	if t.Failed() {
		return
	}
	if code := srv.Stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	var imageBytes float64
	gets := 0
	for _, line := range srv.Logs() {
		if p, _ := line["path"].(string); line["msg"] == "request" && strings.HasSuffix(p, "/CPE.nbt") {
			n, _ := line["bytes_out"].(float64)
			imageBytes += n
			gets++
		}
	}
	copies := imageBytes / float64(len(image))
	t.Logf("%d phones over real broadcast: the server sent %.2f copies of the image in %d requests", phones, copies, gets)
	if copies < 0.99 || copies > 1.25 {
		for i := range l.ns {
			t.Logf("phone %d:\n%s", i, outs[i].String())
		}
		t.Errorf("the server sent %.2f copies of the image, want one (at most 1.25)", copies)
	}
}
