package admin_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
	"github.com/deviceupdate/deviceupdate/internal/audit"
)

// auditPages reads the whole trail page by page and returns the sequence
// numbers, the pages' sizes and the break every page reported.
func auditPages(t *testing.T, s *admin.Service, f deviceupdate.AuditFilter) (seqs []uint64, sizes []int, broken []*deviceupdate.AuditBreak) {
	t.Helper()
	for {
		list, err := s.AuditEntries(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(list.Entries))
		broken = append(broken, list.Broken)
		for _, e := range list.Entries {
			seqs = append(seqs, e.Seq)
		}
		if list.Next == "" {
			return seqs, sizes, broken
		}
		if len(sizes) > 100 {
			t.Fatal("the pages do not end")
		}
		f.Cursor = list.Next
	}
}

// TestAuditEntriesPages: the trail is listed a page at a time by sequence
// number, every entry once; a filter applies within the pages; a broken
// trail is paged too, each page saying where it breaks.
func TestAuditEntriesPages(t *testing.T) {
	s, dir := openService(t)
	ctx := context.Background()
	for i := range 25 {
		if _, err := s.AddTestDevice(ctx, deviceupdate.TestDevice{Name: fmt.Sprintf("lab%02d", i), Serial: fmt.Sprintf("SN%02d", i)}, "admin@10.0.0.1"); err != nil {
			t.Fatal(err)
		}
		if i%5 == 4 {
			if _, err := s.SetConfig(ctx, "global", map[string]string{"MaxLogFileSize": fmt.Sprint(2048000 + i)}, "admin@10.0.0.1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	seqs, sizes, _ := auditPages(t, s, deviceupdate.AuditFilter{Page: deviceupdate.Page{Limit: 10}})
	if len(seqs) != 30 || fmt.Sprint(sizes) != "[10 10 10]" {
		t.Fatalf("%d entries in pages %v, want 30 in [10 10 10]", len(seqs), sizes)
	}
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d: %v", i, seq, seqs)
		}
	}
	seqs, sizes, _ = auditPages(t, s, deviceupdate.AuditFilter{Action: "config.", Page: deviceupdate.Page{Limit: 2}})
	if fmt.Sprint(seqs) != "[6 12 18 24 30]" || fmt.Sprint(sizes) != "[2 2 1]" {
		t.Errorf("config changes %v in pages %v", seqs, sizes)
	}

	// Delete entry 12: from there on, the entries are unverified.
	path := dir + "/" + audit.Dir + "/" + audit.FileName
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(append(lines[:11:11], lines[12:]...), "")), 0o640); err != nil {
		t.Fatal(err)
	}
	seqs, sizes, broken := auditPages(t, s, deviceupdate.AuditFilter{Page: deviceupdate.Page{Limit: 7}})
	if len(seqs) != 29 || fmt.Sprint(sizes) != "[7 7 7 7 1]" {
		t.Errorf("broken trail: %d entries in pages %v", len(seqs), sizes)
	}
	for i, b := range broken {
		if b == nil || b.Seq != 13 {
			t.Errorf("page %d: broken %+v, want the break at entry 13", i+1, b)
		}
	}
}

func TestAuditEntriesBadPage(t *testing.T) {
	s, _ := openService(t)
	for _, cursor := range []string{"%%%", "bm90IGEgbnVtYmVy", strings.Repeat("A", 2000)} {
		if _, err := s.AuditEntries(context.Background(), deviceupdate.AuditFilter{Page: deviceupdate.Page{Cursor: cursor, Limit: 5}}); deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
			t.Errorf("cursor %.20q: %v, want EINVALID", cursor, err)
		}
	}
}
