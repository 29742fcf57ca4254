// Package client is the admin API client the CLI's admin commands use
// (SPEC §1, §7). It finds the server, the token and the CA the same way
// for every command: a flag, else the environment, else the default.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/certs"
)

// Environment variables that stand in for the flags.
const (
	EnvServer = "DEVICEUPDATE_SERVER"
	EnvToken  = "DEVICEUPDATE_TOKEN"
	EnvCerts  = "DEVICEUPDATE_CERTS"
)

// Defaults when neither a flag nor the environment names a value.
const (
	DefaultServer = "https://127.0.0.1:443"
	DefaultCerts  = "./certs"
)

const apiPrefix = "/admin/api/v1"

// Options says where the server is and how to trust and authenticate to it.
type Options struct {
	Server string // base URL of the HTTPS listener
	Token  string // admin bearer token
	Certs  string // folder holding ca.crt and, when Token is empty, admin.token
}

// Resolve fills each empty field from the environment, then from the
// defaults; the token last of all from <Certs>/admin.token.
func Resolve(o Options, getenv func(string) string) (Options, error) {
	if o.Server == "" {
		o.Server = getenv(EnvServer)
	}
	if o.Server == "" {
		o.Server = DefaultServer
	}
	if o.Certs == "" {
		o.Certs = getenv(EnvCerts)
	}
	if o.Certs == "" {
		o.Certs = DefaultCerts
	}
	if o.Token == "" {
		o.Token = getenv(EnvToken)
	}
	if o.Token == "" {
		tok, err := certs.ReadToken(o.Certs)
		if err != nil {
			return o, fmt.Errorf("no admin token: pass --token, set $%s, or point --certs at the server's certs folder (%w)", EnvToken, err)
		}
		o.Token = tok
	}
	u, err := url.Parse(o.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return o, fmt.Errorf("server %q: want an https:// URL such as %s", o.Server, DefaultServer)
	}
	return o, nil
}

// Client talks to one server's admin API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client for resolved options; it trusts only <Certs>/ca.crt.
func New(o Options) (*Client, error) {
	pool, err := certs.LoadCAPool(o.Certs)
	if err != nil {
		return nil, fmt.Errorf("%w; point --certs or $%s at the server's certs folder", err, EnvCerts)
	}
	return NewWithPool(o, pool), nil
}

// NewWithPool returns a client that trusts the given roots.
func NewWithPool(o Options, roots *x509.CertPool) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	// HTTP/1.1: admin calls are few, and an HTTP/2 stream's flow-control
	// window throttles the upload of a large package.
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	tr.WriteBufferSize = 256 << 10
	return &Client{
		base:  strings.TrimRight(o.Server, "/"),
		token: o.Token,
		http:  &http.Client{Transport: tr, Timeout: 2 * time.Hour}, // a large package uploads and verifies slowly
	}
}

// Do sends a request to the admin API path (below /admin/api/v1) with in
// as its JSON body when not nil, and decodes the JSON answer into out when
// not nil (an io.Writer out gets the answer's bytes as they are). An error answer comes back as a *deviceupdate.Error with the
// server's code and message.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	if in == nil {
		return c.send(ctx, method, path, nil, -1, "", out)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return c.send(ctx, method, path, bytes.NewReader(b), int64(len(b)), "application/json", out)
}

// Upload POSTs size bytes of body (streamed) to the admin API path with
// the given content type, and decodes the JSON answer into out.
func (c *Client) Upload(ctx context.Context, path string, body io.Reader, size int64, contentType string, out any) error {
	return c.send(ctx, http.MethodPost, path, body, size, contentType, out)
}

func (c *Client) send(ctx context.Context, method, path string, body io.Reader, size int64, contentType string, out any) error {
	resp, err := c.open(ctx, method, path, body, size, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		if _, err := io.Copy(w, resp.Body); err != nil {
			return fmt.Errorf("read answer from %s: %w", c.base, err)
		}
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer from %s: %w", c.base, err)
	}
	return nil
}

// Stream GETs the admin API path and returns the answer for the caller to
// read and close: its body as it arrives, then resp.Trailer. An error
// answer comes back as a *deviceupdate.Error, as from Do.
func (c *Client) Stream(ctx context.Context, path string) (*http.Response, error) {
	return c.open(ctx, http.MethodGet, path, nil, -1, "")
}

// open sends a request and returns a 2xx answer, or the error it means.
func (c *Client) open(ctx context.Context, method, path string, body io.Reader, size int64, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+apiPrefix+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.explain(err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

// ServerInfo reports which server and build the client talks to.
func (c *Client) ServerInfo(ctx context.Context) (deviceupdate.ServerInfo, error) {
	var info deviceupdate.ServerInfo
	err := c.Do(ctx, http.MethodGet, "/server", nil, &info)
	return info, err
}

// explain turns a transport failure into a message that says what to do.
func (c *Client) explain(err error) error {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("server %s: its certificate is not signed by the CA in the certs folder; point --certs at the server's certs folder", c.base)
	case errors.As(err, &hostErr):
		return fmt.Errorf("server %s: its certificate is not valid for that name (%v); use a name from the certificate in --server", c.base, hostErr)
	default:
		return fmt.Errorf("cannot reach server %s: %w; is `deviceupdate serve` running there? set --server or $%s", c.base, err, EnvServer)
	}
}

func decodeError(resp *http.Response) error {
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(data, &env); err != nil || env.Error.Code == "" {
		return deviceupdate.Errorf(deviceupdate.EINTERNAL, "server answered %s", resp.Status)
	}
	return deviceupdate.Errorf(env.Error.Code, "%s", env.Error.Message)
}
