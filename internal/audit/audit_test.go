package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

func writeTrail(t testing.TB, n int) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	clock := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	tr, err := audit.Open(dir, func() time.Time { clock = clock.Add(time.Second); return clock })
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		_, err := tr.Append(audit.Entry{Actor: "admin@127.0.0.1", Action: "import", Target: "pkg.cab", Result: audit.ResultOK,
			After: json.RawMessage(`{"version":"4.0.7577.` + string(rune('0'+i)) + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tr.Path())
	if err != nil {
		t.Fatal(err)
	}
	return dir, data
}

func TestTrailAppendsAndReopens(t *testing.T) {
	dir, data := writeTrail(t, 3)
	entries, err := audit.ReadAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[2].Seq != 3 || entries[1].Prev != entries[0].Hash || entries[0].Prev != "" {
		t.Fatalf("entries = %+v", entries)
	}
	// Reopening continues the chain.
	tr, err := audit.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := tr.Append(audit.Entry{Actor: "admin", Action: "rule.approve", Target: "abc", Result: audit.ResultOK})
	tr.Close()
	if err != nil || e.Seq != 4 || e.Prev != entries[2].Hash {
		t.Fatalf("append after reopen = %+v, %v", e, err)
	}
	data, _ = os.ReadFile(tr.Path())
	if err := audit.Verify(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	_, data := writeTrail(t, 4)
	lines := strings.SplitAfter(string(data), "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	tests := []struct {
		name     string
		tamper   func() string
		wantLine int
	}{
		{"one byte of content changed", func() string {
			return strings.Replace(string(data), `"version":"4.0.7577.1"`, `"version":"4.0.7577.9"`, 1)
		}, 2},
		{"actor changed", func() string {
			return strings.Join(append(append([]string{}, lines[:2]...), append([]string{strings.Replace(lines[2], "admin@", "mallory@", 1)}, lines[3:]...)...), "")
		}, 3},
		{"entry removed", func() string { return lines[0] + lines[2] + lines[3] }, 2},
		{"entries swapped", func() string { return lines[0] + lines[2] + lines[1] + lines[3] }, 2},
		{"entry truncated", func() string { return lines[0] + lines[1][:20] + "\n" }, 2},
		{"foreign line", func() string { return lines[0] + "hello\n" }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := audit.Verify(strings.NewReader(tt.tamper()))
			var be *audit.BrokenError
			if !errors.As(err, &be) || !errors.Is(err, audit.ErrBroken) {
				t.Fatalf("Verify = %v, want a BrokenError", err)
			}
			if be.Line != tt.wantLine {
				t.Errorf("broken at line %d, want %d (%v)", be.Line, tt.wantLine, err)
			}
		})
	}
	// The removal of the last entry cannot be seen from the file alone, but
	// every other change can: a truncated tail still verifies.
	if err := audit.Verify(strings.NewReader(lines[0] + lines[1])); err != nil {
		t.Errorf("a prefix of the trail does not verify: %v", err)
	}
}

// TestReadPastTheBreak: reading a tampered trail hands the entries before
// the break as verified, names the break, and hands the entries after it
// that still read as entries, unverified.
func TestReadPastTheBreak(t *testing.T) {
	_, data := writeTrail(t, 5)
	lines := strings.SplitAfter(string(data), "\n")
	lines = lines[:len(lines)-1]
	join := func(ls ...string) string { return strings.Join(ls, "") }
	tests := []struct {
		name           string
		trail          string
		wantVerified   string // sequence numbers
		wantLine       int    // 0: intact
		wantUnverified string
	}{
		{"intact", string(data), "1 2 3 4 5", 0, ""},
		{"a byte of a line edited", strings.Replace(string(data), `"version":"4.0.7577.2"`, `"version":"4.0.7577.7"`, 1), "1 2", 3, "3 4 5"},
		{"a middle line deleted", join(lines[0], lines[1], lines[3], lines[4]), "1 2", 3, "4 5"},
		{"a line made unreadable", join(lines[0], lines[1][:30]+"\n", lines[2], lines[3], lines[4]), "1", 2, "3 4 5"},
		{"a foreign line inserted", join(lines[0], lines[1], "hello\n", lines[2], "\n", lines[3], lines[4]), "1 2", 3, "3 4 5"},
		{"a line of 5 MiB inserted", join(lines[0], strings.Repeat("x", 5<<20)+"\n", lines[1], lines[2]), "1", 2, "2 3"},
		{"the newline of the last line removed", join(lines[0], lines[1], strings.TrimSuffix(lines[2], "\n")), "1 2", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var verified, unverified []string
			brk, err := audit.Read(strings.NewReader(tt.trail), func(e audit.Entry, ok bool) {
				if ok {
					verified = append(verified, strconv.FormatUint(e.Seq, 10))
				} else {
					unverified = append(unverified, strconv.FormatUint(e.Seq, 10))
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			line := 0
			if brk != nil {
				line = brk.Line
			}
			if got := strings.Join(verified, " "); got != tt.wantVerified {
				t.Errorf("verified %q, want %q", got, tt.wantVerified)
			}
			if line != tt.wantLine {
				t.Errorf("break at line %d (%v), want %d", line, brk, tt.wantLine)
			}
			if got := strings.Join(unverified, " "); got != tt.wantUnverified {
				t.Errorf("unverified %q, want %q", got, tt.wantUnverified)
			}
		})
	}
}

// TestOpenKeepsBrokenTrail: a broken trail opens, Broken names the break,
// and appends go on from the last entry that reads.
func TestOpenKeepsBrokenTrail(t *testing.T) {
	dir, data := writeTrail(t, 3)
	path := filepath.Join(dir, audit.Dir, audit.FileName)
	lines := strings.SplitAfter(string(data), "\n")
	os.WriteFile(path, []byte(lines[0]+lines[2]), 0o640) // entry 2 deleted
	tr, err := audit.Open(dir, nil)
	if err != nil {
		t.Fatalf("Open of a broken trail: %v", err)
	}
	defer tr.Close()
	if brk := tr.Broken(); brk == nil || brk.Line != 2 || brk.Seq != 3 || !strings.Contains(brk.Reason, "removed or moved") {
		t.Fatalf("Broken() = %v, want line 2", brk)
	}
	e, err := tr.Append(audit.Entry{Actor: "admin", Action: "rule.approve", Target: "abc", Result: audit.ResultOK})
	if err != nil || e.Seq != 4 {
		t.Fatalf("append after the break = %+v, %v", e, err)
	}
	var seen []string
	brk, err := tr.Read(func(e audit.Entry, ok bool) { seen = append(seen, fmt.Sprintf("%d:%v", e.Seq, ok)) })
	if err != nil || brk == nil || brk.Line != 2 {
		t.Fatalf("Read = %v, %v", brk, err)
	}
	if got := strings.Join(seen, " "); got != "1:true 3:false 4:false" {
		t.Errorf("entries read: %s", got)
	}
}

// TestTrailReadNoticesTampering: a running trail notices an entry altered,
// an entry removed from its end (which the file alone cannot show), and a
// trail put back as it was.
func TestTrailReadNoticesTampering(t *testing.T) {
	dir := t.TempDir()
	tr, err := audit.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for range 3 {
		if _, err := tr.Append(audit.Entry{Actor: "admin", Action: "import", Target: "pkg.cab", Result: audit.ResultOK}); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(tr.Path())
	lines := strings.SplitAfter(string(data), "\n")
	tests := []struct {
		name       string
		trail      string
		wantLine   int
		wantReason string
	}{
		{"intact", string(data), 0, ""},
		{"the last entry removed", lines[0] + lines[1], 3, "entries were removed from its end"},
		{"an actor altered", strings.Replace(string(data), `"actor":"admin"`, `"actor":"mallory"`, 1), 1, "altered"},
		{"put back", string(data), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.WriteFile(tr.Path(), []byte(tt.trail), 0o640)
			brk, err := tr.Read(func(audit.Entry, bool) {})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantLine == 0 {
				if brk != nil || tr.Broken() != nil {
					t.Errorf("Read = %v, Broken = %v; want intact", brk, tr.Broken())
				}
				return
			}
			if brk == nil || brk.Line != tt.wantLine || !strings.Contains(brk.Reason, tt.wantReason) || tr.Broken() != brk {
				t.Errorf("Read = %v, Broken = %v; want line %d: %s", brk, tr.Broken(), tt.wantLine, tt.wantReason)
			}
		})
	}
}

func TestOpenDropsTornLastEntry(t *testing.T) {
	dir, data := writeTrail(t, 2)
	path := dir + "/" + audit.Dir + "/" + audit.FileName
	torn := append(bytes.Clone(data), []byte(`{"seq":3,"time":"2026-11-21T08:00:09Z","act`)...)
	os.WriteFile(path, torn, 0o640)
	tr, err := audit.Open(dir, nil)
	if err != nil {
		t.Fatalf("Open after a torn append: %v", err)
	}
	e, err := tr.Append(audit.Entry{Actor: "admin", Action: "import", Result: audit.ResultOK})
	tr.Close()
	if err != nil || e.Seq != 3 {
		t.Fatalf("append after repair = %+v, %v", e, err)
	}
	after, _ := os.ReadFile(path)
	if err := audit.Verify(bytes.NewReader(after)); err != nil {
		t.Fatal(err)
	}
}

// FuzzRead: whatever the trail file holds, Read does not panic, hands the
// verified entries before any unverified one, reports a break whenever it
// hands an unverified entry, and agrees with Verify.
func FuzzRead(f *testing.F) {
	_, data := writeTrail(f, 3)
	f.Add(data)
	f.Add([]byte(strings.Replace(string(data), "import", "imp0rt", 1)))
	f.Add([]byte("\n\n{}\n"))
	f.Fuzz(func(t *testing.T, trail []byte) {
		sawUnverified, verifiedAfter := false, false
		brk, err := audit.Read(bytes.NewReader(trail), func(e audit.Entry, verified bool) {
			if !verified {
				sawUnverified = true
			} else if sawUnverified {
				verifiedAfter = true
			}
		})
		if err != nil {
			t.Fatalf("Read of bytes: %v", err)
		}
		if verifiedAfter {
			t.Error("a verified entry came after an unverified one")
		}
		if sawUnverified && brk == nil {
			t.Error("an unverified entry without a break")
		}
		if verr := audit.Verify(bytes.NewReader(trail)); (verr == nil) != (brk == nil) {
			t.Errorf("Verify = %v, Read's break = %v", verr, brk)
		}
	})
}

// TestAppendOnFullDisk: an append the disk has no room for fails and
// leaves the trail as it was, without the part of the line that fitted;
// once there is room, the chain goes on intact.
func TestAppendOnFullDisk(t *testing.T) {
	dir := e2e.Tmpfs(t, 64<<10)
	tr, err := audit.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.Append(audit.Entry{Actor: "admin", Action: "import", Target: "a.cab", Result: audit.ResultOK}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(tr.Path())
	free := e2e.Fill(t, dir)
	// The trail's last page has room for part of a long entry, not all.
	long := audit.Entry{Actor: "admin", Action: "import", Target: strings.Repeat("x", 8000), Result: audit.ResultOK}
	if _, err := tr.Append(long); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v", err)
	}
	if after, _ := os.ReadFile(tr.Path()); !bytes.Equal(after, before) {
		t.Fatalf("a failed append left %d bytes, the trail had %d", len(after), len(before))
	}
	free()
	if e, err := tr.Append(long); err != nil || e.Seq != 2 {
		t.Fatalf("append with room again = %d, %v", e.Seq, err)
	}
	data, _ := os.ReadFile(tr.Path())
	if err := audit.Verify(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// Entries sealed one after another outside a file trail (as pgstore seals
// them) are a chain Verify accepts, the same as the file trail's; a seal
// after the wrong head is not.
func TestSeal(t *testing.T) {
	at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	seal := func(t *testing.T, head audit.Head, action string) (audit.Entry, []byte) {
		t.Helper()
		e, err := audit.Seal(audit.Entry{Actor: "ops", Action: action, Result: audit.ResultOK, After: json.RawMessage(`{"b":1,"a":2}`)}, head, at)
		if err != nil {
			t.Fatal(err)
		}
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return e, append(line, '\n')
	}
	first, line1 := seal(t, audit.Head{}, "rule.approve")
	if first.Seq != 1 || first.Prev != "" || first.Hash == "" {
		t.Fatalf("first sealed entry = seq %d prev %q hash %q", first.Seq, first.Prev, first.Hash)
	}
	tests := []struct {
		name   string
		head   audit.Head
		broken bool
	}{
		{"after the first", audit.Head{Seq: first.Seq, Hash: first.Hash}, false},
		{"after a wrong hash", audit.Head{Seq: first.Seq, Hash: strings.Repeat("0", 64)}, true},
		{"after a wrong seq", audit.Head{Seq: 5, Hash: first.Hash}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, line2 := seal(t, tt.head, "rule.reset")
			err := audit.Verify(bytes.NewReader(append(append([]byte(nil), line1...), line2...)))
			if broken := errors.Is(err, audit.ErrBroken); broken != tt.broken {
				t.Errorf("Verify = %v, want broken %v", err, tt.broken)
			}
		})
	}
}
