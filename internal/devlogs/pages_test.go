package devlogs_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/devlogs"
)

// TestLogsPages: the logs are listed a page at a time, newest first then
// by path, every log once, as the whole list orders them; a filter
// applies within the pages; a cursor the server did not give is refused.
// On both backends.
func TestLogsPages(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			testLogsPages(t, b.open(t)(t, devlogs.Options{Settings: (&settings{m: map[string]string{}}).get}))
		})
	}
}

func testLogsPages(t *testing.T, s *devlogs.Store) {
	ctx := context.Background()
	for i := range 25 {
		u := upload(fmt.Sprintf("log%02d.txt", i), "CELog")
		if i%2 == 1 {
			u.MAC = "00:04:f2:00:00:02"
		}
		if _, err := s.Upload(ctx, u, strings.NewReader("log"), -1); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Logs(ctx, deviceupdate.LogFilter{})
	if err != nil || len(all.Logs) != 25 || all.Next != "" {
		t.Fatalf("all logs: %v %v", all, err)
	}
	tests := []struct {
		name   string
		filter deviceupdate.LogFilter
		want   int
		sizes  string
	}{
		{"pages of 10", deviceupdate.LogFilter{Page: deviceupdate.Page{Limit: 10}}, 25, "[10 10 5]"},
		{"pages of 25", deviceupdate.LogFilter{Page: deviceupdate.Page{Limit: 25}}, 25, "[25]"},
		{"one device, pages of 4", deviceupdate.LogFilter{Device: "00-04-F2-00-00-02", Page: deviceupdate.Page{Limit: 4}}, 12, "[4 4 4]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []deviceupdate.DeviceLog
			var sizes []int
			f := tt.filter
			for {
				page, err := s.Logs(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				got, sizes = append(got, page.Logs...), append(sizes, len(page.Logs))
				if page.Next == "" || len(sizes) > 30 {
					break
				}
				f.Cursor = page.Next
			}
			if len(got) != tt.want || fmt.Sprint(sizes) != tt.sizes {
				t.Fatalf("%d logs in pages %v, want %d in %s", len(got), sizes, tt.want, tt.sizes)
			}
			var want []deviceupdate.DeviceLog
			for _, l := range all.Logs {
				if tt.filter.Device == "" || l.Device == tt.filter.Device {
					want = append(want, l)
				}
			}
			for i := range got {
				if got[i].Path() != want[i].Path() {
					t.Fatalf("log %d is %s, want %s (the whole list's order)", i, got[i].Path(), want[i].Path())
				}
			}
		})
	}
	for _, cursor := range []string{"not base64!", deviceupdate.EncodeCursor("yesterday CELog/x/y"), deviceupdate.EncodeCursor("2026-01-01T00:00:00Z onlyapath")} {
		if _, err := s.Logs(ctx, deviceupdate.LogFilter{Page: deviceupdate.Page{Cursor: cursor, Limit: 5}}); deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
			t.Errorf("cursor %q: %v, want EINVALID", cursor, err)
		}
	}
}
