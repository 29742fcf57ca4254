package blobstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Limits of a location, well inside what file systems and S3 allow.
const (
	maxPathLen   = 4096 // PATH_MAX
	maxPrefixLen = 512  // S3 keys are at most 1024 bytes; the store adds 72
)

// Location is where the files of a pool are: a folder (Path) or an S3
// bucket and a prefix in it (Bucket, Prefix).
type Location struct {
	Path   string // a folder, as given (cleaned); "" for S3
	Bucket string
	Prefix string // without leading or trailing slash; may be empty
}

// IsS3 reports whether the location is a bucket.
func (l Location) IsS3() bool { return l.Bucket != "" }

// String returns the location as ParseLocation reads it.
func (l Location) String() string {
	if !l.IsS3() {
		return l.Path
	}
	if l.Prefix == "" {
		return "s3://" + l.Bucket
	}
	return "s3://" + l.Bucket + "/" + l.Prefix
}

// ParseLocation reads the value of --files: a folder (a path, absolute
// or relative) or s3://BUCKET[/PREFIX]. Any other scheme, a bucket name
// S3 would refuse, credentials or a query in the URL, and a prefix with
// empty, "." or ".." segments or control characters are errors.
func ParseLocation(s string) (Location, error) {
	if s == "" {
		return Location{}, errors.New("files location: empty; give a folder or s3://BUCKET/PREFIX")
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) {
		return Location{}, errors.New("files location: control characters or invalid UTF-8")
	}
	scheme, rest, hasScheme := strings.Cut(s, "://")
	if !hasScheme {
		if len(s) > maxPathLen {
			return Location{}, fmt.Errorf("files location: a path of %d bytes (at most %d)", len(s), maxPathLen)
		}
		return Location{Path: filepath.Clean(s)}, nil
	}
	if strings.ToLower(scheme) != "s3" {
		return Location{}, fmt.Errorf("files location %q: unsupported scheme %q; give a folder or s3://BUCKET/PREFIX", s, scheme)
	}
	if strings.ContainsAny(rest, "?#") {
		return Location{}, fmt.Errorf("files location %q: no query or fragment; the endpoint and credentials come from %s, %s and %s", s, EnvEndpoint, EnvAccessKeyID, EnvSecretAccessKey)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if strings.Contains(bucket, "@") {
		return Location{}, fmt.Errorf("files location: no credentials in the URL; set %s and %s", EnvAccessKeyID, EnvSecretAccessKey)
	}
	if err := checkBucket(bucket); err != nil {
		return Location{}, fmt.Errorf("files location %q: %w", s, err)
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if err := checkPrefix(prefix); err != nil {
		return Location{}, fmt.Errorf("files location %q: %w", s, err)
	}
	return Location{Bucket: bucket, Prefix: prefix}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkBucket applies S3's rules for bucket names: 3 to 63 lower-case
// letters, digits, dots and hyphens, beginning and ending with a letter
// or digit, no "..", and not an IP address.
func checkBucket(b string) error {
	if b == "" {
		return errors.New("no bucket; want s3://BUCKET/PREFIX")
	}
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("a bucket name has 3 to 63 characters, not %d", len(b))
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '-' {
			return errors.New("a bucket name has only lower-case letters, digits, dots and hyphens")
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return errors.New("a bucket name begins and ends with a letter or a digit")
	}
	if strings.Contains(b, "..") {
		return errors.New("a bucket name has no two dots in a row")
	}
	if net.ParseIP(b) != nil {
		return errors.New("a bucket name is not an IP address")
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// checkPrefix refuses a prefix that S3 would store under another name or
// that a file system gateway would read as a path out of it.
func checkPrefix(p string) error {
	if len(p) > maxPrefixLen {
		return fmt.Errorf("a prefix of %d bytes (at most %d)", len(p), maxPrefixLen)
	}
	if p == "" {
		return nil
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return errors.New("the prefix has an empty segment (// or a leading /)")
		case ".", "..":
			return fmt.Errorf("the prefix has a %q segment", seg)
		}
	}
	if strings.ContainsAny(p, `\`) {
		return errors.New(`the prefix has a backslash`)
	}
	return nil
}

// Open returns the store at a location: Dir for a folder, S3 for a
// bucket, configured from the environment (S3ConfigFromEnv).
func Open(ctx context.Context, loc Location) (Store, error) {
	if !loc.IsS3() {
		return Dir(loc.Path)
	}
	cfg, err := S3ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("files %s: %w", loc, err)
	}
	return S3(ctx, loc, cfg)
}
