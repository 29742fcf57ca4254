package blobstore_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/blobstore"
)

// countingStore counts the Opens that reach the shared store.
type countingStore struct {
	blobstore.Store
	opens atomic.Int64
}

func (c *countingStore) Open(ctx context.Context, key string) (*blobstore.Reader, blobstore.Info, error) {
	c.opens.Add(1)
	return c.Store.Open(ctx, key)
}

// newCache returns a cache of size max in front of a fresh shared store
// of the backend b, and its local folder.
func newCache(t *testing.T, b backend, max int64) (*blobstore.Cache, blobstore.Store, *countingStore, string) {
	t.Helper()
	shared := b.open(t)
	counted := &countingStore{Store: shared}
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := blobstore.NewCache(context.Background(), counted, dir, max)
	if err != nil {
		t.Fatal(err)
	}
	return c, shared, counted, dir
}

// TestCache: the local cache of update files, in front of each backend.
func TestCache(t *testing.T) {
	ctx := context.Background()
	files := [][]byte{content(1, 40_000), content(2, 40_000), content(3, 40_000), content(4, 40_000)}
	cases := []struct {
		name string
		run  func(t *testing.T, b backend)
	}{
		{"filled at the first open, then read locally", func(t *testing.T, b backend) {
			c, shared, counted, _ := newCache(t, b, 1<<20)
			key := mustPut(t, shared, files[0])
			for range 3 {
				if got, err := readAll(t, c, key); err != nil || !bytes.Equal(got, files[0]) {
					t.Fatalf("read %d bytes, %v", len(got), err)
				}
			}
			if n := counted.opens.Load(); n != 1 {
				t.Errorf("%d opens reached the shared store, want 1", n)
			}
			if c.Bytes() != int64(len(files[0])) {
				t.Errorf("cache holds %d bytes, want %d", c.Bytes(), len(files[0]))
			}
		}},
		{"damaged shared object never cached", func(t *testing.T, b backend) {
			c, shared, _, dir := newCache(t, b, 1<<20)
			key := mustPut(t, shared, files[0])
			b.damage(t, shared, key, files[1])
			if _, _, err := c.Open(ctx, key); !errors.Is(err, blobstore.ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			if c.Bytes() != 0 {
				t.Errorf("cache holds %d bytes after a damaged fill", c.Bytes())
			}
			local, _ := blobstore.Dir(dir)
			assertEmpty(t, backend{leftovers: dirLeftovers}, local, key)
		}},
		{"damaged local copy dropped and fetched again", func(t *testing.T, b backend) {
			c, shared, counted, dir := newCache(t, b, 1<<20)
			key := mustPut(t, shared, files[0])
			if _, err := readAll(t, c, key); err != nil {
				t.Fatal(err)
			}
			local, _ := blobstore.Dir(dir)
			bad := slices.Clone(files[0])
			bad[7] ^= 0x80
			damageDir(t, local, key, bad)
			if _, err := readAll(t, c, key); !errors.Is(err, blobstore.ErrCorrupt) {
				t.Fatalf("read of the damaged copy: %v, want ErrCorrupt", err)
			}
			if got, err := readAll(t, c, key); err != nil || !bytes.Equal(got, files[0]) {
				t.Fatalf("next read: %d bytes, %v; want the good file", len(got), err)
			}
			if n := counted.opens.Load(); n != 2 {
				t.Errorf("%d opens reached the shared store, want 2", n)
			}
		}},
		{"bounded: least recently opened evicted", func(t *testing.T, b backend) {
			c, shared, _, dir := newCache(t, b, 100_000) // two files fit
			var keys []string
			for _, f := range files[:3] {
				keys = append(keys, mustPut(t, shared, f))
			}
			for _, i := range []int{0, 1, 0, 2} { // 1 is the least recent when 2 comes
				if _, err := readAll(t, c, keys[i]); err != nil {
					t.Fatal(err)
				}
			}
			if c.Bytes() > 100_000 {
				t.Errorf("cache holds %d bytes, more than its 100000", c.Bytes())
			}
			local, _ := blobstore.Dir(dir)
			got, _ := listAll(t, local, "", 10)
			if want := sortedKeys([]string{keys[0], keys[2]}); !slices.Equal(got, want) {
				t.Errorf("cached %v, want %v", got, want)
			}
		}},
		{"larger than the cache: read from the shared store", func(t *testing.T, b backend) {
			c, shared, _, _ := newCache(t, b, 10_000)
			key := mustPut(t, shared, files[0])
			if got, err := readAll(t, c, key); err != nil || !bytes.Equal(got, files[0]) {
				t.Fatalf("read %d bytes, %v", len(got), err)
			}
			if c.Bytes() != 0 {
				t.Errorf("cache holds %d bytes", c.Bytes())
			}
		}},
		{"concurrent opens fill once", func(t *testing.T, b backend) {
			c, shared, counted, _ := newCache(t, b, 1<<20)
			key := mustPut(t, shared, files[0])
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if got, err := readAll(t, c, key); err != nil || !bytes.Equal(got, files[0]) {
						t.Errorf("read %d bytes, %v", len(got), err)
					}
				})
			}
			wg.Wait()
			if n := counted.opens.Load(); n != 1 {
				t.Errorf("%d opens reached the shared store, want 1", n)
			}
		}},
		{"missing key", func(t *testing.T, b backend) {
			c, _, _, _ := newCache(t, b, 1<<20)
			if _, _, err := c.Open(ctx, keyOf([]byte("none"))); !errors.Is(err, blobstore.ErrNotFound) {
				t.Errorf("Open = %v, want ErrNotFound", err)
			}
			if _, _, err := c.Open(ctx, "../x"); !errors.Is(err, blobstore.ErrInvalidKey) {
				t.Errorf("Open of a hostile key = %v, want ErrInvalidKey", err)
			}
		}},
		{"delete drops the copy", func(t *testing.T, b backend) {
			c, shared, _, _ := newCache(t, b, 1<<20)
			key := mustPut(t, shared, files[0])
			if _, err := readAll(t, c, key); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Open(ctx, key); !errors.Is(err, blobstore.ErrNotFound) {
				t.Errorf("Open after Delete = %v, want ErrNotFound", err)
			}
			if c.Bytes() != 0 {
				t.Errorf("cache holds %d bytes", c.Bytes())
			}
		}},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, b) })
			}
		})
	}
}

// TestCacheRestart: the copies a cache left in its folder are counted
// (and bounded) by the next cache there.
func TestCacheRestart(t *testing.T) {
	shared := openDir(t)
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := blobstore.NewCache(context.Background(), shared, dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range 3 {
		k := mustPut(t, shared, content(byte(i), 30_000))
		keys = append(keys, k)
		if _, err := readAll(t, c, k); err != nil {
			t.Fatal(err)
		}
	}
	again, err := blobstore.NewCache(context.Background(), shared, dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if again.Bytes() != 90_000 {
		t.Errorf("the next cache counts %d bytes, want 90000", again.Bytes())
	}
	smaller, err := blobstore.NewCache(context.Background(), shared, dir, 50_000)
	if err != nil {
		t.Fatal(err)
	}
	if smaller.Bytes() > 50_000 {
		t.Errorf("a smaller cache kept %d bytes", smaller.Bytes())
	}
	if _, err := blobstore.NewCache(context.Background(), shared, dir, 0); err == nil {
		t.Error("a cache of size 0 was accepted")
	}
	for _, k := range keys { // every file still readable through it
		if _, err := readAll(t, smaller, k); err != nil {
			t.Error(err)
		}
	}
}
