package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// Cache is a front end's local copy of the update files of a pool's
// store: Open serves a key from a local folder, filling it from the
// shared store at the first Open; the fill is checked against the key
// (Put), so a damaged shared object is never cached, and a local copy
// found damaged on read is dropped, so the next Open fetches it again.
// The folder holds at most a given number of bytes: the least recently
// opened copies go first. Everything else (Put, Stat, Delete, List) is
// the shared store's. A Cache is safe for concurrent use.
type Cache struct {
	remote Store
	local  *DirStore
	max    int64

	mu      sync.Mutex
	entries map[string]*cacheEntry
	total   int64
	clock   uint64 // orders the uses
	fills   map[string]*fill
}

type cacheEntry struct {
	size int64
	used uint64
}

// fill is one key's fetch from the shared store, which concurrent Opens
// of the key wait for.
type fill struct {
	done chan struct{}
	err  error
}

var _ Store = (*Cache)(nil)

// NewCache returns a cache of remote in the folder dir, holding at most
// maxBytes. The copies already in dir count, the oldest first out.
func NewCache(ctx context.Context, remote Store, dir string, maxBytes int64) (*Cache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("file cache: size %d is not positive", maxBytes)
	}
	local, err := Dir(dir)
	if err != nil {
		return nil, fmt.Errorf("file cache: %w", err)
	}
	c := &Cache{remote: remote, local: local, max: maxBytes, entries: map[string]*cacheEntry{}, fills: map[string]*fill{}}
	var found []Info
	for after := ""; ; {
		page, err := local.List(ctx, "", after, MaxListLimit)
		if err != nil {
			return nil, fmt.Errorf("file cache: %w", err)
		}
		found = append(found, page...)
		if len(page) < MaxListLimit {
			break
		}
		after = page[len(page)-1].Key
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Modified.Before(found[j].Modified) })
	for _, in := range found {
		c.clock++
		c.entries[in.Key] = &cacheEntry{size: in.Size, used: c.clock}
		c.total += in.Size
	}
	c.mu.Lock()
	c.evict("")
	c.mu.Unlock()
	return c, nil
}

// Open implements Store: from the local copy, fetched first when
// missing. An object larger than the whole cache is read from the shared
// store (and checked) without a copy.
func (c *Cache) Open(ctx context.Context, key string) (*Reader, Info, error) {
	if err := checkKey(key); err != nil {
		return nil, Info{}, err
	}
	r, info, err := c.openLocal(ctx, key)
	if !errors.Is(err, ErrNotFound) {
		return r, info, err
	}
	if err := c.fetch(ctx, key); errors.Is(err, errTooLarge) {
		return c.remote.Open(ctx, key)
	} else if err != nil {
		return nil, Info{}, err
	}
	r, info, err = c.openLocal(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return c.remote.Open(ctx, key) // evicted at once by other fills
	}
	return r, info, err
}

// errTooLarge: the object does not fit in the cache.
var errTooLarge = errors.New("larger than the cache")

// openLocal opens the local copy of key, if any, and notes the use.
func (c *Cache) openLocal(ctx context.Context, key string) (*Reader, Info, error) {
	c.mu.Lock()
	e := c.entries[key]
	if e != nil {
		c.clock++
		e.used = c.clock
	}
	c.mu.Unlock()
	if e == nil {
		return nil, Info{}, fmt.Errorf("object %s: %w", key, ErrNotFound)
	}
	r, info, err := c.local.Open(ctx, key)
	if errors.Is(err, ErrNotFound) {
		c.forget(key) // removed by hand
	}
	if err != nil {
		return nil, Info{}, err
	}
	r.onCorrupt = func() {
		c.forget(key)
		_ = c.local.Delete(context.WithoutCancel(ctx), key)
	}
	return r, info, nil
}

// fetch copies key from the shared store, once however many Opens ask.
// The copy goes on when the Open that started it leaves (ctx ends), for
// the others and the next.
func (c *Cache) fetch(ctx context.Context, key string) error {
	c.mu.Lock()
	f := c.fills[key]
	if f == nil {
		f = &fill{done: make(chan struct{})}
		c.fills[key] = f
		go func() {
			f.err = c.fill(context.WithoutCancel(ctx), key)
			c.mu.Lock()
			delete(c.fills, key)
			c.mu.Unlock()
			close(f.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Cache) fill(ctx context.Context, key string) error {
	r, info, err := c.remote.Open(ctx, key)
	if err != nil {
		return err
	}
	defer r.Close()
	if info.Size > c.max {
		return errTooLarge
	}
	_, err = c.local.Put(ctx, r, info.Size, key)
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrMismatch) {
		return fmt.Errorf("object %s in the shared store: %w", key, ErrCorrupt)
	}
	if err != nil {
		return fmt.Errorf("file cache: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[key] == nil {
		c.clock++
		c.entries[key] = &cacheEntry{size: info.Size, used: c.clock}
		c.total += info.Size
	}
	c.evict(key)
	return nil
}

// evict deletes the least recently used copies, other than keep's, until
// the rest fit. Callers hold mu. A copy being read stays readable until
// closed (the file is unlinked, not truncated).
func (c *Cache) evict(keep string) {
	if c.total <= c.max {
		return
	}
	keys := make([]string, 0, len(c.entries))
	for k := range c.entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c.entries[keys[i]].used < c.entries[keys[j]].used })
	for _, k := range keys {
		if c.total <= c.max {
			return
		}
		if k == keep {
			continue
		}
		if err := c.local.Delete(context.Background(), k); err != nil {
			continue // tried again at the next fill
		}
		c.total -= c.entries[k].size
		delete(c.entries, k)
	}
}

// forget drops key from the index.
func (c *Cache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		c.total -= e.size
		delete(c.entries, key)
	}
}

// Bytes returns the bytes the local copies take.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Put implements Store: into the shared store only.
func (c *Cache) Put(ctx context.Context, r io.Reader, size int64, wantSHA256 string) (string, error) {
	return c.remote.Put(ctx, r, size, wantSHA256)
}

// Stat implements Store: the shared store's, which is the truth.
func (c *Cache) Stat(ctx context.Context, key string) (Info, error) {
	return c.remote.Stat(ctx, key)
}

// Delete implements Store: the shared object and the local copy. Other
// front ends keep theirs until evicted; the records, not the cache, say
// what is served.
func (c *Cache) Delete(ctx context.Context, key string) error {
	if err := c.remote.Delete(ctx, key); err != nil {
		return err
	}
	c.forget(key)
	return c.local.Delete(ctx, key)
}

// List implements Store: the shared store's.
func (c *Cache) List(ctx context.Context, prefix, after string, limit int) ([]Info, error) {
	return c.remote.List(ctx, prefix, after, limit)
}

// RemoveStale deletes what crashed fills left in the local folder.
func (c *Cache) RemoveStale(ctx context.Context, age time.Duration, now time.Time) (int, error) {
	return c.local.RemoveStale(ctx, age, now)
}
