package client_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/client"
	"github.com/deviceupdate/deviceupdate/internal/handler"
)

func TestResolve(t *testing.T) {
	certsDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(certsDir, "admin.token"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		flags   client.Options
		env     map[string]string
		want    client.Options
		wantErr string
	}{
		{"flags win over the environment",
			client.Options{Server: "https://flag:1", Token: "flag-token", Certs: certsDir},
			map[string]string{client.EnvServer: "https://env:2", client.EnvToken: "env-token", client.EnvCerts: "/env"},
			client.Options{Server: "https://flag:1", Token: "flag-token", Certs: certsDir}, ""},
		{"environment fills what flags leave",
			client.Options{},
			map[string]string{client.EnvServer: "https://env:2", client.EnvToken: "env-token", client.EnvCerts: "/env"},
			client.Options{Server: "https://env:2", Token: "env-token", Certs: "/env"}, ""},
		{"token from the certs folder named by the environment",
			client.Options{},
			map[string]string{client.EnvCerts: certsDir},
			client.Options{Server: client.DefaultServer, Token: "from-file", Certs: certsDir}, ""},
		{"no token anywhere",
			client.Options{Certs: t.TempDir()}, nil,
			client.Options{}, "no admin token: pass --token, set $DEVICEUPDATE_TOKEN"},
		{"plain http refused",
			client.Options{Server: "http://127.0.0.1:80", Token: "t"}, nil,
			client.Options{}, `want an https:// URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.Resolve(tt.flags, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Resolve = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// startServer serves the real handlers over TLS with a certificate from
// certs.Ensure, and returns the certs folder and the base URL.
func startServer(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := certs.Ensure(dir, certs.Options{Domain: "contoso.com", IPs: []net.IP{net.ParseIP("127.0.0.1")}}); err != nil {
		t.Fatal(err)
	}
	pair, err := certs.LoadServer(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := certs.ReadToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := handler.New(handler.Config{
		Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Store: pinger{}, AdminToken: tok,
		Info: deviceupdate.ServerInfo{Version: "v-test", Domain: "contoso.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h.Secure())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return dir, srv.URL
}

type pinger struct{}

func (pinger) Ping() error { return nil }

func TestClientTalksToServer(t *testing.T) {
	dir, url := startServer(t)
	o, err := client.Resolve(client.Options{Server: url, Certs: dir}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(o)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.ServerInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != "v-test" || info.Domain != "contoso.com" {
		t.Errorf("info = %+v", info)
	}
}

func TestClientErrors(t *testing.T) {
	dir, url := startServer(t)
	otherCA := t.TempDir()
	if _, err := certs.Ensure(otherCA, certs.Options{}); err != nil {
		t.Fatal(err)
	}
	closed := func() string { // an address nothing listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "https://" + l.Addr().String()
	}()
	tests := []struct {
		name     string
		opts     client.Options
		wantCode string // when the server answered
		wantText string
	}{
		{"wrong token", client.Options{Server: url, Certs: dir, Token: "wrong"}, deviceupdate.EUNAUTHORIZED, "missing or invalid admin token"},
		{"untrusted server", client.Options{Server: url, Certs: otherCA, Token: "x"}, "", "not signed by the CA in the certs folder"},
		{"nobody listening", client.Options{Server: closed, Certs: dir, Token: "x"}, "", "is `deviceupdate serve` running there?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ServerInfo(context.Background())
			if err == nil {
				t.Fatal("ServerInfo succeeded")
			}
			if tt.wantCode != "" && deviceupdate.ErrorCode(err) != tt.wantCode {
				t.Errorf("code = %q, want %q", deviceupdate.ErrorCode(err), tt.wantCode)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q lacks %q", err, tt.wantText)
			}
		})
	}
	t.Run("missing CA", func(t *testing.T) {
		_, err := client.New(client.Options{Server: url, Certs: t.TempDir(), Token: "x"})
		if err == nil || !strings.Contains(err.Error(), "point --certs") {
			t.Fatalf("error = %v", err)
		}
	})
}
