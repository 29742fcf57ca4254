package blobstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/deviceupdate/deviceupdate/internal/blobstore"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
)

// backend is one implementation under the behaviour table, with what the
// table needs to reach behind the store: damage an object as a failing
// disk or a stray writer would, and find anything left outside the keys.
type backend struct {
	name string
	open func(t *testing.T) blobstore.Store
	// damage replaces the stored bytes of key with bad.
	damage func(t *testing.T, s blobstore.Store, key string, bad []byte)
	// leftovers lists whatever the store holds besides its objects
	// (staged files, uploads in progress).
	leftovers func(t *testing.T, s blobstore.Store) []string
}

func backends() []backend {
	return []backend{
		{name: "dir", open: openDir, damage: damageDir, leftovers: dirLeftovers},
		{name: "s3", open: openS3, damage: damageS3, leftovers: s3Leftovers},
	}
}

func openDir(t *testing.T) blobstore.Store {
	s, err := blobstore.Dir(filepath.Join(t.TempDir(), "files"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// objectPath is where a Dir store keeps key: the layout the package
// documents.
func objectPath(s *blobstore.DirStore, key string) string {
	return filepath.Join(s.Root(), "sha256", key[:2], key[2:4], key)
}

func damageDir(t *testing.T, s blobstore.Store, key string, bad []byte) {
	t.Helper()
	if err := os.WriteFile(objectPath(s.(*blobstore.DirStore), key), bad, 0o440); err != nil {
		t.Fatal(err)
	}
}

func dirLeftovers(t *testing.T, s blobstore.Store) []string {
	t.Helper()
	root := s.(*blobstore.DirStore).Root()
	var found []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !blobstore.ValidKey(d.Name()) || !strings.HasPrefix(rel, "sha256/") {
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// fakeS3 is an in-process S3 server (gofakes3) on a real 127.0.0.1
// listener, with a bucket, and a raw client to reach behind the store.
type fakeS3 struct {
	url    string
	bucket string
	raw    *minio.Client
}

const (
	testKeyID  = e2e.S3KeyID
	testSecret = e2e.S3Secret
)

func startFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	f := &fakeS3{bucket: "pool-files"}
	f.url, f.raw = e2e.FakeS3(t, f.bucket)
	return f
}

func (f *fakeS3) config() blobstore.S3Config {
	return blobstore.S3Config{Endpoint: f.url, AccessKeyID: testKeyID, SecretAccessKey: testSecret}
}

// s3Stores remembers each test store's fake server, for damage and
// leftovers.
var s3Stores = map[blobstore.Store]*fakeS3{}

const s3Prefix = "pool/one"

func openS3(t *testing.T) blobstore.Store {
	f := startFakeS3(t)
	loc, err := blobstore.ParseLocation("s3://" + f.bucket + "/" + s3Prefix)
	if err != nil {
		t.Fatal(err)
	}
	s, err := blobstore.S3(context.Background(), loc, f.config())
	if err != nil {
		t.Fatal(err)
	}
	s3Stores[s] = f
	t.Cleanup(func() { delete(s3Stores, s) })
	return s
}

func damageS3(t *testing.T, s blobstore.Store, key string, bad []byte) {
	t.Helper()
	f := s3Stores[s]
	if _, err := f.raw.PutObject(context.Background(), f.bucket, s3Prefix+"/sha256/"+key, bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

func s3Leftovers(t *testing.T, s blobstore.Store) []string {
	t.Helper()
	f := s3Stores[s]
	var found []string
	for oi := range f.raw.ListObjects(context.Background(), f.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		key, ok := strings.CutPrefix(oi.Key, s3Prefix+"/sha256/")
		if !ok || !blobstore.ValidKey(key) {
			found = append(found, oi.Key)
		}
	}
	return found
}

func keyOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// content returns n bytes that differ with seed.
func content(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i/251)
	}
	return b
}

func mustPut(t *testing.T, s blobstore.Store, b []byte) string {
	t.Helper()
	key, err := s.Put(context.Background(), bytes.NewReader(b), int64(len(b)), keyOf(b))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func readAll(t *testing.T, s blobstore.Store, key string) ([]byte, error) {
	t.Helper()
	r, _, err := s.Open(context.Background(), key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// failingReader yields some bytes, then an error, like a client cut off.
type failingReader struct {
	data []byte
}

var errCutOff = errors.New("connection reset")

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, errCutOff
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// unreadable fails any Read: a Put that needs no bytes never calls it.
type unreadable struct{}

func (unreadable) Read([]byte) (int, error) { return 0, errors.New("read where none was due") }

func listAll(t *testing.T, s blobstore.Store, prefix string, limit int) ([]string, int) {
	t.Helper()
	var keys []string
	pages := 0
	for after := ""; ; {
		page, err := s.List(context.Background(), prefix, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, in := range page {
			keys = append(keys, in.Key)
		}
		if len(page) < limit || pages > 100 {
			return keys, pages
		}
		after = page[len(page)-1].Key
	}
}

func sortedKeys(keys []string) []string {
	out := append([]string(nil), keys...)
	sort.Strings(out)
	return out
}
