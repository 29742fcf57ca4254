package storetest

import (
	"slices"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

// Pager lists the inventory a page at a time (store.Store's DevicesPage).
type Pager interface {
	DevicesPage(after string, limit int, match func(deviceupdate.Device) bool) ([]deviceupdate.Device, string, error)
}

// CheckFilteredPages walks db's inventory in pages of size devices that
// pass match and fails the test unless they are exactly the devices of
// all (the whole inventory, in ID order) that pass it, at least one.
func CheckFilteredPages(t *testing.T, db Pager, all []deviceupdate.Device, size int, match func(deviceupdate.Device) bool) {
	t.Helper()
	var want, got []string
	for _, d := range all {
		if match(d) {
			want = append(want, d.ID)
		}
	}
	for after, pages := "", 0; ; pages++ {
		page, next, err := db.DevicesPage(after, size, match)
		if err != nil || pages > len(all)/size+1 {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, d := range page {
			got = append(got, d.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("pages hold %d devices %v\nthe records %d %v", len(got), got, len(want), want)
	}
}
