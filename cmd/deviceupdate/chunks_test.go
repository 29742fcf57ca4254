package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// TestChunkLists: with peer sharing on, an offer names each file's chunk
// list, which the download folder serves and which hashes every 1 MiB
// piece of the file; with sharing off the answer carries no chunk list.
func TestChunkLists(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	files := testpkg.Files{}
	image := testpkg.Image(2*deviceupdate.ChunkSize+12345, 3)
	testpkg.AddUpdate(t, files, "", "4.0.7577.4366", image, testpkg.NewSigner(t, ca, testpki.Options{}))
	for _, args := range [][]string{{"import", testpkg.MakeCab(t, files)}, {"rule", "approve", "UCPhone/Polycom/CX600/A/ENU/CPE"}} {
		if res := e2e.Run(t, "", env, args...); res.Code != 0 {
			t.Fatal(res.Stderr)
		}
	}
	poll := func() upx.Response {
		code, body := post(t, http.DefaultClient, srv.InternalURL()+"/RequestHandler/ucdevice.upx", pollBody("00-04-F2-00-00-77", "CX600", "4.0.7577.4100"))
		var res upx.Response
		if err := xml.Unmarshal([]byte(body), &res); code != 200 || err != nil || res.Files == nil {
			t.Fatalf("poll: %d %v %s", code, err, body)
		}
		return res
	}
	if res := poll(); res.Files.File[0].Chunks != "" {
		t.Errorf("sharing off, yet the answer names a chunk list: %+v", res.Files.File[0])
	}
	if res := e2e.Run(t, "", env, "config", "set", "PeerFirmwareSharing=true"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	res := poll()
	for _, f := range res.Files.File {
		if f.ChunkSize != deviceupdate.ChunkSize || f.Chunks != f.Name+".chunks" || len(f.ChunksSHA256) != 64 {
			t.Fatalf("file %+v: want a chunk list", f)
		}
		resp, err := http.Get(res.BaseURL + "/" + f.Chunks)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(text)
		if resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != f.ChunksSHA256 {
			t.Fatalf("%s: %d, hash %x, answer says %s", f.Chunks, resp.StatusCode, sum, f.ChunksSHA256)
		}
		if f.Name != "CPE.nbt" {
			continue
		}
		lines := strings.Fields(string(text))
		if len(lines) != 3 {
			t.Fatalf("%d chunk hashes for %d bytes, want 3", len(lines), len(image))
		}
		for i, l := range lines {
			piece := image[i*deviceupdate.ChunkSize : min((i+1)*deviceupdate.ChunkSize, len(image))]
			if h := sha256.Sum256(piece); hex.EncodeToString(h[:]) != l {
				t.Errorf("chunk %d: list says %s", i, l)
			}
		}
	}
	resp, err := http.Get(res.BaseURL + "/NOPE.nbt.chunks")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("chunk list of a file not in the update: %d", resp.StatusCode)
	}
}
