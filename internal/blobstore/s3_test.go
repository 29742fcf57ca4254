package blobstore_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/deviceupdate/deviceupdate/internal/blobstore"
)

// TestS3Multipart: a file larger than one part (16 MiB) is uploaded in
// parts, each checked by the store (Content-MD5), copied under its key
// and read back whole.
func TestS3Multipart(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 20 MiB")
	}
	s := openS3(t)
	data := content(5, 20<<20)
	key := mustPut(t, s, data)
	if got, err := readAll(t, s, key); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if left := s3Leftovers(t, s); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestS3StrayObjects: objects outside the layout (another prefix, names
// that are not keys, a key under another prefix) are never listed.
func TestS3StrayObjects(t *testing.T) {
	s := openS3(t)
	f := s3Stores[s]
	key := mustPut(t, s, []byte("an update file"))
	other := keyOf([]byte("elsewhere"))
	for _, name := range []string{
		"pool/two/sha256/" + other,       // another pool's
		"pool/one/sha256/README",         // not a key
		"pool/one/sha256/" + other + "x", // a key and more
		"pool/one/sha256/sub/" + other,   // a folder below
		"pool/one/" + other,              // beside the layout
		"pool/one/sha256/" + strings.ToUpper(other),
	} {
		if _, err := f.raw.PutObject(context.Background(), f.bucket, name, strings.NewReader("stray"), 5, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := listAll(t, s, "", 10)
	if !slices.Equal(got, []string{key}) {
		t.Errorf("List = %v, want only %s", got, key)
	}
}

// TestS3RemoveStale: uploads a killed front end left in .incoming/ are
// removed once old; the objects stay.
func TestS3RemoveStale(t *testing.T) {
	s := openS3(t)
	f := s3Stores[s]
	key := mustPut(t, s, []byte("kept"))
	if _, err := f.raw.PutObject(context.Background(), f.bucket, s3Prefix+"/.incoming/0123", strings.NewReader("partial"), 7, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	st := s.(*blobstore.S3Store)
	if n, err := st.RemoveStale(context.Background(), time.Hour, time.Now()); err != nil || n != 0 {
		t.Fatalf("RemoveStale of a fresh upload = %d, %v; want 0", n, err)
	}
	if n, err := st.RemoveStale(context.Background(), time.Hour, time.Now().Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("RemoveStale of an old upload = %d, %v; want 1", n, err)
	}
	if left := s3Leftovers(t, s); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := s.Stat(context.Background(), key); err != nil {
		t.Errorf("the object: %v", err)
	}
}
