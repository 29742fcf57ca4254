package main_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestDestructiveCommandsAskFirst: `rule remove`, `files clear` and a
// `rule restore` that would leave no approved version say what they would
// do and refuse without --yes when no terminal can be asked; on a
// terminal (a real pseudo-terminal) they ask, and only "y" goes on.
func TestDestructiveCommandsAskFirst(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	sign := testpkg.NewSigner(t, ca, testpki.Options{})
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	const key = "UCPhone/Polycom/CX600/A/ENU/CPE"
	id := deviceupdate.RuleID(deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"})
	for _, args := range [][]string{
		{"import", cabOf(t, "4.0.7577.4100", sign)},
		{"rule", "approve", key}, // no question: nothing is lost
		{"import", cabOf(t, "4.0.7577.4366", sign)},
		{"rule", "reset", key}, // 4.0.7577.4366 is now referenced by no rule
	} {
		if res := e2e.Run(t, "", env, args...); res.Code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.Code, res.Stderr)
		}
	}
	stored := filepath.Join(srv.Data, "DeviceUpdateStore/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE")
	unchanged := func(t *testing.T) {
		t.Helper()
		if res := e2e.Run(t, "", env, "rule", "list"); !strings.Contains(res.Stdout, id) || !strings.Contains(res.Stdout, "4.0.7577.4100") {
			t.Errorf("the rule changed:\n%s", res.Stdout)
		}
		if _, err := os.Stat(stored); err != nil {
			t.Errorf("files were cleared: %v", err)
		}
	}

	questions := []struct {
		args []string
		what string
	}{
		{[]string{"rule", "remove", key}, fmt.Sprintf("remove rule %s (%s, approved 4.0.7577.4100): phones of that model will be offered nothing", id, key)},
		{[]string{"rule", "restore", id}, fmt.Sprintf("restore rule %s (%s, approved 4.0.7577.4100) with no restore version: phones of that model will be offered nothing", id, key)},
		{[]string{"files", "clear"}, "files clear: delete stored versions no rule references"},
	}
	for _, q := range questions {
		t.Run(strings.Join(q.args[:2], " ")+" without a terminal", func(t *testing.T) {
			res := e2e.Run(t, "", env, q.args...)
			want := "deviceupdate: " + q.what + ": confirm with --yes (standard input is not a terminal to ask on)\n"
			if res.Code != 2 || res.Stderr != want {
				t.Errorf("exit %d, stderr %q; want 2 and %q", res.Code, res.Stderr, want)
			}
			unchanged(t)
		})
		t.Run(strings.Join(q.args[:2], " ")+" answered no", func(t *testing.T) {
			stdout, stderr, code := runOnTerminal(t, env, "n\n", q.args...)
			if code != 1 || !strings.Contains(stderr, q.what+"? [y/N] ") || !strings.Contains(stderr, "not confirmed; nothing changed") || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, the question and nothing done", code, stdout, stderr)
			}
			unchanged(t)
		})
	}

	// Answered yes on the terminal, each goes ahead.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"files", "clear"}, "freed"},
		{[]string{"rule", "restore", key}, "approved -, pending -, restore -"},
		{[]string{"rule", "remove", key}, "removed rule " + id},
	} {
		stdout, stderr, code := runOnTerminal(t, env, "y\n", tc.args...)
		if code != 0 || !strings.Contains(stdout, tc.want) {
			t.Errorf("%v answered y: exit %d, stdout %q, stderr %q", tc.args, code, stdout, stderr)
		}
	}
	if _, err := os.Stat(stored); !os.IsNotExist(err) {
		t.Errorf("files clear answered y left %s: %v", stored, err)
	}
}

// cabOf builds a package of one CX600 update of version v.
func cabOf(t *testing.T, v string, sign testpkg.Signer) string {
	t.Helper()
	files := testpkg.Files{}
	testpkg.AddUpdate(t, files, "", v, testpkg.Image(32<<10, byte(len(v))), sign)
	return testpkg.MakeCab(t, files)
}

// runOnTerminal runs the binary with a pseudo-terminal as its standard
// input, on which answer has been typed.
func runOnTerminal(t *testing.T, env []string, answer string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	master, slave := openPTY(t)
	if _, err := master.WriteString(answer); err != nil {
		t.Fatal(err)
	}
	return runWithInput(t, env, slave, args...)
}

// runWithInput runs the binary with the admin environment env and in as
// its standard input; stdout and stderr are captured.
func runWithInput(t *testing.T, env []string, in io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(e2e.Binary(t), args...)
	cmd.Env = e2e.Env(env...)
	cmd.Dir = t.TempDir()
	cmd.Stdin = in
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// openPTY opens a new pseudo-terminal pair (/dev/ptmx and its /dev/pts/N).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock, n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlock the pseudo-terminal: %v", e)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("name the pseudo-terminal: %v", e)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pseudo-terminal's slave: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}
