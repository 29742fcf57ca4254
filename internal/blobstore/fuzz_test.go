package blobstore_test

import (
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/blobstore"
)

// FuzzParseLocation: any --files value is either refused or read into a
// folder or a bucket with a safe prefix, which String writes back to the
// same location. The seeds are in testdata/fuzz/FuzzParseLocation.
func FuzzParseLocation(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := blobstore.ParseLocation(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r\x00") {
				t.Fatalf("error %q is not one line", err)
			}
			return
		}
		if (loc.Path == "") == (loc.Bucket == "") {
			t.Fatalf("%q: a folder and a bucket at once, or neither: %+v", s, loc)
		}
		if loc.IsS3() {
			for _, seg := range strings.Split(loc.Prefix, "/") {
				if loc.Prefix != "" && (seg == "" || seg == "." || seg == "..") {
					t.Fatalf("%q: unsafe prefix %q", s, loc.Prefix)
				}
			}
		}
		again, err := blobstore.ParseLocation(loc.String())
		if err != nil || again != loc {
			t.Fatalf("%q: String %q reads back as %+v, %v", s, loc.String(), again, err)
		}
	})
}
