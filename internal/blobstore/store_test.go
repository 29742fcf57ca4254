package blobstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/blobstore"
)

// TestStore is the behaviour every backend keeps, run against each.
func TestStore(t *testing.T) {
	ctx := context.Background()
	data := content(1, 300_000)
	key := keyOf(data)
	cases := []struct {
		name string
		run  func(t *testing.T, b backend, s blobstore.Store)
	}{
		{"put and open round trip", func(t *testing.T, b backend, s blobstore.Store) {
			got, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), key)
			if err != nil || got != key {
				t.Fatalf("Put = %q, %v; want %s", got, err, key)
			}
			r, info, err := s.Open(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if info.Key != key || info.Size != int64(len(data)) || info.Modified.IsZero() {
				t.Errorf("Open info = %+v", info)
			}
			read, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(read, data) {
				t.Fatalf("read %d bytes, %v; want the %d put", len(read), err, len(data))
			}
			if st, err := s.Stat(ctx, key); err != nil || st.Size != int64(len(data)) {
				t.Errorf("Stat = %+v, %v", st, err)
			}
		}},
		{"put of unknown hash and size returns the key", func(t *testing.T, b backend, s blobstore.Store) {
			got, err := s.Put(ctx, io.MultiReader(bytes.NewReader(data)), -1, "")
			if err != nil || got != key {
				t.Fatalf("Put = %q, %v; want %s", got, err, key)
			}
			if read, err := readAll(t, s, key); err != nil || !bytes.Equal(read, data) {
				t.Fatalf("read %d bytes, %v", len(read), err)
			}
		}},
		{"empty object", func(t *testing.T, b backend, s blobstore.Store) {
			k := mustPut(t, s, nil)
			if read, err := readAll(t, s, k); err != nil || len(read) != 0 {
				t.Fatalf("read %d bytes, %v", len(read), err)
			}
		}},
		{"put twice is one object", func(t *testing.T, b backend, s blobstore.Store) {
			mustPut(t, s, data)
			// Known and stored: the second Put reads nothing.
			if got, err := s.Put(ctx, unreadable{}, int64(len(data)), key); err != nil || got != key {
				t.Fatalf("second Put = %q, %v", got, err)
			}
			// Unknown hash: read, found stored, dropped.
			if got, err := s.Put(ctx, bytes.NewReader(data), -1, ""); err != nil || got != key {
				t.Fatalf("third Put = %q, %v", got, err)
			}
			if keys, _ := listAll(t, s, "", 10); !slices.Equal(keys, []string{key}) {
				t.Errorf("List = %v, want the one key", keys)
			}
			if left := b.leftovers(t, s); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		}},
		{"wrong hash refused and nothing visible", func(t *testing.T, b backend, s blobstore.Store) {
			other := keyOf([]byte("something else"))
			_, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), other)
			if !errors.Is(err, blobstore.ErrMismatch) {
				t.Fatalf("Put = %v, want ErrMismatch", err)
			}
			assertEmpty(t, b, s, other, key)
		}},
		{"short content refused and nothing visible", func(t *testing.T, b backend, s blobstore.Store) {
			_, err := s.Put(ctx, bytes.NewReader(data[:1000]), int64(len(data)), key)
			if !errors.Is(err, blobstore.ErrMismatch) {
				t.Fatalf("Put = %v, want ErrMismatch", err)
			}
			assertEmpty(t, b, s, key)
		}},
		{"longer content refused and nothing visible", func(t *testing.T, b backend, s blobstore.Store) {
			long := append(slices.Clone(data), 'x')
			_, err := s.Put(ctx, bytes.NewReader(long), int64(len(data)), key)
			if !errors.Is(err, blobstore.ErrMismatch) {
				t.Fatalf("Put = %v, want ErrMismatch", err)
			}
			assertEmpty(t, b, s, key, keyOf(long))
		}},
		{"upload cut off leaves nothing", func(t *testing.T, b backend, s blobstore.Store) {
			_, err := s.Put(ctx, &failingReader{data: data[:70_000]}, int64(len(data)), key)
			if !errors.Is(err, errCutOff) {
				t.Fatalf("Put = %v, want the reader's error", err)
			}
			assertEmpty(t, b, s, key)
		}},
		{"cancelled put leaves nothing", func(t *testing.T, b backend, s blobstore.Store) {
			ctx, cancel := context.WithCancel(ctx)
			r := &cancellingReader{data: data, cancel: cancel}
			if _, err := s.Put(ctx, r, int64(len(data)), key); !errors.Is(err, context.Canceled) {
				t.Fatalf("Put = %v, want context.Canceled", err)
			}
			assertEmpty(t, b, s, key)
		}},
		{"truncated object detected on read", func(t *testing.T, b backend, s blobstore.Store) {
			mustPut(t, s, data)
			b.damage(t, s, key, data[:len(data)-1])
			assertCorrupt(t, s, key)
		}},
		{"flipped byte detected on read", func(t *testing.T, b backend, s blobstore.Store) {
			mustPut(t, s, data)
			bad := slices.Clone(data)
			bad[len(bad)/2] ^= 0x01
			b.damage(t, s, key, bad)
			assertCorrupt(t, s, key)
		}},
		{"put again repairs a truncated object", func(t *testing.T, b backend, s blobstore.Store) {
			mustPut(t, s, data)
			b.damage(t, s, key, data[:100])
			mustPut(t, s, data)
			if got, err := readAll(t, s, key); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("after the second Put: %d bytes, %v", len(got), err)
			}
		}},
		{"concurrent puts of one file are one object", func(t *testing.T, b backend, s blobstore.Store) {
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for i := range 8 {
				wg.Go(func() {
					want := key
					if i%2 == 1 {
						want = ""
					}
					_, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), want)
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if keys, _ := listAll(t, s, "", 10); !slices.Equal(keys, []string{key}) {
				t.Errorf("List = %v, want the one key", keys)
			}
			if left := b.leftovers(t, s); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if got, err := readAll(t, s, key); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read: %d bytes, %v", len(got), err)
			}
		}},
		{"served over HTTP, a damaged object never arrives whole", func(t *testing.T, b backend, s blobstore.Store) {
			mustPut(t, s, data)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				r, info, err := s.Open(req.Context(), strings.TrimPrefix(req.URL.Path, "/"))
				if err != nil {
					http.Error(w, err.Error(), http.StatusNotFound)
					return
				}
				defer r.Close()
				http.ServeContent(w, req, "file.bin", info.Modified, r)
			}))
			defer srv.Close()
			get := func(rangeHeader string) ([]byte, error) {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/"+key, nil)
				if rangeHeader != "" {
					req.Header.Set("Range", rangeHeader)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					return nil, err
				}
				defer resp.Body.Close()
				return io.ReadAll(resp.Body)
			}
			if got, err := get(""); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("good object: %d bytes, %v", len(got), err)
			}
			bad := slices.Clone(data)
			bad[len(bad)-1] ^= 0x01 // in the last bytes, those held back
			b.damage(t, s, key, bad)
			if got, err := get(""); err == nil {
				t.Errorf("damaged object: %d bytes arrived whole", len(got))
			}
			if got, err := get("bytes=1000-1999"); err == nil && len(got) > 0 {
				t.Errorf("damaged object: a range of %d bytes arrived", len(got))
			}
		}},
		{"range of a good object", func(t *testing.T, b backend, s blobstore.Store) {
			mustPut(t, s, data)
			r, _, err := s.Open(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.Seek(-1000, io.SeekEnd); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data[len(data)-1000:]) {
				t.Fatalf("last 1000 bytes: %d bytes, %v", len(got), err)
			}
			if _, err := r.Seek(5, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got = make([]byte, 10)
			if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, data[5:15]) {
				t.Fatalf("bytes 5-14: %v, %v", got, err)
			}
		}},
		{"missing key", func(t *testing.T, b backend, s blobstore.Store) {
			if _, _, err := s.Open(ctx, key); !errors.Is(err, blobstore.ErrNotFound) {
				t.Errorf("Open = %v, want ErrNotFound", err)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, blobstore.ErrNotFound) {
				t.Errorf("Stat = %v, want ErrNotFound", err)
			}
			if err := s.Delete(ctx, key); err != nil {
				t.Errorf("Delete of a missing key = %v, want nil", err)
			}
		}},
		{"delete", func(t *testing.T, b backend, s blobstore.Store) {
			mustPut(t, s, data)
			if err := s.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			assertEmpty(t, b, s, key)
		}},
		{"hostile keys", func(t *testing.T, b backend, s blobstore.Store) {
			mustPut(t, s, data)
			for _, bad := range hostileKeys(key) {
				if _, _, err := s.Open(ctx, bad); !errors.Is(err, blobstore.ErrInvalidKey) {
					t.Errorf("Open(%q) = %v, want ErrInvalidKey", bad, err)
				}
				if _, err := s.Stat(ctx, bad); !errors.Is(err, blobstore.ErrInvalidKey) {
					t.Errorf("Stat(%q) = %v, want ErrInvalidKey", bad, err)
				}
				if err := s.Delete(ctx, bad); !errors.Is(err, blobstore.ErrInvalidKey) {
					t.Errorf("Delete(%q) = %v, want ErrInvalidKey", bad, err)
				}
				if bad != "" {
					if _, err := s.Put(ctx, unreadable{}, 1, bad); !errors.Is(err, blobstore.ErrInvalidKey) {
						t.Errorf("Put(%q) = %v, want ErrInvalidKey", bad, err)
					}
					if _, err := s.List(ctx, "", bad, 1); !errors.Is(err, blobstore.ErrInvalidKey) {
						t.Errorf("List after %q = %v, want ErrInvalidKey", bad, err)
					}
				}
				if bad == "" || bad == key[:63] {
					continue // prefixes of a key
				}
				if _, err := s.List(ctx, bad, "", 1); !errors.Is(err, blobstore.ErrInvalidKey) {
					t.Errorf("List prefix %q = %v, want ErrInvalidKey", bad, err)
				}
			}
			if read, err := readAll(t, s, key); err != nil || !bytes.Equal(read, data) {
				t.Errorf("the stored object after the hostile keys: %d bytes, %v", len(read), err)
			}
		}},
		{"list pagination", func(t *testing.T, b backend, s blobstore.Store) {
			var keys []string
			for i := range 23 {
				keys = append(keys, mustPut(t, s, content(byte(i), 100+i)))
			}
			want := sortedKeys(keys)
			got, pages := listAll(t, s, "", 5)
			if !slices.Equal(got, want) || pages != 5 {
				t.Errorf("pages of 5: %d pages, keys %v; want 5 pages, %v", pages, got, want)
			}
			// A prefix: one hex digit.
			p := want[0][:1]
			var withP []string
			for _, k := range want {
				if strings.HasPrefix(k, p) {
					withP = append(withP, k)
				}
			}
			if got, _ := listAll(t, s, p, 2); !slices.Equal(got, withP) {
				t.Errorf("prefix %s: %v, want %v", p, got, withP)
			}
			// A page's size: the limit, default and bound.
			if page, err := s.List(ctx, "", "", 0); err != nil || len(page) != len(want) {
				t.Errorf("limit 0: %d keys, %v; want all %d", len(page), err, len(want))
			}
			if page, err := s.List(ctx, "", want[20], 10); err != nil || len(page) != 2 || page[0].Key != want[21] || page[0].Size <= 0 {
				t.Errorf("after the 21st: %+v, %v; want the last two", page, err)
			}
			if _, err := s.List(ctx, "", "", -1); err == nil {
				t.Error("a negative limit was accepted")
			}
		}},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b, b.open(t)) })
			}
		})
	}
}

// cancellingReader cancels its Put's context after its first bytes, as
// a caller leaving mid-upload.
type cancellingReader struct {
	data   []byte
	cancel func()
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n := copy(p, c.data[:min(len(c.data), 1000)])
	c.data = c.data[n:]
	c.cancel()
	return n, nil
}

// hostileKeys are names no store may take as a key: paths, other
// encodings, other lengths, valid-looking keys with a twist.
func hostileKeys(key string) []string {
	return []string{
		"",
		"../../../../etc/passwd",
		"../" + key[3:],
		key[:2] + "/" + key[3:],
		strings.ToUpper(key),
		key[:63],
		key + "0",
		key[:63] + "g",
		key[:63] + "\x00",
		"/" + key[1:],
		".incoming",
		strings.Repeat("a", 5000),
	}
}

// assertEmpty checks that none of keys is visible and nothing is left
// behind.
func assertEmpty(t *testing.T, b backend, s blobstore.Store, keys ...string) {
	t.Helper()
	ctx := context.Background()
	for _, k := range keys {
		if _, err := s.Stat(ctx, k); !errors.Is(err, blobstore.ErrNotFound) {
			t.Errorf("Stat(%s) = %v, want ErrNotFound", k, err)
		}
		if _, _, err := s.Open(ctx, k); !errors.Is(err, blobstore.ErrNotFound) {
			t.Errorf("Open(%s) = %v, want ErrNotFound", k, err)
		}
	}
	if page, err := s.List(ctx, "", "", 0); err != nil || len(page) != 0 {
		t.Errorf("List = %v, %v; want nothing", page, err)
	}
	if left := b.leftovers(t, s); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// assertCorrupt checks that every way of reading the damaged key ends in
// ErrCorrupt: a whole read at its end, a range before its first byte.
func assertCorrupt(t *testing.T, s blobstore.Store, key string) {
	t.Helper()
	ctx := context.Background()
	if _, err := readAll(t, s, key); !errors.Is(err, blobstore.ErrCorrupt) {
		t.Errorf("whole read: %v, want ErrCorrupt", err)
	}
	r, _, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Seek(100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if n, err := r.Read(buf); n != 0 || !errors.Is(err, blobstore.ErrCorrupt) {
		t.Errorf("range read: %d bytes, %v; want none and ErrCorrupt", n, err)
	}
	if n, err := r.Read(buf); n != 0 || !errors.Is(err, blobstore.ErrCorrupt) {
		t.Errorf("read after the damage was found: %d bytes, %v; want none and ErrCorrupt", n, err)
	}
	// Read up to the size and no further, as http.ServeContent does: the
	// last bytes are held back.
	r3, info, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	if n, err := io.CopyN(io.Discard, r3, info.Size); !errors.Is(err, blobstore.ErrCorrupt) || n == info.Size {
		t.Errorf("read of the size: %d of %d bytes, %v; want fewer and ErrCorrupt", n, info.Size, err)
	}
	r2, _, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, err := io.ReadFull(r2, buf); err != nil {
		t.Fatal(err)
	}
	if err := r2.Verify(); !errors.Is(err, blobstore.ErrCorrupt) {
		t.Errorf("Verify after a partial read: %v, want ErrCorrupt", err)
	}
}
