package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"
)

// table prints aligned columns: each column is as wide as its widest cell,
// so a long value (a 40-character host name, an actor with its address)
// pushes the next column along rather than running into it.
type table struct{ tw *tabwriter.Writer }

// newTable starts a table on w with a header row.
func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(headers...)
	return t
}

// row adds one row. Cells often hold what a phone or a package named
// (a device ID, a file name), so a cell holding a tab or newline is
// flattened, which keeps the columns, and any other control character is
// shown escaped (\x1b), so that no escape sequence reaches the terminal.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = printable(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// printable returns s with whitespace runs made one space where they hold
// a tab or line break, and other control characters escaped.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\t' || r == '\n' || r == '\r' || r == ' ' }), " ")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteString("\\ufffd")
		case unicode.IsControl(r):
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// flush writes the table out; call it once, after the last row.
func (t *table) flush() error { return t.tw.Flush() }

// plural is "1 version", "2 versions", "0 versions".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// writeJSON prints v as one compact JSON document and a newline: every
// --json output goes through it.
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
