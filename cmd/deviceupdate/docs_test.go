package main_test

import (
	"bufio"
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// repoRoot is the module's root, where README.md, docs/ and dist/ live.
const repoRoot = "../.."

// TestDocExamplesPoll posts every committed poll body under docs/examples/
// (the README's curl examples use them) to a real server holding the
// README's walk-through package: each gets 200 and a <Response> offering
// the approved build, whose image downloads; through the external endpoint
// with a user's password too, and 401 without one. So the examples cannot
// rot.
func TestDocExamplesPoll(t *testing.T) {
	examples, err := filepath.Glob(filepath.Join(repoRoot, "docs", "examples", "*.xml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no docs/examples/*.xml (%v)", err)
	}
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Lab Root")
	trustPublisher(t, srv, ca)
	cert, key := publisherFiles(t, ca)
	image := filepath.Join(t.TempDir(), "CPE.nbt")
	imageBytes := testpkg.Image(256<<10, 3)
	if err := os.WriteFile(image, imageBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	cab := filepath.Join(t.TempDir(), "UCUpdates.cab")
	if res := pack(t, cab, cert, key, []string{"--version", "4.0.7577.4366"}, image); res.Code != 0 {
		t.Fatalf("pack: %s", res.Stderr)
	}
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	for _, args := range [][]string{{"import", cab}, {"rule", "approve", "UCPhone/Polycom/CX600/A/ENU/CPE"}} {
		if res := e2e.Run(t, "", env, args...); res.Code != 0 {
			t.Fatalf("%v: %s", args, res.Stderr)
		}
	}
	const password = "correct horse battery staple"
	if res := runStdin(t, env, password+"\n", "user", "add", "phone-redmond", "--password-stdin"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	external := srv.Client("ucupdates-r2." + srv.Domain)

	for _, path := range examples {
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			for _, tt := range []struct {
				name, url string
				client    *http.Client
				user      string
				wantCode  int
			}{
				{"internal", srv.InternalURL() + "/RequestHandler/ucdevice.upx", http.DefaultClient, "", 200},
				{"external with a user", srv.URL() + "/RequestHandlerExt/ucdevice.upx", external, "phone-redmond", 200},
				{"external anonymous", srv.URL() + "/RequestHandlerExt/ucdevice.upx", external, "", 401},
			} {
				t.Run(tt.name, func(t *testing.T) {
					req, err := http.NewRequest("POST", tt.url, strings.NewReader(string(body)))
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("Content-Type", "text/xml")
					if tt.user != "" {
						req.SetBasicAuth(tt.user, password)
					}
					code, answer := do(t, tt.client, req)
					if code != tt.wantCode {
						t.Fatalf("%d %s", code, answer)
					}
					if tt.wantCode != 200 {
						return
					}
					var res upx.Response
					if err := xml.Unmarshal([]byte(answer), &res); err != nil || res.XMLName.Local != "Response" {
						t.Fatalf("not a <Response> (%v):\n%s", err, answer)
					}
					if res.Version != "4.0.7577.4366" || res.NumOfFiles != 2 || res.Files == nil {
						t.Fatalf("offered %q, %d files; want the walk-through's 4.0.7577.4366:\n%s", res.Version, res.NumOfFiles, answer)
					}
					if res.PollIntervalSeconds < 77760 || res.PollIntervalSeconds > 95040 {
						t.Errorf("PollIntervalSeconds %d is not 86400 ± 10%%", res.PollIntervalSeconds)
					}
					base := res.BaseURL
					if tt.user != "" {
						base = res.ExternalBaseURL
					}
					dl, err := http.NewRequest("GET", base+"/CPE.nbt", nil)
					if err != nil {
						t.Fatal(err)
					}
					if tt.user != "" {
						dl.SetBasicAuth(tt.user, password)
					}
					if code, data := do(t, tt.client, dl); code != 200 || data != string(imageBytes) {
						t.Fatalf("download %s: %d, %d bytes; want the packed image of %d bytes", dl.URL, code, len(data), len(imageBytes))
					}
				})
			}
		})
	}
}

// do sends req and returns the status and body. The external client
// verifies ucupdates-r2.<domain> on 127.0.0.1, as curl --resolve does, so
// the answer's external URLs name the loopback address it dialled.
func do(t *testing.T, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// The documents whose links and file references TestDocLinks checks.
func docFiles(t *testing.T) []string {
	t.Helper()
	docs := []string{filepath.Join(repoRoot, "README.md")}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			docs = append(docs, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

var (
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// A file of the repository named in a command, such as
	// --data-binary @docs/examples/poll.xml or dist/systemd/deviceupdate.service.
	repoPath = regexp.MustCompile(`(?:^|[\s@(=])((?:docs|dist)/[A-Za-z0-9._/-]*[A-Za-z0-9])`)
)

// TestDocLinks: every relative link of the README and docs/ names a file
// of the repository (a clone has nothing beside it), every #anchor a
// heading of its document, and every docs/ or dist/ path a command shows
// exists.
func TestDocLinks(t *testing.T) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range docFiles(t) {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, mustAbs(t, doc))
		t.Run(rel, func(t *testing.T) {
			prose, code := splitFenced(string(text))
			for _, m := range mdLink.FindAllStringSubmatch(prose, -1) {
				target := m[1]
				if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				path := mustAbs(t, doc)
				if file != "" {
					path = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
					if r, err := filepath.Rel(root, path); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
						t.Errorf("link %s leads out of the repository", target)
						continue
					}
					if _, err := os.Stat(path); err != nil {
						t.Errorf("link %s: %v", target, err)
						continue
					}
				}
				if anchor != "" && strings.HasSuffix(path, ".md") && !headingAnchors(t, path)[anchor] {
					t.Errorf("link %s: no heading of %s has the anchor #%s", target, filepath.Base(path), anchor)
				}
			}
			missing := map[string]bool{}
			for _, m := range repoPath.FindAllStringSubmatch(prose+"\n"+code, -1) {
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(m[1]))); err != nil && !missing[m[1]] {
					missing[m[1]] = true
					t.Errorf("%s names %s, which the repository lacks", rel, m[1])
				}
			}
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// splitFenced returns a Markdown text's lines outside and inside ``` blocks.
func splitFenced(text string) (prose, code string) {
	var p, c strings.Builder
	in := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if in {
			c.WriteString(line + "\n")
		} else {
			p.WriteString(line + "\n")
		}
	}
	return p.String(), c.String()
}

// headingAnchors returns the anchors GitHub gives a document's headings:
// lower case, punctuation dropped, spaces made '-', repeats numbered.
func headingAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	prose, _ := splitFenced(string(text))
	anchors := map[string]bool{}
	seen := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(prose))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 0x7f:
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			seen[a]++
			a += "-" + strconv.Itoa(n)
		} else {
			seen[a] = 1
		}
		anchors[a] = true
	}
	return anchors
}

// unitFile is the systemd unit the README installs.
var unitFile = filepath.Join(repoRoot, "dist", "systemd", "deviceupdate.service")

// The paths the unit names, and where the tests put them instead.
const (
	unitBinary = "/usr/local/bin/deviceupdate"
	unitState  = "/var/lib/deviceupdate"
	unitConfig = "/etc/deviceupdate/deviceupdate.yaml"
)

// unitValues returns the values of key in the unit's [Service] section, in
// order (a key may repeat).
func unitValues(t *testing.T, text, key string) []string {
	t.Helper()
	var out []string
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "[Service]" && k == key && !strings.HasPrefix(line, "#") {
			out = append(out, v)
		}
	}
	return out
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit, its
// ExecStart pointed at the built binary (verify checks that it exists),
// and fails on any warning about the unit; the cases that break the unit
// on purpose show that such warnings are caught.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is not installed; .ci/run installs it (Debian package systemd)")
		}
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	if n := strings.Count(unit, "ExecStart="+unitBinary+" "); n != 1 {
		t.Fatalf("the unit's ExecStart should run %s, as the README installs it (%d found)", unitBinary, n)
	}
	bin := e2e.Binary(t)
	tests := []struct {
		name     string
		edit     func(string) string
		wantWarn string // "" for a clean unit
	}{
		{"the unit as shipped", func(s string) string { return s }, ""},
		{"an unknown key is caught", func(s string) string {
			return strings.Replace(s, "[Service]\n", "[Service]\nFrobnicate=yes\n", 1)
		}, "Unknown key"},
		{"a missing binary is caught", func(s string) string {
			return strings.Replace(s, bin, "/nonexistent/deviceupdate", 1)
		}, "not executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "deviceupdate.service")
			text := tt.edit(strings.Replace(unit, "ExecStart="+unitBinary+" ", "ExecStart="+bin+" ", 1))
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
			var warnings []string
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, path) || strings.Contains(line, "deviceupdate.service") {
					warnings = append(warnings, line)
				}
			}
			if tt.wantWarn == "" {
				if err != nil || len(warnings) > 0 {
					t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
				}
				if len(out) > 0 {
					t.Logf("systemd-analyze verify said, about other units:\n%s", out)
				}
				return
			}
			if !strings.Contains(strings.Join(warnings, "\n"), tt.wantWarn) {
				t.Fatalf("verify did not warn %q about the unit:\n%s", tt.wantWarn, out)
			}
		})
	}
}

// TestSystemdUnitStartsServer runs the unit's ExecStart command line, with
// its state folder and working directory in a temporary folder and the
// shipped dist/systemd/deviceupdate.yaml as the config file: the server
// starts on those folders. It also holds the unit to what the README says:
// the folders lie under StateDirectory= (the only writable place), and
// TimeoutStopSec outlasts serve's 30 s drain.
func TestSystemdUnitStartsServer(t *testing.T) {
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	one := func(key string) string {
		t.Helper()
		v := unitValues(t, unit, key)
		if len(v) != 1 {
			t.Fatalf("the unit has %d %s= lines, want 1", len(v), key)
		}
		return v[0]
	}
	if state := "/var/lib/" + one("StateDirectory"); state != unitState || one("WorkingDirectory") != unitState {
		t.Fatalf("StateDirectory %s and WorkingDirectory %s, want %s", state, one("WorkingDirectory"), unitState)
	}
	if stop, err := time.ParseDuration(one("TimeoutStopSec")); err != nil || stop <= 30*time.Second {
		t.Errorf("TimeoutStopSec=%s: want more than serve's 30 s drain (%v)", one("TimeoutStopSec"), err)
	}

	argv := strings.Fields(one("ExecStart"))
	if len(argv) < 2 || argv[0] != unitBinary || argv[1] != "serve" {
		t.Fatalf("ExecStart=%s: want %s serve ...", one("ExecStart"), unitBinary)
	}
	state := t.TempDir()
	config, err := filepath.Abs(filepath.Join(repoRoot, "dist", "systemd", "deviceupdate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	folders := map[string]string{}
	for i, a := range argv[2:] {
		switch {
		case a == unitConfig:
			a = config
		case strings.HasPrefix(a, unitState+"/"):
			a = filepath.Join(state, strings.TrimPrefix(a, unitState+"/"))
		case strings.HasPrefix(a, "/"):
			t.Fatalf("ExecStart names %s, outside %s", a, unitState)
		}
		if i > 0 && (argv[2+i-1] == "--data" || argv[2+i-1] == "--certs") {
			folders[argv[2+i-1]] = a
		}
		args = append(args, a)
	}
	if folders["--data"] == "" || folders["--certs"] == "" {
		t.Fatalf("ExecStart=%s: want --data and --certs under %s", one("ExecStart"), unitState)
	}
	// Start's own --https and --http (loopback, free ports) come before
	// these, so the config file's :443 and :80 yield to them.
	srv := e2e.Start(t, e2e.Options{Data: folders["--data"], Certs: folders["--certs"], Dir: state, Args: args})
	if started := srv.FindLog("started"); started == nil || started["data"] != folders["--data"] || started["certs"] != folders["--certs"] {
		t.Fatalf("started with %v, want data %s and certs %s", started, folders["--data"], folders["--certs"])
	}
	if _, err := os.Stat(filepath.Join(folders["--certs"], "admin.token")); err != nil {
		t.Fatalf("the first start made no admin token in the unit's certs folder: %v", err)
	}
	if code := srv.Stop(); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}
