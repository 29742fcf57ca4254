package e2e

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Credentials of FakeS3's server (which accepts any).
const (
	S3KeyID  = "deviceupdate-test"
	S3Secret = "deviceupdate-test-secret"
)

// FakeS3 runs an in-process S3 server (gofakes3, in memory) on a real
// 127.0.0.1 listener until the test ends, with the bucket made. It
// returns the endpoint URL and a raw client to reach behind a store.
func FakeS3(tb testing.TB, bucket string) (endpoint string, raw *minio.Client) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: gofakes3.New(s3mem.New()).Server()}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	raw, err = minio.New(ln.Addr().String(), &minio.Options{Creds: credentials.NewStaticV4(S3KeyID, S3Secret, "")})
	if err != nil {
		tb.Fatal(err)
	}
	if err := raw.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		tb.Fatal(err)
	}
	return "http://" + ln.Addr().String(), raw
}
