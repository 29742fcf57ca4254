package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
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

// row adds one row; a cell holding a tab or newline is flattened so that
// it cannot break the columns.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if strings.ContainsAny(c, "\t\n\r") {
			cells[i] = strings.Join(strings.Fields(c), " ")
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
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
