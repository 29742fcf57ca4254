package blobstore_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/blobstore"
)

// BenchmarkDirRead compares reading a 10 MiB object through Dir's
// verifying reader with reading the same file plainly, to measure what
// the SHA-256 check costs a download.
func BenchmarkDirRead(b *testing.B) {
	s, err := blobstore.Dir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := content(7, 10<<20)
	key := keyOf(data)
	if _, err := s.Put(context.Background(), bytes.NewReader(data), int64(len(data)), key); err != nil {
		b.Fatal(err)
	}
	path := objectPath(s, key)
	b.Run("verified", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		buf := make([]byte, 32<<10) // what io.Copy uses
		for b.Loop() {
			r, _, err := s.Open(context.Background(), key)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
				b.Fatal(err)
			}
			r.Close()
		}
	})
	b.Run("os.ReadFile", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := os.ReadFile(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain-copy", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		buf := make([]byte, 32<<10)
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
}
