package blobstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/deviceupdate/deviceupdate/internal/blobstore"
)

func TestParseLocation(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want blobstore.Location
		err  string // part of the error; "" for none
	}{
		{"absolute folder", "/srv/pool/files", blobstore.Location{Path: "/srv/pool/files"}, ""},
		{"relative folder cleaned", "./files/../pool/", blobstore.Location{Path: "pool"}, ""},
		{"folder with a colon", "share:files", blobstore.Location{Path: "share:files"}, ""},
		{"bucket only", "s3://pool-files", blobstore.Location{Bucket: "pool-files"}, ""},
		{"bucket and prefix", "s3://pool-files/deviceupdate/eu", blobstore.Location{Bucket: "pool-files", Prefix: "deviceupdate/eu"}, ""},
		{"trailing slash dropped", "s3://pool-files/deviceupdate/", blobstore.Location{Bucket: "pool-files", Prefix: "deviceupdate"}, ""},
		{"upper-case scheme", "S3://pool.files.example/p", blobstore.Location{Bucket: "pool.files.example", Prefix: "p"}, ""},
		{"empty", "", blobstore.Location{}, "empty"},
		{"other scheme", "https://files.example.com/pool", blobstore.Location{}, `unsupported scheme "https"`},
		{"postgres given as files", "postgres://db/pool", blobstore.Location{}, "unsupported scheme"},
		{"no bucket", "s3://", blobstore.Location{}, "no bucket"},
		{"no bucket, a prefix", "s3:///prefix", blobstore.Location{}, "no bucket"},
		{"bucket too short", "s3://ab", blobstore.Location{}, "3 to 63"},
		{"bucket too long", "s3://" + strings.Repeat("b", 64), blobstore.Location{}, "3 to 63"},
		{"upper-case bucket", "s3://Pool-Files", blobstore.Location{}, "lower-case"},
		{"underscore in bucket", "s3://pool_files", blobstore.Location{}, "lower-case"},
		{"bucket ends with a hyphen", "s3://pool-", blobstore.Location{}, "begins and ends"},
		{"two dots in a bucket", "s3://pool..files", blobstore.Location{}, "two dots"},
		{"bucket is an IP address", "s3://192.168.1.10", blobstore.Location{}, "IP address"},
		{"credentials in the URL", "s3://AKIA:secret@pool-files/p", blobstore.Location{}, "no credentials in the URL"},
		{"query", "s3://pool-files/p?region=eu-west-1", blobstore.Location{}, "no query"},
		{"fragment", "s3://pool-files/p#x", blobstore.Location{}, "no query"},
		{"empty segment", "s3://pool-files/a//b", blobstore.Location{}, "empty segment"},
		{"dot-dot segment", "s3://pool-files/a/../b", blobstore.Location{}, `".." segment`},
		{"dot segment", "s3://pool-files/./b", blobstore.Location{}, `"." segment`},
		{"backslash", `s3://pool-files/a\b`, blobstore.Location{}, "backslash"},
		{"prefix too long", "s3://pool-files/" + strings.Repeat("p", 600), blobstore.Location{}, "at most 512"},
		{"control character", "s3://pool-files/a\nb", blobstore.Location{}, "control characters"},
		{"NUL in a folder", "/srv/files\x00x", blobstore.Location{}, "control characters"},
		{"invalid UTF-8", "/srv/\xff", blobstore.Location{}, "invalid UTF-8"},
		{"folder too long", "/" + strings.Repeat("d", 5000), blobstore.Location{}, "at most 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := blobstore.ParseLocation(tt.in)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("ParseLocation(%q) = %v", tt.in, err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("ParseLocation(%q) = %+v, %v; want an error with %q", tt.in, got, err, tt.err)
			case tt.err != "" && strings.ContainsAny(err.Error(), "\n\x00"):
				t.Fatalf("error %q is not one line", err)
			case got != tt.want:
				t.Fatalf("ParseLocation(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if err == nil {
				if again, err := blobstore.ParseLocation(got.String()); err != nil || again != got {
					t.Errorf("String %q reads back as %+v, %v", got.String(), again, err)
				}
			}
		})
	}
}

func TestS3ConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name string
		env  map[string]string
		want blobstore.S3Config
		err  string
	}{
		{"all set", map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "tok", "AWS_REGION": "eu-west-1"},
			blobstore.S3Config{Endpoint: "http://127.0.0.1:9000", AccessKeyID: "id", SecretAccessKey: "secret", SessionToken: "tok", Region: "eu-west-1"}, ""},
		{"S3's own endpoint and the default region", map[string]string{"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_S3": "https://b", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "us-east-2"},
			blobstore.S3Config{Endpoint: "https://b", AccessKeyID: "id", SecretAccessKey: "secret", Region: "us-east-2"}, ""},
		{"no credentials", map[string]string{"AWS_ENDPOINT_URL": "http://a:1"}, blobstore.S3Config{}, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{"no secret", map[string]string{"AWS_ACCESS_KEY_ID": "id"}, blobstore.S3Config{}, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := blobstore.S3ConfigFromEnv(env(tt.env))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("S3ConfigFromEnv = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestS3Refused: what S3 refuses at start, before any file is served:
// an endpoint that is not a plain URL, a bucket that does not exist.
func TestS3Refused(t *testing.T) {
	f := startFakeS3(t)
	loc, _ := blobstore.ParseLocation("s3://no-such-bucket/p")
	cfg := f.config()
	if _, err := blobstore.S3(context.Background(), loc, cfg); err == nil || !strings.Contains(err.Error(), "the bucket no-such-bucket does not exist") {
		t.Errorf("a missing bucket: %v", err)
	}
	loc, _ = blobstore.ParseLocation("s3://" + f.bucket)
	for _, endpoint := range []string{"127.0.0.1:9000", "ftp://host", "http://user:pw@host", "http://host/path", "http://host?x=1", "http://"} {
		cfg.Endpoint = endpoint
		if _, err := blobstore.S3(context.Background(), loc, cfg); err == nil || !strings.Contains(err.Error(), "S3 endpoint") {
			t.Errorf("endpoint %q: %v", endpoint, err)
		}
	}
	if _, err := blobstore.S3(context.Background(), blobstore.Location{Path: "/x"}, f.config()); err == nil {
		t.Error("a folder was taken for a bucket")
	}
}

// TestOpenLocation: Open picks the backend by the location, S3's from
// the environment.
func TestOpenLocation(t *testing.T) {
	dir := t.TempDir() + "/files"
	loc, _ := blobstore.ParseLocation(dir)
	s, err := blobstore.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := s.(*blobstore.DirStore); !ok || d.Root() != dir {
		t.Errorf("Open(%s) = %T", dir, s)
	}
	f := startFakeS3(t)
	t.Setenv("AWS_ENDPOINT_URL", f.url)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	loc, _ = blobstore.ParseLocation("s3://" + f.bucket + "/p")
	if _, err := blobstore.Open(context.Background(), loc); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("no credentials: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", testKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSecret)
	s, err = blobstore.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	key := mustPut(t, s, []byte("through the environment"))
	if _, err := f.raw.StatObject(context.Background(), f.bucket, "p/sha256/"+key, minio.StatObjectOptions{}); err != nil {
		t.Errorf("the object is not at p/sha256/<key>: %v", err)
	}
}
