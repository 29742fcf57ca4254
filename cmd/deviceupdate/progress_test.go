package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/client"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestUploadEndsTheProgressBar uploads packages to a running server with
// the progress bar drawn on a writer that stands for the terminal: the bar
// shows at once, and its line is cleared before the upload returns, so the
// result or the error printed next does not run into "100% 1.0/1.0 MB".
func TestUploadEndsTheProgressBar(t *testing.T) {
	srv, trusted := startTrusting(t)
	c, err := client.New(client.Options{Server: srv.URL(), Certs: srv.Certs, Token: srv.Token()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		ca      *testpki.Authority
		wantErr bool
	}{
		{"imported", trusted, false},
		{"refused", testpki.NewCA(t, "Unknown Root"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := testpkg.Files{}
			testpkg.AddUpdate(t, files, "", "4.0.7577.4366", testpkg.Image(1<<20, 3), testpkg.NewSigner(t, tc.ca, testpki.Options{}))
			f, err := os.Open(testpkg.MakeCab(t, files))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			var terminal bytes.Buffer
			_, err = uploadPackage(context.Background(), c, f, fi.Size(), "UCUpdates.cab", &terminal)
			if (err != nil) != tc.wantErr {
				t.Fatalf("upload: %v, want an error: %v", err, tc.wantErr)
			}
			out := terminal.String()
			if !strings.HasPrefix(out, "\r\033[Kuploading UCUpdates.cab [") {
				t.Errorf("the bar is not drawn at once: %q", out)
			}
			if !strings.HasSuffix(out, "\r\033[K") {
				t.Errorf("the bar's line is not cleared when the upload returns, so the result would run into it: %q", out)
			}
		})
	}
}

// startTrusting starts a server that trusts a new publisher CA, and
// returns both.
func startTrusting(t *testing.T) (*e2e.Server, *testpki.Authority) {
	t.Helper()
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	testpki.WriteCert(t, filepath.Join(srv.Certs, "trusted", "publisher.pem"), ca.Cert)
	return srv, ca
}
