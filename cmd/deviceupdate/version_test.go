package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/client"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

// TestVersionNamesTheBuild: the built binary's --version names the
// commit of the repository's HEAD (12 digits, "-dirty" when the go command
// saw changes, and the commit's time), and the admin API's /server says
// the same. Where the go command stamps no VCS information (no git, or a
// git worktree, whose .git is a file it does not follow) it says "devel".
func TestVersionNamesTheBuild(t *testing.T) {
	bin := e2e.Binary(t)
	res := e2e.Run(t, "", nil, "--version")
	version, ok := strings.CutPrefix(strings.TrimSuffix(res.Stdout, "\n"), "deviceupdate version ")
	if res.Code != 0 || !ok {
		t.Fatalf("--version: exit %d, %q %q", res.Code, res.Stdout, res.Stderr)
	}

	want := regexp.QuoteMeta("devel")
	if head, top := gitOut(t, "rev-parse", "HEAD"), gitOut(t, "rev-parse", "--show-toplevel"); head != "" && isDir(filepath.Join(top, ".git")) {
		dirty := ""
		if stamped, err := exec.Command("go", "version", "-m", bin).Output(); err != nil {
			t.Fatalf("go version -m: %v", err)
		} else if strings.Contains(string(stamped), "vcs.modified=true") {
			dirty = "-dirty"
		}
		at := gitOut(t, "show", "-s", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ", "HEAD")
		want = regexp.QuoteMeta(head[:12]+dirty+" ("+at+")") + "$"
	}
	if !regexp.MustCompile(want).MatchString(version) {
		t.Errorf("--version says %q, want %s", version, want)
	}

	srv := e2e.Start(t, e2e.Options{})
	c, err := client.New(client.Options{Server: srv.URL(), Certs: srv.Certs, Token: srv.Token()})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.ServerInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != version {
		t.Errorf("/server says version %q, --version %q", info.Version, version)
	}
}

// gitOut runs git in the test's folder with the UTC time zone and returns
// its output, or "" when git fails (no git, or not a repository).
func gitOut(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
