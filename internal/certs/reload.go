package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DefaultReloadInterval is how often, at most, a Reloader looks at the
// server certificate's files.
const DefaultReloadInterval = time.Second

// ReloaderOptions shape a Reloader.
type ReloaderOptions struct {
	Logger   *zap.Logger
	Interval time.Duration // between looks at the files; 0 means DefaultReloadInterval
	Now      func() time.Time
	// Loaded, when set, is called with each certificate loaded, the first
	// one included.
	Loaded func(leaf *x509.Certificate)
}

// Reloader serves the server certificate of a certs folder to TLS
// handshakes (tls.Config.GetCertificate) and picks up a new pair, such as
// Renew writes, without a restart. A handshake looks at server.crt and
// server.key (a stat of each) at most once an interval, and loads them
// only when one changed; a pair that does not load (a certificate without
// its key) keeps the one being served, with an error logged once per
// change. Handshakes never wait for one another.
type Reloader struct {
	dir  string
	opts ReloaderOptions

	cur  atomic.Pointer[tls.Certificate]
	next atomic.Int64 // Unix nanoseconds from which the files are looked at again

	mu   sync.Mutex     // held by the handshake that looks
	seen [2]os.FileInfo // server.crt and server.key as last looked at; nil: missing
}

// NewReloader loads the server pair of dir and returns a Reloader serving
// it.
func NewReloader(dir string, opts ReloaderOptions) (*Reloader, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultReloadInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Reloader{dir: dir, opts: opts}
	r.seen = r.stat()
	pair, err := LoadServer(dir)
	if err != nil {
		return nil, err
	}
	r.cur.Store(&pair)
	r.next.Store(opts.Now().Add(opts.Interval).UnixNano())
	r.loaded(pair.Leaf)
	return r, nil
}

// GetCertificate returns the certificate to present; it has the signature
// of tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if now := r.opts.Now(); now.UnixNano() >= r.next.Load() && r.mu.TryLock() {
		if now.UnixNano() >= r.next.Load() { // not looked at while this one waited
			r.next.Store(now.Add(r.opts.Interval).UnixNano())
			r.look()
		}
		r.mu.Unlock()
	}
	return r.cur.Load(), nil
}

// Leaf returns the certificate being served.
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().Leaf }

// look loads the pair if a file changed since it last looked. r.mu is held.
func (r *Reloader) look() {
	now := r.stat()
	if sameFile(now[0], r.seen[0]) && sameFile(now[1], r.seen[1]) {
		return
	}
	r.seen = now
	pair, err := LoadServer(r.dir)
	if err != nil {
		r.opts.Logger.Error("server certificate changed on disk but was not loaded; still serving the previous one",
			zap.String("certificate", filepath.Join(r.dir, ServerCertFile)), zap.Error(err))
		return
	}
	r.cur.Store(&pair)
	r.opts.Logger.Info("server certificate reloaded",
		zap.String("certificate", filepath.Join(r.dir, ServerCertFile)), zap.String("serial", pair.Leaf.SerialNumber.Text(16)),
		zap.Strings("names", CertNames(pair.Leaf)), zap.Time("not_after", pair.Leaf.NotAfter))
	r.loaded(pair.Leaf)
}

func (r *Reloader) loaded(leaf *x509.Certificate) {
	if r.opts.Loaded != nil && leaf != nil {
		r.opts.Loaded(leaf)
	}
}

func (r *Reloader) stat() [2]os.FileInfo {
	var out [2]os.FileInfo
	for i, name := range []string{ServerCertFile, ServerKeyFile} {
		if fi, err := os.Stat(filepath.Join(r.dir, name)); err == nil {
			out[i] = fi
		}
	}
	return out
}

// sameFile reports whether two looks at a path found the same file,
// unchanged: an atomic write replaces the file (a new inode).
func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
