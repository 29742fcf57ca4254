package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate/internal/audit"
)

func writeTrail(t *testing.T, n int) (string, []byte) {
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

func TestOpenRefusesBrokenTrail(t *testing.T) {
	dir, data := writeTrail(t, 2)
	path := dir + "/" + audit.Dir + "/" + audit.FileName
	os.WriteFile(path, bytes.Replace(data, []byte("import"), []byte("imp0rt"), 1), 0o640)
	if _, err := audit.Open(dir, nil); !errors.Is(err, audit.ErrBroken) {
		t.Fatalf("Open of a broken trail = %v, want ErrBroken", err)
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
