package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// Offsets in a bbolt file (format 2): a meta page's meta starts after the
// 16-byte page header; its fields are in the machine's byte order.
const (
	metaAt        = 16
	fVersion      = 4
	fPageSize     = 8
	fRoot         = 16
	fFreelist     = 32
	fPgid         = 40
	fTxid         = 48
	fChecksum     = 56
	testPageBytes = 4096
)

var ne = binary.NativeEndian

// realStore returns the bytes of a store written through the store
// package: records in every bucket, a few thousand devices over many
// pages and transactions, some pages freed.
func realStore(t testing.TB) []byte {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for batch := range 5 {
		var devices []deviceupdate.Device
		for i := range 400 {
			devices = append(devices, deviceupdate.Device{ID: fmt.Sprintf("00-04-F2-%02X-%02X-%02X", batch, i/256, i%256), Model: "CX600", LastSeen: at, Polls: 1})
		}
		if err := db.PutDevices(devices); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.PruneDevices(at.Add(time.Hour), false); err != nil {
		t.Fatal(err)
	}
	if err := db.PutDevices([]deviceupdate.Device{{ID: "00-04-F2-AA-BB-CC", Model: "CX600", LastSeen: at, Polls: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// meta returns the meta of page 0 or 1 of file b.
func meta(b []byte, page int) []byte {
	off := page*testPageBytes + metaAt
	return b[off : off+64]
}

// resum recomputes a meta's checksum, as bbolt writes it.
func resum(m []byte) {
	h := fnv.New64a()
	h.Write(m[:fChecksum])
	ne.PutUint64(m[fChecksum:], h.Sum64())
}

// set64 and set32 set a field of the metas of pages (both when none is
// named), recompute their checksums and return b.
func set64(b []byte, field int, v uint64, pages ...int) []byte {
	for _, p := range orBoth(pages) {
		ne.PutUint64(meta(b, p)[field:], v)
		resum(meta(b, p))
	}
	return b
}

func set32(b []byte, field int, v uint32, pages ...int) []byte {
	for _, p := range orBoth(pages) {
		ne.PutUint32(meta(b, p)[field:], v)
		resum(meta(b, p))
	}
	return b
}

func orBoth(pages []int) []int {
	if len(pages) == 0 {
		return []int{0, 1}
	}
	return pages
}

// current returns the meta bbolt uses: the one with the higher txid.
func current(b []byte) []byte {
	if ne.Uint64(meta(b, 1)[fTxid:]) > ne.Uint64(meta(b, 0)[fTxid:]) {
		return meta(b, 1)
	}
	return meta(b, 0)
}

// TestValidateCorruptedStores: corrupted copies of a real store. Those
// bbolt can open safely (one meta page torn) open and pass bbolt's check;
// those it would fault or panic on are refused as damaged, naming what is
// wrong, before bbolt maps them.
func TestValidateCorruptedStores(t *testing.T) {
	good := realStore(t)
	if ps := ne.Uint32(meta(good, 0)[fPageSize:]); ps != testPageBytes {
		t.Skipf("this machine's page size is %d; the offsets assume %d", ps, testPageBytes)
	}
	pages := uint64(len(good) / testPageBytes)
	tests := []struct {
		name    string
		corrupt func(b []byte) []byte
		want    string // "" when it must open, else in the reason
	}{
		{"intact", func(b []byte) []byte { return b }, ""},
		{"meta page 0 zeroed", func(b []byte) []byte { clear(meta(b, 0)); return b }, ""},
		{"meta page 1 zeroed", func(b []byte) []byte { clear(meta(b, 1)); return b }, ""},
		{"meta page 0 torn: checksum flipped", func(b []byte) []byte { meta(b, 0)[fChecksum] ^= 1; return b }, ""},
		{"both meta pages zeroed", func(b []byte) []byte { clear(meta(b, 0)); clear(meta(b, 1)); return b }, "no valid meta page: meta page 0: not a bbolt meta page; meta page 1: not a bbolt meta page"},
		{"both checksums flipped", func(b []byte) []byte {
			meta(b, 0)[fChecksum] ^= 1
			meta(b, 1)[fChecksum+7] ^= 0x80
			return b
		}, "meta page 0: checksum mismatch; meta page 1: checksum mismatch"},
		{"a field flipped in both meta pages", func(b []byte) []byte {
			meta(b, 0)[fTxid] ^= 4
			meta(b, 1)[fPgid] ^= 1
			return b
		}, "checksum mismatch"},
		{"another format version", func(b []byte) []byte { return set32(b, fVersion, 3) }, "meta page 0: bbolt format version 3, want 2"},
		{"page size not a power of two", func(b []byte) []byte { return set32(b, fPageSize, 3000) }, "the store's page size is 3000 bytes"},
		{"page size 0 in a valid meta page 0", func(b []byte) []byte { return set32(b, fPageSize, 0, 0) }, "the store's page size is 0 bytes"},
		{"meta page 1 gives another page size", func(b []byte) []byte { return set32(b, fPageSize, 8192, 1) }, "meta page 1 gives a page size of 8192, the store's is 4096"},
		{"page size larger than the file", func(b []byte) []byte { return set32(b, fPageSize, 1<<24) }, "shorter than its two meta pages of 16777216 bytes"},
		{"cut to half", func(b []byte) []byte { return b[:len(b)/2] }, "but meta page 0 counts"},
		{"cut to its high-water mark", func(b []byte) []byte { return b[:ne.Uint64(current(b)[fPgid:])*testPageBytes] }, ""},
		{"cut by one page of its data", func(b []byte) []byte { return b[:(ne.Uint64(current(b)[fPgid:])-1)*testPageBytes] }, "it was cut short or overwritten"},
		{"cut inside meta page 1", func(b []byte) []byte { return b[:testPageBytes+40] }, "the file is 4136 bytes, shorter than its two meta pages"},
		{"cut to 100 bytes", func(b []byte) []byte { return b[:100] }, "the file is 100 bytes, too short"},
		{"high-water mark past the end", func(b []byte) []byte { return set64(b, fPgid, pages+1) }, "counts"},
		{"high-water mark of 2^64-1 pages", func(b []byte) []byte { return set64(b, fPgid, ^uint64(0)) }, "counts 18446744073709551615 pages"},
		{"root page outside the store", func(b []byte) []byte { return set64(b, fRoot, pages) }, "the root page"},
		{"root page is a meta page", func(b []byte) []byte { return set64(b, fRoot, 1) }, "the root page 1 is outside"},
		{"freelist page outside the store", func(b []byte) []byte { return set64(b, fFreelist, pages+10) }, "the freelist page"},
		{"root page zeroed", func(b []byte) []byte {
			root := ne.Uint64(current(b)[fRoot:])
			clear(b[root*testPageBytes : root*testPageBytes+16])
			return b
		}, "holds page 0"},
		{"freelist page zeroed", func(b []byte) []byte {
			fl := ne.Uint64(current(b)[fFreelist:])
			clear(b[fl*testPageBytes : (fl+1)*testPageBytes])
			return b
		}, "holds page 0"},
		{"freelist page is a leaf", func(b []byte) []byte {
			fl := ne.Uint64(current(b)[fFreelist:])
			ne.PutUint16(b[fl*testPageBytes+8:], 0x02)
			return b
		}, "has type 0x2"},
		{"freelist runs past the store", func(b []byte) []byte {
			fl := ne.Uint64(current(b)[fFreelist:])
			ne.PutUint32(b[fl*testPageBytes+12:], 1<<20)
			return b
		}, "runs 1048576 pages past"},
		{"freelist counts more than its page holds", func(b []byte) []byte {
			fl := ne.Uint64(current(b)[fFreelist:])
			ne.PutUint16(b[fl*testPageBytes+10:], 0xFFFF)
			ne.PutUint64(b[fl*testPageBytes+16:], 1<<40)
			return b
		}, "more than its 1 pages hold"},
		{"freelist names a page past the end", func(b []byte) []byte {
			fl := ne.Uint64(current(b)[fFreelist:])
			if ne.Uint16(b[fl*testPageBytes+10:]) == 0 {
				ne.PutUint16(b[fl*testPageBytes+10:], 1)
			}
			ne.PutUint64(b[fl*testPageBytes+16:], pages+5)
			return b
		}, "the freelist names page"},
		{"random bytes", func(b []byte) []byte {
			r := rand.New(rand.NewPCG(1, 2))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			return b
		}, "no valid meta page"},
		{"a text file", func(b []byte) []byte { return bytes.Repeat([]byte("not a store\n"), 1000) }, "no valid meta page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.corrupt(bytes.Clone(good))
			err := store.ValidateFile(bytes.NewReader(b), int64(len(b)))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused a store bbolt opens: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ValidateFile = %v, want %q", err, tt.want)
			}

			// The same file through Open: it opens and checks clean,
			// or is refused in one line naming the fix.
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, store.FileName), b, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(dir, store.Options{})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Check(); err != nil {
					t.Error(err)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if db != nil {
				db.Close()
			}
			if !errors.Is(err, store.ErrDamaged) || !errors.Is(err, store.ErrNotStore) ||
				!strings.HasSuffix(err.Error(), "deviceupdate.db is damaged ("+mustReason(t, b)+"): restore it from a backup (deviceupdate restore)") {
				t.Errorf("Open = %v", err)
			}
		})
	}
}

func mustReason(t *testing.T, b []byte) string {
	t.Helper()
	err := store.ValidateFile(bytes.NewReader(b), int64(len(b)))
	if err == nil {
		t.Fatal("no reason")
	}
	return err.Error()
}

// TestOpenMissingStoreBesideFiles: no store, or an empty file, beside a
// DeviceUpdateStore holding files is refused without creating anything;
// beside an empty one (or none) a new store is created, as on a first start.
func TestOpenMissingStoreBesideFiles(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    error
	}{
		{"fresh folder", func(t *testing.T, dir string) {}, nil},
		{"empty file, no update files", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, store.FileName), nil, 0o600)
		}, nil},
		{"only empty folders in the update store", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, updatestore.Dir, "UCPhone", "Polycom", "CX600"), 0o750)
		}, nil},
		{"missing beside update files", func(t *testing.T, dir string) {
			writeUpdateFile(t, dir)
		}, store.ErrMissing},
		{"empty beside update files", func(t *testing.T, dir string) {
			writeUpdateFile(t, dir)
			os.WriteFile(filepath.Join(dir, store.FileName), nil, 0o600)
		}, store.ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(t, dir)
			before, _ := os.Stat(filepath.Join(dir, store.FileName))
			db, err := store.Open(dir, store.Options{})
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
				return
			}
			if db != nil {
				db.Close()
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "restore deviceupdate.db from a backup (deviceupdate restore), or, to start over without them, move "+filepath.Join(dir, updatestore.Dir)+" aside") {
				t.Fatalf("Open = %v, want %v and the fix", err, tt.want)
			}
			after, _ := os.Stat(filepath.Join(dir, store.FileName))
			if (before == nil) != (after == nil) || after != nil && after.Size() != 0 {
				t.Errorf("a refused Open changed the store file: %v → %v", before, after)
			}
		})
	}
}

func writeUpdateFile(t *testing.T, dir string) {
	t.Helper()
	leaf := filepath.Join(dir, updatestore.Dir, "UCPhone", "Polycom", "CX600", "A", "ENU", "4.0.7577.4366", "CPE")
	if err := os.MkdirAll(leaf, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leaf, "CPE.nbt"), []byte("firmware"), 0o640); err != nil {
		t.Fatal(err)
	}
}

// FuzzValidateFile: the validator never panics, and bbolt opens (and
// closes) every file it accepts without faulting or panicking.
func FuzzValidateFile(f *testing.F) {
	for _, ps := range []int{1024, 4096} {
		dir := f.TempDir()
		bdb, err := bolt.Open(filepath.Join(dir, "seed.db"), 0o600, &bolt.Options{PageSize: ps})
		if err != nil {
			f.Fatal(err)
		}
		err = bdb.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("devices"))
			for i := 0; err == nil && i < 50; i++ {
				err = b.Put([]byte(fmt.Sprint(i)), bytes.Repeat([]byte{byte(i)}, 40))
			}
			return err
		})
		if err != nil {
			f.Fatal(err)
		}
		bdb.Close()
		seed, err := os.ReadFile(filepath.Join(dir, "seed.db"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(seed)
		f.Add(seed[:len(seed)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Mutations rarely keep a meta's checksum right: recompute it, so
		// that the fuzzer reaches what lies past it.
		for off := 0; off+metaAt+64 <= len(b); off = max(1024, 2*off) {
			if m := b[off+metaAt : off+metaAt+64]; ne.Uint32(m) == 0xED0CDAED {
				resum(m)
			}
		}
		if store.ValidateFile(bytes.NewReader(b), int64(len(b))) != nil {
			return
		}
		path := filepath.Join(t.TempDir(), "fuzz.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err == nil {
			bdb.Close()
		}
	})
}
