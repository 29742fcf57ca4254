package main_test

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

// TestPoolImportKilled: a node killed with SIGKILL while it writes an
// import's files into the pool's file store leaves nothing visible: the
// other node's rule has no new pending version, and its files clear
// removes the files the import had put; the pool then imports the same
// package whole.
func TestPoolImportKilled(t *testing.T) {
	t.Parallel()
	pool := startPool(t, 2)
	files, nodes := pool.files, pool.nodes
	n1, n2 := nodes[0], nodes[1]
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, n1.Server, ca)
	f := testpkg.Files{}
	testpkg.AddUpdate(t, f, "", "4.0.7577.4366", testpkg.Image(48<<20, 7), testpkg.NewSigner(t, ca, testpki.Options{}))
	cab := testpkg.MakeCab(t, f)
	ruleID := deviceupdate.RuleID(deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"})

	// objects counts the file store's objects and the files being
	// written into it (named .tmp-...).
	objects := func() (stored, writing int) {
		_ = filepath.WalkDir(files, func(p string, d fs.DirEntry, err error) error {
			switch {
			case err != nil || d.IsDir():
			case strings.HasPrefix(d.Name(), ".tmp-"):
				writing++
			case len(d.Name()) == 64:
				stored++
			}
			return nil
		})
		return stored, writing
	}
	before, _ := objects()
	done := make(chan e2e.Result, 1)
	go func() { done <- e2e.Run(t, "", n1.env, "import", cab) }()
	killed := false
	for end := time.Now().Add(2 * time.Minute); !killed && time.Now().Before(end); time.Sleep(time.Millisecond) {
		if _, writing := objects(); writing > 0 {
			n1.Kill()
			killed = true
		}
		select {
		case res := <-done:
			if !killed {
				t.Fatalf("the import ended (exit %d) before a file of it was seen being written: %s", res.Code, res.Stderr)
			}
			done <- res
		default:
		}
	}
	if !killed {
		t.Fatal("no file of the import was written into the file store within 2 minutes")
	}
	if res := <-done; res.Code == 0 {
		t.Fatalf("the import on the killed node succeeded: %s", res.Stdout)
	}
	if r, ok := n2.rules(t)[ruleID]; ok && !r.PendingVersion.IsZero() {
		t.Fatalf("after the node was killed mid-import, node 2's rule: %+v", r)
	}
	n2.run(t, "files", "clear", "--yes")
	if stored, writing := objects(); stored != before || writing != 0 {
		t.Fatalf("after files clear on node 2: %d objects and %d being written; want the %d from before", stored, writing, before)
	}
	n2.run(t, "import", cab)
	if r := n2.rules(t)[ruleID]; r.PendingVersion.String() != "4.0.7577.4366" {
		t.Fatalf("importing again on node 2: %+v", r)
	}
}
