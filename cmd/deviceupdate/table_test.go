package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTableAlignsLongCells(t *testing.T) {
	var buf bytes.Buffer
	tb := newTable(&buf, "SETTING", "VALUE", "FROM")
	tb.row("InternalHostName", "a-very-long-host-name-that-passes-forty-chars.contoso.com", "global")
	tb.row("PollIntervalSeconds", "86400", "site\tRedmond")
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	// Each column starts where the widest cell above or below it ends, plus two.
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want 3:\n%s", len(lines), buf.String())
	}
	for _, word := range []string{"FROM", "global", "site Redmond"} {
		found := false
		for _, l := range lines {
			if i := strings.Index(l, word); i >= 0 {
				found = true
				if want := len("PollIntervalSeconds  ") + len("a-very-long-host-name-that-passes-forty-chars.contoso.com  "); i != want {
					t.Errorf("%q starts at column %d, want %d:\n%s", word, i, want, buf.String())
				}
			}
		}
		if !found {
			t.Errorf("%q missing from:\n%s", word, buf.String())
		}
	}
}

func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0 versions"}, {1, "1 version"}, {2, "2 versions"}} {
		if got := plural(tc.n, "version"); got != tc.want {
			t.Errorf("plural(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestTableEscapesControlCharacters(t *testing.T) {
	for _, tc := range []struct{ name, cell, want string }{
		{"plain", "UCPhone/Polycom/CX600", "UCPhone/Polycom/CX600"},
		{"tab and newline", "a\tb\nc", "a b c"},
		{"terminal escape", "evil\x1b[2Jname", `evil\x1b[2Jname`},
		{"C1 control", "x\u009by", `x\x9by`},
		{"invalid UTF-8", "a\xffb", `a\ufffdb`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tb := newTable(&buf, "X")
			tb.row(tc.cell)
			if err := tb.flush(); err != nil {
				t.Fatal(err)
			}
			if got := strings.Split(buf.String(), "\n")[1]; got != tc.want {
				t.Errorf("row(%q) printed %q, want %q", tc.cell, got, tc.want)
			}
		})
	}
}
