package handler

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// TestSlowImportIsCut: a package upload below the minimum rate is cut
// off with 408 and imports nothing; one that is slow but above it, for
// several windows, is imported. Over a real connection: the deadlines
// are the connection's.
func TestSlowImportIsCut(t *testing.T) {
	const stall = 600 * time.Millisecond // windows of 600 ms, 614 bytes each
	pkgs := &recordingPackages{}
	s, err := New(Config{Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Store: &fakePinger{}, AdminToken: testToken,
		Packages: pkgs, MaxPackageSize: 1 << 20, StallTimeout: stall})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Secure())
	defer srv.Close()

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s/packages?name=pkg.cab HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 10000\r\n\r\n", AdminPrefix, testToken)
	go func() {
		for range 100 {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"code":"timeout"`) || pkgs.read >= 100 {
		t.Fatalf("a trickled import: %d %s after %d bytes", resp.StatusCode, body, pkgs.read)
	}

	// 5 KiB/s for 2 s: above the rate in each of three windows.
	pr, pw := io.Pipe()
	go func() {
		for range 20 {
			if _, err := pw.Write(make([]byte, 512)); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", srv.URL+AdminPrefix+"/packages?name=pkg.cab", pr)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || pkgs.read != 20*512 {
		t.Errorf("a slow but steady import: %d %s, %d bytes read", resp.StatusCode, body, pkgs.read)
	}
}

// TestDownloadLeavesNoDeadline: after a download, the next request on the
// same keep-alive connection, a stall timeout later, is answered: the
// download's write deadline does not outlive it. Over plain HTTP
// (sendfile), TLS and HTTP/2.
func TestDownloadLeavesNoDeadline(t *testing.T) {
	for _, proto := range []string{"http", "https", "h2"} {
		t.Run(proto, func(t *testing.T) {
			s, _, _, _ := newExternalServer(t)
			s.stall = 200 * time.Millisecond
			srv := httptest.NewUnstartedServer(s.Secure())
			srv.EnableHTTP2 = proto == "h2"
			if proto == "http" {
				srv.Start()
			} else {
				srv.StartTLS()
			}
			defer srv.Close()
			c := srv.Client()
			reused := false
			trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
			for i, path := range []string{"/DeviceUpdateFiles_Int/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt", "/RequestHandler/ucdevice.upx"} {
				if i > 0 {
					time.Sleep(3 * s.stall)
				}
				req, _ := http.NewRequest("GET", srv.URL+path, nil)
				if i > 0 {
					req, _ = http.NewRequest("POST", srv.URL+path, strings.NewReader(pollXML)) // not retried on a broken connection
				}
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				data, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || i == 0 && string(data) != string(testImage) || resp.ProtoMajor != map[bool]int{true: 2, false: 1}[proto == "h2"] {
					t.Fatalf("%s: %s %d, %d bytes, %v", path, resp.Proto, resp.StatusCode, len(data), err)
				}
			}
			if !reused {
				t.Error("the poll did not reuse the download's connection")
			}
		})
	}
}
