package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/blobstore"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/phone"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// filesBackend is a pool's file store as a test sees it: the serve
// flags and environment that name it, the test's own client of it, a
// way to flip a byte of an object behind the store's back, and files
// that are not the store's, which nothing may delete.
type filesBackend struct {
	args, env []string
	store     blobstore.Store
	flip      func(t *testing.T, key string, at int)
	addStrays func(t *testing.T)
	lost      func(t *testing.T) []string // the strays no longer there
}

func sharedFolder(t *testing.T) filesBackend {
	dir := t.TempDir()
	st, err := blobstore.Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	strays := []string{filepath.Join(dir, "README.txt"), filepath.Join(dir, "sha256", "notes")}
	return filesBackend{
		args:  []string{"--files", dir},
		store: st,
		flip: func(t *testing.T, key string, at int) {
			flipByte(t, filepath.Join(dir, "sha256", key[:2], key[2:4], key), at)
		},
		addStrays: func(t *testing.T) {
			for _, p := range strays {
				if err := os.WriteFile(p, []byte("not an update file"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		},
		lost: func(t *testing.T) (lost []string) {
			for _, p := range strays {
				if _, err := os.Stat(p); err != nil {
					lost = append(lost, p)
				}
			}
			return lost
		},
	}
}

// fakeS3Bucket runs an in-process S3 server (gofakes3) on a real
// listener, with a bucket; the served process reaches it through the
// AWS variables.
func fakeS3Bucket(t *testing.T) filesBackend {
	const bucket, prefix, keyID, secret = "pool-files", "pool/one", e2e.S3KeyID, e2e.S3Secret
	url, raw := e2e.FakeS3(t, bucket)
	ctx := context.Background()
	loc, err := blobstore.ParseLocation("s3://" + bucket + "/" + prefix)
	if err != nil {
		t.Fatal(err)
	}
	st, err := blobstore.S3(ctx, loc, blobstore.S3Config{Endpoint: url, AccessKeyID: keyID, SecretAccessKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	put := func(t *testing.T, name string, b []byte) {
		if _, err := raw.PutObject(ctx, bucket, name, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	strays := []string{prefix + "/README.txt", prefix + "/sha256/notes", "another/pool/file"}
	return filesBackend{
		args: []string{"--files", loc.String()},
		env: []string{"AWS_ENDPOINT_URL=" + url, "AWS_ACCESS_KEY_ID=" + keyID, "AWS_SECRET_ACCESS_KEY=" + secret,
			"AWS_REGION=us-east-1"},
		store: st,
		flip: func(t *testing.T, key string, at int) {
			name := prefix + "/sha256/" + key
			obj, err := raw.GetObject(ctx, bucket, name, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(obj)
			obj.Close()
			if err != nil {
				t.Fatal(err)
			}
			b[at] ^= 0x01
			put(t, name, b)
		},
		addStrays: func(t *testing.T) {
			for _, name := range strays {
				put(t, name, []byte("not an update file"))
			}
		},
		lost: func(t *testing.T) (lost []string) {
			for _, name := range strays {
				if _, err := raw.StatObject(ctx, bucket, name, minio.StatObjectOptions{}); err != nil {
					lost = append(lost, name)
				}
			}
			return lost
		},
	}
}

func flipByte(t *testing.T, path string, at int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, int64(at)); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, int64(at)); err != nil {
		t.Fatal(err)
	}
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// blobKeys lists every object of a file store.
func blobKeys(t *testing.T, st blobstore.Store) []string {
	t.Helper()
	var keys []string
	for after := ""; ; {
		page, err := st.List(context.Background(), "", after, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range page {
			keys = append(keys, in.Key)
		}
		if len(page) < blobstore.MaxListLimit {
			return keys
		}
		after = page[len(page)-1].Key
	}
}

// getFile GETs an update file and returns the status and what arrived
// before the body ended or broke off.
func getFile(t *testing.T, url string, header http.Header) (int, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// TestServeSharedFiles: a server with --files (a shared folder, or an S3
// bucket) keeps the update files there, named by their SHA-256, not under
// --data; a phone downloads and verifies the update, ranges and chunk
// lists are served from the checked content; a damaged copy, in the local
// cache or in the file store, is never served whole, and is reported in
// the log and the metrics; files clear deletes the stored files no update
// names, those a crashed import left, and nothing else.
func TestServeSharedFiles(t *testing.T) {
	for _, tt := range []struct {
		name    string
		backend func(t *testing.T) filesBackend
	}{
		{"shared folder", sharedFolder},
		{"s3 bucket", fakeS3Bucket},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.backend(t)
			ctx := context.Background()
			const size = 300 << 10
			image := testpkg.Image(size, 5)
			key := sha256Hex(image)
			srv, env, trust := phoneSiteWith(t, size, e2e.Options{Args: b.args, Env: b.env})
			if held, err := updatestore.HoldsFiles(srv.Data); err != nil || held {
				t.Errorf("update files under --data: %v, %v", held, err)
			}
			if in, err := b.store.Stat(ctx, key); err != nil || in.Size != size {
				t.Fatalf("the image in the file store: %+v, %v", in, err)
			}

			runPhone := func(state string) e2e.Result {
				return e2e.Run(t, "", nil, "phone", "run", "--server", srv.InternalURL(), "--mac", "00-04-F2-00-40-01",
					"--model", "CX600", "--version", "4.0.7577.4100", "--trust", trust, "--state", state, "--once", "--peer-sharing", "off", "--json")
			}
			res := runPhone(filepath.Join(t.TempDir(), "phone"))
			var got phone.Result
			if err := json.Unmarshal([]byte(res.Stdout), &got); res.Code != 0 || err != nil || !got.Updated || got.Running != "4.0.7577.4366" {
				t.Fatalf("phone run: exit %d, %+v (%v)\nstderr: %s", res.Code, got, err, res.Stderr)
			}

			url := srv.InternalURL() + "/DeviceUpdateFiles_Int/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt"
			if code, body, err := getFile(t, url, http.Header{"Range": {"bytes=1000-1999"}}); code != http.StatusPartialContent || err != nil || !bytes.Equal(body, image[1000:2000]) {
				t.Errorf("a range: %d, %d bytes, %v", code, len(body), err)
			}
			want, err := deviceupdate.NewChunkList(bytes.NewReader(image), size)
			if err != nil {
				t.Fatal(err)
			}
			if code, body, err := getFile(t, url+deviceupdate.ChunkListSuffix, nil); code != http.StatusOK || err != nil || !bytes.Equal(body, want.Text) {
				t.Errorf("the chunk list: %d, %q, %v", code, body, err)
			}

			// This server's copy damaged: the download breaks off before
			// its end; the next one is fetched again from the file store.
			cached := filepath.Join(srv.Data, updatestore.CacheDir, "sha256", key[:2], key[2:4], key)
			flipByte(t, cached, size/2)
			if code, body, err := getFile(t, url, nil); err == nil || len(body) >= size {
				t.Errorf("from a damaged local copy: %d, %d bytes, %v; want the body cut short", code, len(body), err)
			}
			if code, body, err := getFile(t, url, nil); code != http.StatusOK || err != nil || !bytes.Equal(body, image) {
				t.Errorf("after a damaged local copy: %d, %d bytes, %v; want the image", code, len(body), err)
			}

			// The file store's object damaged, and no local copy: no byte
			// is served, and the phone does not update.
			if err := os.Remove(cached); err != nil {
				t.Fatal(err)
			}
			b.flip(t, key, size-1)
			if code, body, err := getFile(t, url, nil); code == http.StatusOK || len(body) >= size {
				t.Errorf("from a damaged object: %d, %d bytes, %v; want an error and no image", code, len(body), err)
			}
			if res := runPhone(filepath.Join(t.TempDir(), "phone2")); res.Code == 0 {
				t.Errorf("a phone updated from a damaged object: %s", res.Stdout)
			}
			waitFor(t, "the damage in the log", 10*time.Second, func() bool {
				return srv.FindLog("update file damaged in the file store: not served") != nil
			})
			// Once for the local copy, at least once for the object.
			if n, _ := strconv.Atoi(metricValue(srv.Metrics(), "deviceupdate_update_files_damaged_total")); n < 2 {
				t.Errorf("damaged files counted %d times, want at least 2", n)
			}
			b.flip(t, key, size-1) // repaired

			// files clear: a version reset out of its rule, an object a
			// crashed import left, and files that are not the store's.
			orphan, err := b.store.Put(ctx, bytes.NewReader([]byte("left by a crashed import")), -1, "")
			if err != nil {
				t.Fatal(err)
			}
			b.addStrays(t)
			before := blobKeys(t, b.store)
			files := testpkg.Files{}
			ca := testpki.NewCA(t, "Polycom Root 2")
			trustPublisher(t, srv, ca)
			testpkg.AddUpdate(t, files, "", "4.0.7577.4400", testpkg.Image(size, 6), testpkg.NewSigner(t, ca, testpki.Options{}))
			for _, args := range [][]string{
				{"import", testpkg.MakeCab(t, files)}, {"rule", "reset", "UCPhone/Polycom/CX600/A/ENU/CPE"}, {"files", "clear", "--yes"},
			} {
				if res := e2e.Run(t, "", env, args...); res.Code != 0 {
					t.Fatalf("%s: %s", strings.Join(args, " "), res.Stderr)
				}
			}
			after := blobKeys(t, b.store)
			wantKeys := slices.DeleteFunc(slices.Clone(before), func(k string) bool { return k == orphan })
			if !slices.Equal(after, wantKeys) {
				t.Errorf("after files clear: %v\nwant %v (before, less the orphan %s)", after, wantKeys, orphan)
			}
			if lost := b.lost(t); len(lost) > 0 {
				t.Errorf("files that are not the store's deleted: %v", lost)
			}
			if code, body, err := getFile(t, url, nil); code != http.StatusOK || err != nil || !bytes.Equal(body, image) {
				t.Errorf("the approved image after files clear: %d, %d bytes, %v", code, len(body), err)
			}
		})
	}
}
