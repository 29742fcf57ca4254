package phone_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/catalog"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/phone"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

func TestMain(m *testing.M) { e2e.Main(m) }

const (
	oldVersion = "4.0.7577.4100"
	newVersion = "4.0.7577.4366"
	ruleKey    = "UCPhone/Polycom/CX600/A/ENU/CPE"
)

// site is a running server with newVersion approved for CX600, signed by
// a publisher under ca.
type site struct {
	srv   *e2e.Server
	ca    *testpki.Authority
	image []byte
	env   []string
}

func startSite(t *testing.T, imageSize int) *site {
	t.Helper()
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	testpki.WriteCert(t, filepath.Join(srv.Certs, "trusted", "publisher.pem"), ca.Cert)
	s := &site{srv: srv, ca: ca, image: testpkg.Image(imageSize, 9),
		env: []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}}
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", newVersion, s.image, testpkg.NewSigner(t, ca, testpki.Options{}))
	s.run(t, "import", testpkg.MakeCab(t, files))
	s.run(t, "rule", "approve", ruleKey)
	return s
}

func (s *site) run(t *testing.T, args ...string) e2e.Result {
	t.Helper()
	res := e2e.Run(t, "", s.env, args...)
	if res.Code != 0 {
		t.Fatalf("deviceupdate %s: %s", strings.Join(args, " "), res.Stderr)
	}
	return res
}

// agent returns an agent of the site running version, with its own
// state folder.
func (s *site) agent(t *testing.T, mac, version string, edit func(*phone.Config)) (*phone.Agent, phone.Config) {
	t.Helper()
	cfg := phone.Config{
		Server:   s.srv.InternalURL(),
		Identity: phone.Identity{MAC: mac, Model: "CX600"},
		Version:  version,
		StateDir: filepath.Join(t.TempDir(), "state"),
		Trust:    s.ca.Pool(),
	}
	if edit != nil {
		edit(&cfg)
	}
	a, err := phone.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, cfg
}

// hookTransport lets a test see every request and change every answer.
type hookTransport struct {
	mu   sync.Mutex
	reqs []*http.Request
	hook func(req *http.Request, resp *http.Response)
}

func (h *hookTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.reqs = append(h.reqs, req)
	h.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && h.hook != nil {
		h.hook(req, resp)
	}
	return resp, err
}

func (h *hookTransport) requests(suffix string) []*http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*http.Request
	for _, r := range h.reqs {
		if strings.HasSuffix(r.URL.Path, suffix) {
			out = append(out, r)
		}
	}
	return out
}

// tlsTransport is a hookTransport over HTTPS that trusts pool.
type tlsTransport struct {
	h    *hookTransport
	pool *x509.CertPool
	once sync.Once
	tr   *http.Transport
}

func (t *tlsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.once.Do(func() { t.tr = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: t.pool}} })
	t.h.mu.Lock()
	t.h.reqs = append(t.h.reqs, req)
	t.h.mu.Unlock()
	return t.tr.RoundTrip(req)
}

// replaceBody gives resp another body.
func replaceBody(resp *http.Response, body []byte) {
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

// cutReader returns n bytes of r, then fails as a dropped connection does.
type cutReader struct {
	r io.ReadCloser
	n int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if len(p) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func (c *cutReader) Close() error { return c.r.Close() }

// TestAgent runs agents against a real server with an approved update.
func TestAgent(t *testing.T) {
	s := startSite(t, 512<<10)
	ctx := context.Background()

	t.Run("an old phone downloads, verifies, switches and reports", func(t *testing.T) {
		const mac = "00-04-F2-00-10-01"
		a, cfg := s.agent(t, mac, oldVersion, nil)
		res, err := a.Poll(ctx, "boot")
		if err != nil {
			t.Fatal(err)
		}
		if !res.Updated || res.Offered != newVersion || res.Running != newVersion || a.Running() != newVersion || res.Files != 2 {
			t.Fatalf("result %+v, running %s", res, a.Running())
		}
		got, err := os.ReadFile(filepath.Join(cfg.StateDir, "firmware", "CPE", newVersion, "CPE.nbt"))
		if err != nil || !bytes.Equal(got, s.image) {
			t.Fatalf("installed image: %v (%d bytes, want the %d imported)", err, len(got), len(s.image))
		}
		if res.ServerBytes != res.FileBytes || res.PeerBytes != 0 {
			t.Errorf("read %d bytes from the server, %d from peers, for %d bytes of files", res.ServerBytes, res.PeerBytes, res.FileBytes)
		}
		// A restarted phone runs what it switched to and is offered nothing.
		again, _ := s.agent(t, mac, oldVersion, func(c *phone.Config) { c.StateDir = cfg.StateDir })
		if again.Running() != newVersion {
			t.Fatalf("after a restart the phone runs %s", again.Running())
		}
		if res, err := again.Poll(ctx, "boot"); err != nil || res.Offered != "" || res.Running != newVersion {
			t.Fatalf("second poll: %+v, %v", res, err)
		}
		// The log of the update is on the server.
		var logs []deviceupdate.DeviceLog
		out := s.run(t, "logs", "list", "--device", mac, "--json").Stdout
		if err := json.Unmarshal([]byte(out), &logs); err != nil || len(logs) != 1 || logs[0].Type != "Diaglog" || !strings.HasSuffix(logs[0].Name, ".txt") {
			t.Fatalf("logs list: %v %s", err, out)
		}
		text := s.run(t, "logs", "get", logs[0].Path(), "-o", "-").Stdout
		for _, want := range []string{"offered " + newVersion, "signed by", "switched from " + oldVersion + " to " + newVersion} {
			if !strings.Contains(text, want) {
				t.Errorf("the uploaded log lacks %q:\n%s", want, text)
			}
		}
	})

	t.Run("a download cut short resumes with Range", func(t *testing.T) {
		const cutAt = 100 << 10
		var once sync.Once
		h := &hookTransport{hook: func(req *http.Request, resp *http.Response) {
			if strings.HasSuffix(req.URL.Path, "/CPE.nbt") {
				once.Do(func() { resp.Body = &cutReader{r: resp.Body, n: cutAt} })
			}
		}}
		a, _ := s.agent(t, "00-04-F2-00-10-02", oldVersion, func(c *phone.Config) { c.Client = &http.Client{Transport: h} })
		res, err := a.Poll(ctx, "boot")
		if err != nil || !res.Updated {
			t.Fatalf("%+v, %v", res, err)
		}
		gets := h.requests("/CPE.nbt")
		if len(gets) != 2 || gets[0].Header.Get("Range") != "" || gets[1].Header.Get("Range") != "bytes=102400-" {
			t.Fatalf("%d GETs of the image, Range %q then %q; want a whole GET then bytes=102400-", len(gets), gets[0].Header.Get("Range"), gets[len(gets)-1].Header.Get("Range"))
		}
		if res.ServerBytes != res.FileBytes {
			t.Errorf("read %d bytes for %d: the resumed part was read again", res.ServerBytes, res.FileBytes)
		}
	})

	sum := sha256.Sum256(s.image)
	t.Run("a part left by a restart resumes with Range", func(t *testing.T) {
		h := &hookTransport{}
		state := filepath.Join(t.TempDir(), "state")
		part := filepath.Join(state, "downloads", hex.EncodeToString(sum[:])+"-CPE.nbt")
		if err := os.MkdirAll(filepath.Dir(part), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(part, s.image[:200<<10], 0o644); err != nil {
			t.Fatal(err)
		}
		a, _ := s.agent(t, "00-04-F2-00-10-03", oldVersion, func(c *phone.Config) { c.Client, c.StateDir = &http.Client{Transport: h}, state })
		res, err := a.Poll(ctx, "boot")
		if err != nil || !res.Updated {
			t.Fatalf("%+v, %v", res, err)
		}
		if gets := h.requests("/CPE.nbt"); len(gets) != 1 || gets[0].Header.Get("Range") != "bytes=204800-" {
			t.Fatalf("%d GETs of the image; want one with Range bytes=204800-", len(gets))
		}
		if want := res.FileBytes - 200<<10; res.ServerBytes != want {
			t.Errorf("read %d bytes from the server, want %d", res.ServerBytes, want)
		}
	})

	tampered := bytes.Clone(s.image)
	tampered[len(tampered)/2] ^= 0x40
	tamperedSum := sha256.Sum256(tampered)
	tests := []struct {
		name  string
		hook  func(req *http.Request, resp *http.Response)
		trust func() *x509.CertPool
		want  error
	}{
		{
			name: "an image with a wrong byte",
			hook: func(req *http.Request, resp *http.Response) {
				if strings.HasSuffix(req.URL.Path, "/CPE.nbt") {
					replaceBody(resp, tampered)
				}
			},
			want: phone.ErrMismatch,
		},
		{
			name: "an answer and image changed together: not in the catalog",
			hook: func(req *http.Request, resp *http.Response) {
				switch {
				case strings.HasSuffix(req.URL.Path, "/ucdevice.upx"):
					body, _ := io.ReadAll(resp.Body)
					replaceBody(resp, bytes.ReplaceAll(body, []byte(hex.EncodeToString(sum[:])), []byte(hex.EncodeToString(tamperedSum[:]))))
				case strings.HasSuffix(req.URL.Path, "/CPE.nbt"):
					replaceBody(resp, tampered)
				}
			},
			want: phone.ErrNotListed,
		},
		{
			name:  "a catalog signed by a publisher not trusted",
			trust: func() *x509.CertPool { return testpki.NewCA(t, "Someone Else").Pool() },
			want:  catalog.ErrUntrusted,
		},
	}
	for i, tt := range tests {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			h := &hookTransport{hook: tt.hook}
			a, cfg := s.agent(t, "00-04-F2-00-20-0"+strconv.Itoa(i), oldVersion, func(c *phone.Config) {
				c.Client = &http.Client{Transport: h}
				if tt.trust != nil {
					c.Trust = tt.trust()
				}
			})
			res, err := a.Poll(ctx, "boot")
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			st, lerr := phone.LoadState(cfg.StateDir)
			if m, _ := st.Module("CPE"); lerr != nil || res.Updated || res.Running != oldVersion || a.Running() != oldVersion || m.Version != oldVersion {
				t.Fatalf("after a refusal: result %+v, state %+v %v", res, st, lerr)
			}
			if _, err := os.Stat(filepath.Join(cfg.StateDir, "firmware", "CPE", newVersion)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused version was installed: %v", err)
			}
			if tt.want == phone.ErrNotListed && len(h.requests("/CPE.nbt")) != 0 {
				t.Error("an image the catalog does not list was downloaded")
			}
		})
	}

	t.Run("external: credentials over HTTPS", func(t *testing.T) {
		const user, password = "phone.lab@contoso.com", "a long phone password"
		cmd := exec.Command(e2e.Binary(t), "user", "add", user, "--password-stdin")
		cmd.Env, cmd.Stdin = e2e.Env(s.env...), strings.NewReader(password+"\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("user add: %v: %s", err, out)
		}
		external := func(password string) (*phone.Agent, *hookTransport) {
			h := &hookTransport{}
			a, _ := s.agent(t, "00-04-F2-00-50-01", oldVersion, func(c *phone.Config) {
				c.Server, c.External, c.User, c.Password = s.srv.URL(), true, user, password
				c.Client = &http.Client{Transport: &tlsTransport{h: h, pool: s.srv.CAPool()}}
			})
			return a, h
		}
		a, _ := external(password + "!")
		if _, err := a.Poll(ctx, "boot"); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("a wrong password: %v", err)
		}
		a, h := external(password)
		if res, err := a.Poll(ctx, "boot"); err != nil || !res.Updated {
			t.Fatalf("%+v, %v", res, err)
		}
		for _, r := range h.requests("") {
			if u, _, ok := r.BasicAuth(); !ok || u != user || r.URL.Scheme != "https" || !strings.Contains(r.URL.Path, "Ext/") {
				t.Errorf("%s %s: not an external request with the credentials", r.Method, r.URL)
			}
		}
	})

	t.Run("polls on the answered interval and at sign-in", func(t *testing.T) {
		waits := make(chan time.Duration)
		fire := make(chan time.Time)
		h := &hookTransport{}
		a, _ := s.agent(t, "00-04-F2-00-30-01", newVersion, func(c *phone.Config) {
			c.Client = &http.Client{Transport: h}
			c.After = func(d time.Duration) <-chan time.Time { waits <- d; return fire }
		})
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- a.Run(ctx) }()
		defer func() { cancel(); <-done }()
		next := func() time.Duration {
			t.Helper()
			select {
			case d := <-waits:
				return d
			case <-time.After(30 * time.Second):
				t.Fatal("the agent did not schedule its next poll")
				return 0
			}
		}
		// The default is 86400 s, spread by a tenth either way per phone.
		if d := next(); d < 77760*time.Second || d > 95040*time.Second {
			t.Fatalf("after boot the agent waits %v", d)
		}
		s.run(t, "config", "set", "PollIntervalSeconds=3600")
		t.Cleanup(func() { s.run(t, "config", "set", "PollIntervalSeconds=86400") })
		fire <- time.Now()
		if d := next(); d < 3240*time.Second || d > 3960*time.Second {
			t.Fatalf("after the periodic poll the agent waits %v, want the new interval", d)
		}
		a.SignIn("sip:alice@contoso.com")
		next()
		var bodies []string
		for _, r := range h.requests("/ucdevice.upx") {
			b, _ := r.GetBody()
			data, _ := io.ReadAll(b)
			bodies = append(bodies, string(data))
		}
		want := []string{"<Trigger>boot</Trigger>", "<Trigger>periodic</Trigger>", "<Trigger>signin</Trigger>"}
		if len(bodies) != 3 {
			t.Fatalf("%d polls, want 3: %q", len(bodies), bodies)
		}
		for i, w := range want {
			if !strings.Contains(bodies[i], w) {
				t.Errorf("poll %d lacks %s: %s", i+1, w, bodies[i])
			}
		}
		if !strings.Contains(bodies[2], "<UserId>sip:alice@contoso.com</UserId>") {
			t.Errorf("the sign-in poll does not name the user: %s", bodies[2])
		}
	})
}
