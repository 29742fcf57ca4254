package certs_test

import (
	"crypto/x509"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/deviceupdate/deviceupdate/internal/certs"
)

// TestReloader: a renewed pair is served once the interval has passed; a
// pair that does not match keeps the one served, with one error logged.
func TestReloader(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Ensure(dir, opts); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if _, err := certs.Ensure(other, opts); err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	advance := func() { now.Add(int64(2 * time.Second)) }
	core, logs := observer.New(zapcore.InfoLevel)
	var loaded []*x509.Certificate
	r, err := certs.NewReloader(dir, certs.ReloaderOptions{Logger: zap.New(core), Now: clock,
		Loaded: func(leaf *x509.Certificate) { loaded = append(loaded, leaf) }})
	if err != nil {
		t.Fatal(err)
	}
	served := func() *x509.Certificate {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil || c == nil || c.Leaf == nil {
			t.Fatalf("GetCertificate = %v, %v", c, err)
		}
		return c.Leaf
	}
	first := served()
	if len(loaded) != 1 || !loaded[0].Equal(first) {
		t.Errorf("Loaded saw %d certificates, want the first one", len(loaded))
	}

	renewed, err := certs.Renew(dir, certs.RenewOptions{Domain: "fabrikam.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !served().Equal(first) {
		t.Error("the files were looked at again within the interval")
	}
	advance()
	if got := served(); !got.Equal(renewed.New) {
		t.Errorf("after the interval, served serial %x, want the renewed %x", got.SerialNumber, renewed.New.SerialNumber)
	}
	if e := logs.FilterMessage("server certificate reloaded").All(); len(e) != 1 || e[0].ContextMap()["serial"] != renewed.New.SerialNumber.Text(16) {
		t.Errorf("reload log lines: %v", e)
	}
	if len(loaded) != 2 {
		t.Errorf("Loaded called %d times, want 2", len(loaded))
	}

	// A certificate without its key: the renewed one stays.
	copyFile(t, filepath.Join(other, "server.crt"), filepath.Join(dir, "server.crt"))
	advance()
	served()
	advance()
	if got := served(); !got.Equal(renewed.New) {
		t.Errorf("a mismatched pair replaced the served certificate (serial %x)", got.SerialNumber)
	}
	if e := logs.FilterMessage("server certificate changed on disk but was not loaded; still serving the previous one").All(); len(e) != 1 {
		t.Errorf("got %d error lines for one mismatched change, want 1", len(e))
	}
	// Its key arrives: served.
	copyFile(t, filepath.Join(other, "server.key"), filepath.Join(dir, "server.key"))
	advance()
	if got, want := served(), readCert(t, filepath.Join(other, "server.crt")); !got.Equal(want) {
		t.Errorf("the completed pair was not served (serial %x, want %x)", got.SerialNumber, want.SerialNumber)
	}
}
