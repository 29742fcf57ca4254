package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// crashTrials is how many times TestImportSurvivesSIGKILL kills the server.
const crashTrials = 100

// TestImportSurvivesSIGKILL kills the server with SIGKILL at random moments
// of imports. After each restart every package must be wholly present (all
// its updates recorded, every file there with its recorded bytes) or wholly
// absent, with no update folder that no record names and no staging files.
func TestImportSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the server 100 times")
	}
	data := filepath.Join(t.TempDir(), "data")
	certsDir := filepath.Join(t.TempDir(), "certs")
	ca := testpki.NewCA(t, "Polycom Root")
	sign := testpkg.NewSigner(t, ca, testpki.Options{})

	const nPackages = 12
	packages := twoModelPackages(t, sign, nPackages, 5000, 1<<20)

	rng := rand.New(rand.NewPCG(7, 11))
	killedDuring := 0
	for trial := range crashTrials {
		srv := e2e.Start(t, e2e.Options{Data: data, Certs: certsDir, NoHTTP: true})
		if trial == 0 {
			testpki.WriteCert(t, filepath.Join(certsDir, "trusted", "polycom.pem"), ca.Cert)
		}
		pkg := packages[rng.IntN(nPackages)]
		done := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/admin/api/v1/packages?name=p.cab", bytes.NewReader(pkg))
			req.Header.Set("Authorization", "Bearer "+srv.Token())
			resp, err := srv.Client("UCUpdates-R2.contoso.com").Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		time.Sleep(time.Duration(rng.IntN(60_000)) * time.Microsecond)
		srv.Kill()
		if code := <-done; code == 0 {
			killedDuring++
		}

		// The restart recovers; then check the result at rest.
		again := e2e.Start(t, e2e.Options{Data: data, Certs: certsDir, NoHTTP: true})
		if code := again.Stop(); code != 0 {
			t.Fatalf("trial %d: clean stop after restart exited %d\n%s", trial, code, again.Stderr())
		}
		checkConsistent(t, trial, data)
	}
	t.Logf("%d trials; %d killed before the import answered", crashTrials, killedDuring)
	if killedDuring < crashTrials/4 {
		t.Errorf("only %d of %d kills interrupted an import; the timing no longer exercises crashes", killedDuring, crashTrials)
	}
}

// twoModelPackages returns n packages of two updates each (CX600 and
// CX700) of images about size bytes, versions 4.0.7577.<first+i>.
func twoModelPackages(t *testing.T, sign testpkg.Signer, n, first, size int) [][]byte {
	t.Helper()
	packages := make([][]byte, n)
	for i := range packages {
		files := testpkg.Files{}
		v := fmt.Sprintf("4.0.7577.%d", first+i)
		testpkg.AddUpdate(t, files, "CX600/", v, testpkg.Image(size+i*4096, byte(i)), sign)
		testpkg.AddUpdate(t, files, "CX700/", v, testpkg.Image(size+i*8192, byte(i+100)), sign)
		b, err := os.ReadFile(testpkg.MakeCab(t, files))
		if err != nil {
			t.Fatal(err)
		}
		packages[i] = b
	}
	return packages
}

func checkConsistent(t *testing.T, trial int, data string) {
	t.Helper()
	db, err := store.Open(data, store.Options{})
	if err != nil {
		t.Fatalf("trial %d: %v", trial, err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatalf("trial %d: %v", trial, err)
	}
	updates, err := db.Updates()
	if err != nil {
		t.Fatal(err)
	}
	byPackage := map[string]int{}
	known := map[string]bool{}
	for _, u := range updates {
		byPackage[u.PackageSHA256]++
		dir := updatestore.Folder(data, u.RuleKey, u.Version)
		known[dir] = true
		for _, f := range append(append([]deviceupdate.UpdateFile{}, u.Images...), u.Catalog, u.Description) {
			b, err := os.ReadFile(filepath.Join(dir, f.Name))
			sum := sha256.Sum256(b)
			if err != nil || int64(len(b)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
				t.Fatalf("trial %d: %s/%s is not the recorded file (%v)", trial, dir, f.Name, err)
			}
		}
	}
	for p, n := range byPackage {
		if n != 2 {
			t.Fatalf("trial %d: package %s is partly present: %d of its 2 updates", trial, p[:12], n)
		}
	}
	rules, _ := db.Rules()
	for _, r := range rules {
		if !r.PendingVersion.IsZero() {
			if _, err := db.FindUpdate(r.RuleKey, r.PendingVersion); err != nil {
				t.Fatalf("trial %d: rule %s is pending %s, which is not stored", trial, r.ID, r.PendingVersion)
			}
		}
	}
	root := filepath.Join(data, updatestore.Dir)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if strings.Count(rel, string(filepath.Separator)) == 6 && !known[p] {
			t.Fatalf("trial %d: %s holds files no record names", trial, p)
		}
		return nil
	})
	if entries, err := os.ReadDir(filepath.Join(data, updatestore.StagingDir)); err == nil && len(entries) > 0 {
		t.Fatalf("trial %d: staging files survived the restart: %v", trial, entries)
	}
	trail, err := os.ReadFile(filepath.Join(data, audit.Dir, audit.FileName))
	if err == nil {
		if err := audit.Verify(bytes.NewReader(trail)); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
	}
}
