package poll_test

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/handler"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
	"github.com/deviceupdate/deviceupdate/internal/poll"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// cx600 is the rule key of the fixture's updates.
var cx600 = deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}

var v = deviceupdate.MustParseVersion

// fixture is a poll service on a real store in a temporary data folder,
// and the handler stack in front of it.
type fixture struct {
	db    *store.DB
	data  string
	rec   *inventory.Recorder
	files *updatestore.Store
	svc   *poll.Service
	h     *handler.Server
	now   time.Time
}

// newFixture opens a store in t.TempDir, with the inventory recording
// into it and the handler serving the poll service, as serve wires them.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	data := t.TempDir()
	db, err := store.Open(data, store.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.OpenRequestLog(data, "test")
	if err != nil {
		t.Fatal(err)
	}
	rec := inventory.New(db, log, zap.NewNop(), time.Hour)
	files := updatestore.New(data, zap.NewNop())
	if err := files.Create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })
	f := &fixture{db: db, data: data, rec: rec, files: files, now: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)}
	t.Cleanup(func() {
		f.rec.Close()
		if err := f.db.Check(); err != nil {
			t.Error(err)
		}
		f.db.Close()
	})
	f.serve(t)
	return f
}

// serve puts a poll service on the fixture's store and the handler stack
// in front of it.
func (f *fixture) serve(t testing.TB) {
	t.Helper()
	f.svc = &poll.Service{DB: f.db, Recorder: f.rec, Files: f.files, Now: func() time.Time { return f.now }}
	var err error
	f.h, err = handler.New(handler.Config{Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Store: f.db, Polls: f.svc,
		HTTPPort: "80", HTTPSPort: "443"})
	if err != nil {
		t.Fatal(err)
	}
}

// restart closes the inventory and the store, as a stopping server does,
// and opens them again under a new poll service.
func (f *fixture) restart(t testing.TB) {
	t.Helper()
	if err := f.rec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(f.data, store.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.OpenRequestLog(f.data, "test")
	if err != nil {
		t.Fatal(err)
	}
	f.db, f.rec = db, inventory.New(db, log, zap.NewNop(), time.Hour)
	f.serve(t)
}

// content is a file of n bytes that differs by seed.
func content(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

// addUpdate stores version ver of key with the given images and a
// catalog, files and record, as an import leaves them: the rule's
// pending version is ver.
func (f *fixture) addUpdate(t testing.TB, key deviceupdate.RuleKey, ver string, images map[string][]byte) {
	t.Helper()
	dir := f.files.Folder(key, v(ver))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) deviceupdate.UpdateFile {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return deviceupdate.UpdateFile{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
	}
	u := &deviceupdate.StoredUpdate{RuleKey: key, Version: v(ver), Signer: "CN=Polycom", PackageSHA256: strings.Repeat("ab", 32), ImportedAt: f.now}
	for _, name := range slices.Sorted(maps.Keys(images)) {
		u.Images = append(u.Images, write(name, images[name]))
	}
	u.Description = write(key.UpdateType+".xml", []byte("<Update/>"))
	u.Catalog = write(key.UpdateType+".cat", content(1234, byte(len(ver))))
	if _, err := f.db.CommitImport([]*deviceupdate.StoredUpdate{u}); err != nil {
		t.Fatal(err)
	}
}

// approve approves key's pending version.
func (f *fixture) approve(t testing.TB, key deviceupdate.RuleKey) {
	t.Helper()
	if _, _, err := f.db.ChangeRule(deviceupdate.RuleID(key), deviceupdate.RuleApprove, nil); err != nil {
		t.Fatal(err)
	}
}

// change applies a lifecycle action to key's rule.
func (f *fixture) change(t testing.TB, key deviceupdate.RuleKey, action deviceupdate.RuleAction) {
	t.Helper()
	if _, _, err := f.db.ChangeRule(deviceupdate.RuleID(key), action, nil); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) set(t testing.TB, scope string, settings map[string]string) {
	t.Helper()
	if _, _, err := f.db.SetConfig(scope, settings); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) setDevice(t testing.TB, id string, settings map[string]string) {
	t.Helper()
	if _, _, err := f.db.SetDeviceConfig(id, settings); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) addSite(t testing.TB, name, prefix string) {
	t.Helper()
	if _, err := f.db.PutSite(deviceupdate.Site{Name: name, Subnets: []netip.Prefix{netip.MustParsePrefix(prefix)}}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) addTestDevice(t testing.TB, d deviceupdate.TestDevice) {
	t.Helper()
	if _, err := f.db.AddTestDevice(d); err != nil {
		t.Fatal(err)
	}
}

// pollBody is a CX600's poll reporting its MAC and running version.
func pollBody(mac, running string) string {
	return `<Request><DeviceType>UCPhone</DeviceType><MacAddress>` + mac + `</MacAddress><Brand>Polycom</Brand>` +
		`<Model>CX600</Model><Revision>A</Revision><Locale>ENU</Locale><Trigger>periodic</Trigger>` +
		`<Modules><Module UpdateType="CPE" Filename="CPE.nbt" Version="` + running + `"/></Modules></Request>`
}

// post sends a poll through the handler stack as a phone at remote that
// asked for host, and returns the answer's body.
func (f *fixture) post(t testing.TB, host, remote, body string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "http://"+host+"/RequestHandler/ucdevice.upx", strings.NewReader(body))
	req.RemoteAddr = remote + ":40000"
	w := httptest.NewRecorder()
	f.h.Internal().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("poll: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}
