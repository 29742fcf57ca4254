package blobstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables S3ConfigFromEnv reads, those of the AWS tools.
const (
	// EnvEndpoint is the S3 endpoint's URL, http:// or https://, for a
	// store other than Amazon's (MinIO, Ceph, Garage...); EnvEndpointS3
	// takes precedence. Unset: https://s3.amazonaws.com.
	EnvEndpoint   = "AWS_ENDPOINT_URL"
	EnvEndpointS3 = "AWS_ENDPOINT_URL_S3"
	// EnvAccessKeyID and EnvSecretAccessKey are the credentials, required;
	// EnvSessionToken the token of temporary ones.
	EnvAccessKeyID     = "AWS_ACCESS_KEY_ID"
	EnvSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken    = "AWS_SESSION_TOKEN"
	// EnvRegion is the bucket's region (else EnvDefaultRegion; unset:
	// found from the bucket).
	EnvRegion        = "AWS_REGION"
	EnvDefaultRegion = "AWS_DEFAULT_REGION"
)

// defaultEndpoint is Amazon S3's.
const defaultEndpoint = "https://s3.amazonaws.com"

// S3Config is how to reach an S3-compatible store.
type S3Config struct {
	Endpoint        string // http:// or https:// URL, host and port only
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Region          string
	// Transport carries the requests; nil for http.DefaultTransport's
	// settings.
	Transport http.RoundTripper
}

// S3ConfigFromEnv reads the configuration from the AWS environment
// variables (EnvEndpoint...) through getenv (os.Getenv). Missing
// credentials are an error naming the variables: the store is written
// to, so an anonymous client would fail later and less clearly.
func S3ConfigFromEnv(getenv func(string) string) (S3Config, error) {
	c := S3Config{
		Endpoint:        getenv(EnvEndpointS3),
		AccessKeyID:     getenv(EnvAccessKeyID),
		SecretAccessKey: getenv(EnvSecretAccessKey),
		SessionToken:    getenv(EnvSessionToken),
		Region:          getenv(EnvRegion),
	}
	if c.Endpoint == "" {
		c.Endpoint = getenv(EnvEndpoint)
	}
	if c.Region == "" {
		c.Region = getenv(EnvDefaultRegion)
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return c, fmt.Errorf("S3 credentials: set %s and %s", EnvAccessKeyID, EnvSecretAccessKey)
	}
	return c, nil
}

// parseEndpoint reads an endpoint URL into minio's host and TLS setting.
func parseEndpoint(s string) (host string, secure bool, err error) {
	if s == "" {
		s = defaultEndpoint
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", false, fmt.Errorf("S3 endpoint %q: not a URL", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, fmt.Errorf("S3 endpoint %q: want http:// or https://", s)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "":
		return "", false, fmt.Errorf("S3 endpoint %q: want only a scheme, a host and a port", s)
	}
	return u.Host, u.Scheme == "https", nil
}

// S3Store keeps the objects in a bucket, under PREFIX/sha256/<key>.
// A Put uploads to PREFIX/.incoming/<random> and, once the bytes are
// checked, copies them (in the store) under their key: an upload cut
// short or refused leaves nothing under sha256/. A front end killed in
// between leaves its upload in .incoming/: RemoveStale deletes those, as
// does a lifecycle rule on the bucket expiring PREFIX/.incoming/ after a
// day.
type S3Store struct {
	client   *minio.Client
	bucket   string
	objects  string // PREFIX/sha256/ (or sha256/)
	incoming string // PREFIX/.incoming/
}

var _ Store = (*S3Store)(nil)

// S3 returns the store at loc (an S3 Location) reached with cfg. It
// checks that the bucket exists, so that a wrong name or credentials
// fail at start.
func S3(ctx context.Context, loc Location, cfg S3Config) (*S3Store, error) {
	if loc.Bucket == "" {
		return nil, fmt.Errorf("files %s: not an S3 location", loc)
	}
	host, secure, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	client, err := minio.New(host, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken),
		Secure:    secure,
		Region:    cfg.Region,
		Transport: cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("files %s: %w", loc, err)
	}
	ok, err := client.BucketExists(ctx, loc.Bucket)
	if err != nil {
		return nil, fmt.Errorf("files %s: %w", loc, err)
	}
	if !ok {
		return nil, fmt.Errorf("files %s: the bucket %s does not exist", loc, loc.Bucket)
	}
	base := ""
	if loc.Prefix != "" {
		base = loc.Prefix + "/"
	}
	return &S3Store{client: client, bucket: loc.Bucket, objects: base + objectsDir + "/", incoming: base + incomingDir + "/"}, nil
}

func (s *S3Store) name(key string) string { return s.objects + key }

// notFound reports whether err is S3's answer for a missing object.
func notFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey"
}

// Put implements Store.
func (s *S3Store) Put(ctx context.Context, r io.Reader, size int64, wantSHA256 string) (string, error) {
	if err := checkPut(size, wantSHA256); err != nil {
		return "", err
	}
	if wantSHA256 != "" && s.present(ctx, wantSHA256, size) {
		return wantSHA256, nil
	}
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	tmp := s.incoming + hex.EncodeToString(rnd[:])
	hr := newHashingReader(ctx, r, size)
	// Content-MD5 has the store check each part it receives (the client
	// holds a part in memory to compute it), which the payload's SHA-256
	// would not over https; the part is then sent unsigned.
	_, err := s.client.PutObject(ctx, s.bucket, tmp, hr, size,
		minio.PutObjectOptions{ContentType: "application/octet-stream", SendContentMd5: true, DisableContentSha256: true})
	switch {
	case hr.err != nil: // the reader's failure, not the client's account of it
		err = hr.err
	case err == nil && size >= 0:
		// The client reads no more than size bytes: one more is a mismatch.
		var one [1]byte
		if n, _ := io.ReadFull(hr, one[:]); n > 0 {
			err = fmt.Errorf("put: more than the announced %d bytes: %w", size, ErrMismatch)
		}
	}
	var key string
	if err == nil {
		key, err = hr.check(wantSHA256)
	}
	defer func() {
		// A failed clean-up leaves a file in .incoming/ for RemoveStale.
		_ = s.client.RemoveObject(context.WithoutCancel(ctx), s.bucket, tmp, minio.RemoveObjectOptions{})
	}()
	if err != nil {
		if errors.Is(err, ErrMismatch) {
			return "", err
		}
		return "", fmt.Errorf("put: %w", err)
	}
	if wantSHA256 == "" && s.present(ctx, key, hr.n) {
		return key, nil
	}
	if _, err := s.client.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: s.name(key)},
		minio.CopySrcOptions{Bucket: s.bucket, Object: tmp}); err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	return key, nil
}

// present reports whether key is stored with the announced size (any
// when unknown).
func (s *S3Store) present(ctx context.Context, key string, size int64) bool {
	oi, err := s.client.StatObject(ctx, s.bucket, s.name(key), minio.StatObjectOptions{})
	return err == nil && (size < 0 || oi.Size == size)
}

// Open implements Store.
func (s *S3Store) Open(ctx context.Context, key string) (*Reader, Info, error) {
	if err := checkKey(key); err != nil {
		return nil, Info{}, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.name(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, fmt.Errorf("open object: %w", err)
	}
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		if notFound(err) {
			return nil, Info{}, fmt.Errorf("object %s: %w", key, ErrNotFound)
		}
		return nil, Info{}, fmt.Errorf("open object: %w", err)
	}
	info := Info{Key: key, Size: oi.Size, Modified: oi.LastModified.UTC()}
	return newReader(obj, key, info.Size), info, nil
}

// Stat implements Store.
func (s *S3Store) Stat(ctx context.Context, key string) (Info, error) {
	if err := checkKey(key); err != nil {
		return Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.name(key), minio.StatObjectOptions{})
	if notFound(err) {
		return Info{}, fmt.Errorf("object %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat object: %w", err)
	}
	return Info{Key: key, Size: oi.Size, Modified: oi.LastModified.UTC()}, nil
}

// Delete implements Store.
func (s *S3Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.name(key), minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
		return fmt.Errorf("delete object: %w", err)
	}
	return nil
}

// List implements Store.
func (s *S3Store) List(ctx context.Context, prefix, after string, limit int) ([]Info, error) {
	limit, err := checkList(prefix, after, limit)
	if err != nil {
		return nil, err
	}
	opts := minio.ListObjectsOptions{Prefix: s.objects + prefix, Recursive: true, MaxKeys: limit}
	if after != "" {
		opts.StartAfter = s.name(after)
	}
	page := []Info{}
	err = s.list(ctx, opts, func(oi minio.ObjectInfo) bool {
		key := strings.TrimPrefix(oi.Key, s.objects)
		if ValidKey(key) && strings.HasPrefix(key, prefix) && key > after {
			page = append(page, Info{Key: key, Size: oi.Size, Modified: oi.LastModified.UTC()})
		}
		return len(page) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	return page, nil
}

// list calls each for the objects the listing yields, in order, until it
// returns false, and stops the listing then.
func (s *S3Store) list(ctx context.Context, opts minio.ListObjectsOptions, each func(minio.ObjectInfo) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := s.client.ListObjects(ctx, s.bucket, opts)
	defer func() {
		cancel()
		for range ch { // let the lister end
		}
	}()
	for oi := range ch {
		if oi.Err != nil {
			return oi.Err
		}
		if !each(oi) {
			return nil
		}
	}
	return ctx.Err()
}

// RemoveStale deletes the uploads in .incoming/ older than age (a crashed
// Put's) and returns how many it removed.
func (s *S3Store) RemoveStale(ctx context.Context, age time.Duration, now time.Time) (int, error) {
	var stale []string
	err := s.list(ctx, minio.ListObjectsOptions{Prefix: s.incoming, Recursive: true}, func(oi minio.ObjectInfo) bool {
		if now.Sub(oi.LastModified) >= age {
			stale = append(stale, oi.Key)
		}
		return true
	})
	removed := 0
	for _, name := range stale {
		if err != nil {
			break
		}
		if err = s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err == nil {
			removed++
		}
	}
	if err != nil {
		return removed, fmt.Errorf("remove stale uploads: %w", err)
	}
	return removed, nil
}
