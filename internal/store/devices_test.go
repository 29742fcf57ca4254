package store_test

import (
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
)

// TestDeviceCapCountsExistingStore: the count starts from what the store
// holds when it is opened again.
func TestDeviceCapCountsExistingStore(t *testing.T) {
	dir := t.TempDir()
	first, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.PutDevices(storetest.FakeDevices(0, 50, "4.0.7577.4100")); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	db := MustOpen(t, dir)
	var refused []int
	db.LimitDevices(60, func(n int) { refused = append(refused, n) })
	if err := db.PutDevices(storetest.FakeDevices(0, 80, "4.0.7577.4100")); err != nil {
		t.Fatal(err)
	}
	if db.DeviceCount() != 60 || len(refused) != 1 || refused[0] != 20 {
		t.Errorf("count %d, refused %v; want 60, [20]", db.DeviceCount(), refused)
	}
}
