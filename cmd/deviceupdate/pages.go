package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/client"
)

// addLimitFlag gives a list command --limit: print the first N only.
func addLimitFlag(f *pflag.FlagSet, what string) *int {
	return f.Int("limit", 0, "print the first N "+what+" only (default: all)")
}

// checkLimit refuses a negative --limit.
func checkLimit(n int) error {
	if n < 0 {
		return usageError{fmt.Errorf("--limit %d: want a positive number, or leave it out for all", n)}
	}
	return nil
}

// listPages fetches a list of the admin API (SPEC §7: devices, audit
// entries, device logs) a page at a time, at most max entries in all (0:
// every one), and hands each page to page as it arrives, which returns
// the page's number of entries and next cursor. Memory holds one page.
func listPages[L any](ctx context.Context, c *client.Client, path string, q url.Values, max int, page func(l *L) (n int, next string, err error)) error {
	left := max
	for {
		limit := deviceupdate.MaxPageLimit
		if max > 0 {
			limit = min(limit, left)
		}
		q.Set("limit", strconv.Itoa(limit))
		var l L
		if err := c.Do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &l); err != nil {
			return err
		}
		n, next, err := page(&l)
		if err != nil {
			return err
		}
		left -= n
		if next == "" || max > 0 && left <= 0 {
			return nil
		}
		q.Set("cursor", next)
	}
}

// printList prints a list of the admin API fetched page by page: one JSON
// array with asJSON, else a table under headers, a row per item as row
// gives it. items takes a page apart: its entries and next cursor.
func printList[L, T any](ctx context.Context, c *client.Client, w io.Writer, path string, q url.Values, max int, asJSON bool,
	items func(*L) ([]T, string), headers []string, row func(T) []string) error {
	arr := &jsonArray{w: w}
	var tbl *table
	if !asJSON {
		tbl = newTable(w, headers...)
	}
	err := listPages(ctx, c, path, q, max, func(l *L) (int, string, error) {
		list, next := items(l)
		for _, it := range list {
			if !asJSON {
				tbl.row(row(it)...)
			} else if err := arr.add(it); err != nil {
				return 0, "", err
			}
		}
		if asJSON {
			return len(list), next, nil
		}
		return len(list), next, tbl.flush() // a page's rows line up; the next page's may differ
	})
	if err != nil || !asJSON {
		return err
	}
	return arr.end("\n")
}

// jsonArray writes one JSON array an element at a time, so that a list
// fetched page by page is printed as it comes and is still one document,
// compact as writeJSON writes it. Nothing is written before the first
// element or the end, so a list that fails at once prints nothing.
type jsonArray struct {
	w      io.Writer
	before string // what the document holds before the array
	n      int
}

// add writes one element.
func (a *jsonArray) add(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	sep := ","
	if a.n == 0 {
		sep = a.before + "["
	}
	a.n++
	_, err = io.WriteString(a.w, sep+string(b))
	return err
}

// end closes the array and writes what follows it.
func (a *jsonArray) end(after string) error {
	open := ""
	if a.n == 0 {
		open = a.before + "["
	}
	_, err := io.WriteString(a.w, open+"]"+after)
	return err
}
