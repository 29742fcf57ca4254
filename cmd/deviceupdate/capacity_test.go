package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// Attacks on the server's capacity (issue 14): each starts a real server
// with small limits, attacks it over real connections, and checks what a
// well-behaved phone gets meanwhile. The server's peak memory is logged.

// peakRSS is the server's peak resident set (VmHWM), for the test log.
func peakRSS(t *testing.T, srv *e2e.Server) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.PID()))
	if err != nil {
		return "unknown: " + err.Error()
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// inFlight reads deviceupdate_http_requests_in_flight of a listener from
// /metrics.
func inFlight(t *testing.T, srv *e2e.Server, c *http.Client, listener string) int {
	t.Helper()
	code, body, _ := send(t, c, "GET", srv.URL()+"/metrics", "", map[string]string{"Authorization": "Bearer " + srv.Token()})
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	m := regexp.MustCompile(`(?m)^deviceupdate_http_requests_in_flight\{listener="` + listener + `"\} (\d+)`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	if listener == "https" {
		n-- // this request
	}
	return n
}

// waitInFlight waits until at least n requests are being answered on the
// listener, or until done says the attack is under way otherwise.
func waitInFlight(t *testing.T, srv *e2e.Server, listener string, n int, done func() bool) {
	t.Helper()
	c := srv.Client("ucupdates-r2.contoso.com")
	deadline := time.Now().Add(20 * time.Second)
	for inFlight(t, srv, c, listener) < n && (done == nil || !done()) {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d requests in flight on %s after 20s", n, listener)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statusCounts counts the answers an attack got.
type statusCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (s *statusCounts) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]int{}
	}
	s.m[k]++
}

func (s *statusCounts) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.m {
		n += v
	}
	return n
}

func (s *statusCounts) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.m)
}

// dialFrom returns a DialContext that connects from the loopback address
// local, so that one test plays clients at several source addresses.
func dialFrom(local string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return d.DialContext
}

// TestBadCredentialsDoNotStarvePolls: hundreds of connections sending
// random Basic passwords to the external poll endpoint cannot take the
// internal phones' capacity: every internal poll gets 200, the attackers
// get 401 (or 503), and a phone with a good password at another address
// signs in.
func TestBadCredentialsDoNotStarvePolls(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Args: []string{"--max-polls", "8"}})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	const good = "a long enough password"
	if res := runStdin(t, env, good+"\n", "user", "add", "phone1", "--password-stdin"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	ext := srv.URL() + "/RequestHandlerExt/ucdevice.upx"
	body := pollBody("00-04-F2-00-00-10", "CX600", "4.0.7577.4100")

	const attackers = 300
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: srv.CAPool(), ServerName: "ucupdates-r2.contoso.com"},
		DialContext:     dialFrom("127.0.0.1"), MaxIdleConnsPerHost: attackers,
	}
	defer tr.CloseIdleConnections()
	attack := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var got statusCounts
	for range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", ext, strings.NewReader(body))
				req.SetBasicAuth("phone1", rand.Text())
				resp, err := attack.Do(req)
				if err != nil {
					got.add("error")
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				got.add(strconv.Itoa(resp.StatusCode))
				// 300 connections, each trying 2 passwords a second: a
				// flood of concurrent guesses, not of bytes, which would
				// only measure this shared machine's CPU (under -race too).
				time.Sleep(500 * time.Millisecond)
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	t.Logf("attack starting")
	// Under way: half of them wait in the server, or (once refused
	// fast) each has had an answer.
	waitInFlight(t, srv, "https", attackers/2, func() bool { return got.total() >= attackers })

	t.Logf("attack under way: %s", &got)
	internal := &http.Client{Timeout: 20 * time.Second}
	start := time.Now()
	for i := range 20 {
		if code, msg := post(t, internal, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(fmt.Sprintf("00-04-F2-00-01-%02X", i), "CX600", "4.0.7577.4100")); code != 200 {
			t.Fatalf("internal poll %d during the attack: %d %s", i, code, msg)
		}
	}
	t.Logf("20 internal polls answered 200 in %v", time.Since(start).Round(10*time.Millisecond))
	// A phone with a good password, from another address, signs in; it
	// retries on 503 as phones do.
	phone := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: srv.CAPool(), ServerName: "ucupdates-r2.contoso.com"},
		DialContext:     dialFrom("127.0.0.2"),
	}, Timeout: 20 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest("POST", ext, strings.NewReader(body))
		req.SetBasicAuth("phone1", good)
		resp, err := phone.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("external poll with a good password from 127.0.0.2 during the attack: %d %s", resp.StatusCode, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("attackers' answers: %s; server peak RSS %s; total %v", &got, peakRSS(t, srv), time.Since(start).Round(10*time.Millisecond))
	_, metrics, _ := send(t, srv.Client("ucupdates-r2.contoso.com"), "GET", srv.URL()+"/metrics", "", map[string]string{"Authorization": "Bearer " + srv.Token()})
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "deviceupdate_external_auth") {
			t.Log(l)
		}
	}
}

// trickle sends head, then one byte of body a period until ctx ends or
// the server stops reading; it returns the connection and a channel that
// closes when the trickling stops.
func trickle(ctx context.Context, t *testing.T, addr, head string, body []byte, period time.Duration) (net.Conn, <-chan struct{}) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, b := range body {
			select {
			case <-ctx.Done():
				return
			case <-time.After(period):
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	return c, done
}

// readStatus reads the status line the server answers on c, or says why
// there is none within d.
func readStatus(c net.Conn, d time.Duration) string {
	_ = c.SetReadDeadline(time.Now().Add(d))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "no answer: " + err.Error()
	}
	return strings.TrimSpace(line)
}

// TestSlowPollBodiesDoNotHoldSlots: connections that send a poll's
// headers and then its body a byte at a time hold no poll slot: normal
// polls get 200 meanwhile, and the slow ones are cut when the body
// deadline passes.
func TestSlowPollBodiesDoNotHoldSlots(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Args: []string{"--max-polls", "4", "--stall-timeout", "3s"}}) // bodies within 1s
	const slow = 40
	body := pollBody("00-04-F2-00-00-20", "CX600", "4.0.7577.4100")
	head := fmt.Sprintf("POST /RequestHandler/ucdevice.upx HTTP/1.1\r\nHost: %s\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n", srv.HTTPAddr, len(body))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	conns := make([]net.Conn, slow)
	for i := range conns {
		conns[i], _ = trickle(ctx, t, srv.HTTPAddr, head, []byte(body), 300*time.Millisecond)
	}
	waitInFlight(t, srv, "http", 4, nil) // as many as there are slots

	c := &http.Client{Timeout: 20 * time.Second}
	for i := range 10 {
		if code, msg := post(t, c, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody(fmt.Sprintf("00-04-F2-00-02-%02X", i), "CX600", "4.0.7577.4100")); code != 200 {
			t.Fatalf("poll %d while %d clients trickle their bodies: %d %s", i, slow, code, msg)
		}
	}
	for i, conn := range conns {
		if st := readStatus(conn, 15*time.Second); !strings.HasPrefix(st, "HTTP/1.1 408") {
			t.Fatalf("slow poll %d: %s, want 408 once the body deadline passed", i, st)
		}
	}
	t.Logf("server peak RSS %s", peakRSS(t, srv))
}

// smallWindowDial connects with a small receive buffer, so that a client
// that stops reading stalls the server's writes after a few MiB (the
// server's send buffer) rather than tens (loopback's autotuned window).
func smallWindowDial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) }); err != nil {
			return err
		}
		return serr
	}}
	return d.DialContext(ctx, network, addr)
}

// importBigUpdate imports a CX600 update whose image has size bytes and
// returns the image and its path under DeviceUpdateFiles_Int/.
func importBigUpdate(t *testing.T, srv *e2e.Server, size int) ([]byte, string) {
	t.Helper()
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	files := testpkg.Files{}
	image := testpkg.Image(size, 3)
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", image, testpkg.NewSigner(t, ca, testpki.Options{}))
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	if res := e2e.Run(t, "", env, "import", testpkg.MakeCab(t, files)); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	return image, "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt"
}

// downloadListener is a listener to download from: its base URL, a
// client and a raw dial, both with a small receive window.
type downloadListener struct {
	base   string
	client *http.Client
	dial   func() net.Conn
}

func downloadListeners(t *testing.T, srv *e2e.Server) map[string]downloadListener {
	tlsConfig := &tls.Config{RootCAs: srv.CAPool(), ServerName: "ucupdates-r2.contoso.com"}
	out := map[string]downloadListener{}
	for _, l := range []struct {
		name, base, addr string
		secure           bool
	}{{"http", srv.InternalURL(), srv.HTTPAddr, false}, {"https", srv.URL(), srv.HTTPSAddr, true}} {
		tr := &http.Transport{DialContext: smallWindowDial, TLSClientConfig: tlsConfig}
		t.Cleanup(tr.CloseIdleConnections)
		dial := func() net.Conn {
			c, err := smallWindowDial(context.Background(), "tcp", l.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if l.secure {
				return tls.Client(c, tlsConfig)
			}
			return c
		}
		out[l.name] = downloadListener{l.base, &http.Client{Transport: tr, Timeout: 60 * time.Second}, dial}
	}
	return out
}

// TestStalledDownloadsAreCut: clients that ask for a large file and stop
// reading hold every download slot only until they have made no progress
// for the stall period; then a normal download gets its slot. Over plain
// HTTP (sendfile) and HTTPS.
func TestStalledDownloadsAreCut(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Args: []string{"--max-downloads", "2", "--stall-timeout", "2s"}})
	image, rel := importBigUpdate(t, srv, 24<<20)
	for name, l := range downloadListeners(t, srv) {
		t.Run(name, func(t *testing.T) {
			url := l.base + "/DeviceUpdateFiles_Int/" + rel
			for range 2 {
				c := l.dial()
				if _, err := fmt.Fprintf(c, "GET /DeviceUpdateFiles_Int/%s HTTP/1.1\r\nHost: x\r\n\r\n", rel); err != nil {
					t.Fatal(err)
				}
				// and never read
			}
			waitInFlight(t, srv, name, 2, nil)
			start := time.Now()
			for {
				resp, err := l.client.Get(url)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode == 200 {
					t.Logf("a normal download got a slot after %v", time.Since(start).Round(100*time.Millisecond))
					data, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || !bytes.Equal(data, image) {
						t.Fatalf("download: %d bytes of %d, %v", len(data), len(image), err)
					}
					break
				}
				resp.Body.Close()
				if resp.StatusCode != 503 || time.Since(start) > 15*time.Second {
					t.Fatalf("download while two stalled clients hold the slots: %d after %v", resp.StatusCode, time.Since(start).Round(time.Second))
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
	t.Logf("server peak RSS %s", peakRSS(t, srv))
}

// TestSlowDownloadsFinish: a client that reads slowly but steadily, for
// longer than the stall period and pausing for less than it, gets the
// whole file, over both listeners at once.
func TestSlowDownloadsFinish(t *testing.T) {
	// The stall timeout is well above the client's pause: on a machine
	// at full load (the whole suite under -race) this reader was once
	// starved for 4 s and cut, slow but not stalled.
	srv := e2e.Start(t, e2e.Options{Args: []string{"--stall-timeout", "12s"}})
	image, rel := importBigUpdate(t, srv, 16<<20)
	var wg sync.WaitGroup
	for name, l := range downloadListeners(t, srv) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := l.client.Get(l.base + "/DeviceUpdateFiles_Int/" + rel)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var got bytes.Buffer
			buf := make([]byte, 64<<10)
			start := time.Now()
			for {
				n, err := io.ReadFull(resp.Body, buf)
				got.Write(buf[:n])
				if err != nil {
					break
				}
				time.Sleep(30 * time.Millisecond) // about 2 MiB/s
				if got.Len() == len(image)/2 {
					time.Sleep(time.Second) // a pause shorter than the stall period
				}
			}
			if resp.StatusCode != 200 || !bytes.Equal(got.Bytes(), image) {
				t.Errorf("%s: a slow reader got %d, %d bytes of %d", name, resp.StatusCode, got.Len(), len(image))
			}
			t.Logf("%s: a slow reader got %d MiB in %v", name, got.Len()>>20, time.Since(start).Round(100*time.Millisecond))
		}()
	}
	wg.Wait()
}

// TestSlowUploadsAreCut: device log uploads trickling a byte at a time
// hold the upload slots only until they fall below the minimum rate;
// then a normal upload gets its slot. An upload that is slow but above
// the rate is stored.
func TestSlowUploadsAreCut(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{Args: []string{"--max-uploads", "2", "--stall-timeout", "2s"}})
	q := logQuery("00-04-F2-00-00-30", "CELog", "slow.txt").Encode()
	head := fmt.Sprintf("POST /RequestHandler/Files?%s HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\n", q, srv.HTTPAddr)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var conns []net.Conn
	for range 2 {
		c, _ := trickle(ctx, t, srv.HTTPAddr, head, bytes.Repeat([]byte("x"), 100000), 300*time.Millisecond)
		conns = append(conns, c)
	}
	waitInFlight(t, srv, "http", 2, nil)
	start := time.Now()
	for {
		code, msg := uploadLog(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/Files", logQuery("00-04-F2-00-00-31", "CELog", "normal.txt"), []byte("a line\r\n"), false)
		if code == 200 {
			break
		}
		if code != 503 || time.Since(start) > 15*time.Second {
			t.Fatalf("upload while two clients trickle theirs: %d %s after %v", code, msg, time.Since(start).Round(time.Second))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("a normal upload got a slot after %v", time.Since(start).Round(100*time.Millisecond))
	for i, c := range conns {
		if st := readStatus(c, 10*time.Second); !strings.HasPrefix(st, "HTTP/1.1 408") {
			t.Errorf("trickling upload %d: %s, want 408", i, st)
		}
	}

	// 6 KiB/s, three times the minimum, for about three stall periods.
	pr, pw := io.Pipe()
	go func() {
		for range 36 {
			if _, err := pw.Write(bytes.Repeat([]byte("slow line\r\n"), 55)); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", srv.InternalURL()+"/RequestHandler/Files?"+logQuery("00-04-F2-00-00-32", "CELog", "steady.txt").Encode(), pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a slow but steady upload: %d %s", resp.StatusCode, msg)
	}
	t.Logf("server peak RSS %s", peakRSS(t, srv))
}
