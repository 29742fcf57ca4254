package phone

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/peer"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// SimOptions shape a simulated site.
type SimOptions struct {
	Server string
	TLS    *tls.Config
	Count  int
	// Identity is every phone's model, brand and so on; the MAC and
	// serial are made per phone from its address.
	Identity Identity
	Version  string // the version the phones run
	Trust    *x509.CertPool
	// Sharing: auto obeys each answer's PeerSharing, on and off force it.
	Sharing Sharing
	// WANRate limits, in bytes per second, what the phones together read
	// from the server; 0 does not limit. Peers talk to each other
	// unlimited, as a LAN does.
	WANRate         float64
	StoreAndForward bool
	// FirstAddr is the first phone's address (127.0.1.1 by default); the
	// others follow it, skipping addresses ending in .0 and .255. All of
	// them must be in 127.0.0.0/8, which Linux routes to the loopback.
	FirstAddr netip.Addr
	// PeerPort is the port every phone shares on (4051 by default).
	PeerPort int
	// StateDir holds the phones' state folders; a temporary folder,
	// removed at the end, when empty.
	StateDir string
	Logger   *zap.Logger

	// Duration, when positive, keeps the phones polling that long, each
	// first at a random point of the first PollEvery, then every
	// PollEvery ±10% (a fleet over time); zero polls each phone once, at
	// boot, and waits until each has updated or failed.
	Duration  time.Duration
	PollEvery time.Duration
	// FailRate of the phones (0 to 1; with a Duration) fail the update
	// they are offered in the way FailMode says; which ones is decided by
	// Seed and their identities (failingPhones). With CrashDump they
	// upload a Watson .dmp after updating (revert) or trying to (stuck).
	FailRate  float64
	FailMode  FailMode
	Seed      uint64
	CrashDump bool
}

// SimResult is what a simulated site did.
type SimResult struct {
	Phones int `json:"phones"`
	// Updated counts the phones that switched to an offered version,
	// every file verified: at boot, the phones that ended on it; with a
	// Duration, those that switched at least once.
	Updated     int      `json:"updated"`
	ServerBytes int64    `json:"serverBytes"` // file bytes the phones read from the server
	PeerBytes   int64    `json:"peerBytes"`   // verified bytes the phones received from peers
	Seconds     float64  `json:"seconds"`     // from the boot to the last phone's end
	Offered     string   `json:"offered,omitempty"`
	FileBytes   int64    `json:"fileBytes"`        // the offered files' size: one copy of the update
	Errors      []string `json:"errors,omitempty"` // the distinct failures, with how many phones had each

	Polls    int          `json:"polls"`              // polls the server answered
	FailMode string       `json:"failMode,omitempty"` // with a fail rate
	Failing  int          `json:"failing"`            // phones made to fail
	Failed   int          `json:"failed"`             // of those, the ones whose failure happened (they were offered an update)
	Silent   int          `json:"silent"`             // phones that stopped polling (FailSilent)
	Versions []SimVersion `json:"versions"`           // by version: phones running it at the end, phones offered it
}

// SimAddrs returns n loopback addresses from first on, skipping those
// ending in .0 and .255.
func SimAddrs(first netip.Addr, n int) ([]netip.Addr, error) {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	var out []netip.Addr
	for a := first; len(out) < n; a = a.Next() {
		if !a.IsValid() || !loopback.Contains(a) {
			return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "%d phones from %s do not fit in 127.0.0.0/8", n, first)
		}
		if b := a.As4(); b[3] != 0 && b[3] != 255 {
			out = append(out, a)
		}
	}
	return out, nil
}

// macFor makes a phone's MAC from its address: 02-00 (locally
// administered) and the four bytes of the address.
func macFor(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02-00-%02X-%02X-%02X-%02X", b[0], b[1], b[2], b[3])
}

// Sim boots o.Count phones at once, each on its own loopback address (its
// HTTP connections come from it, and it shares on it), reading from the
// server through one shared WAN limiter, and waits until each has
// updated or failed; with o.Duration, the phones poll over that time
// instead, and o.FailRate of them fail as o.FailMode says. The phones
// keep serving their peers until all are done.
func Sim(ctx context.Context, o SimOptions) (SimResult, error) {
	res := SimResult{Phones: o.Count}
	switch {
	case o.Count <= 0:
		return res, deviceupdate.Errorf(deviceupdate.EINVALID, "the number of phones must be positive")
	case o.Duration < 0 || o.Duration > 0 && o.PollEvery <= 0:
		return res, deviceupdate.Errorf(deviceupdate.EINVALID, "a simulation over time needs a positive duration and poll interval")
	case math.IsNaN(o.FailRate) || o.FailRate < 0 || o.FailRate > 1:
		return res, deviceupdate.Errorf(deviceupdate.EINVALID, "the fail rate must be from 0 to 1")
	case o.FailRate > 0 && o.Duration == 0:
		return res, deviceupdate.Errorf(deviceupdate.EINVALID, "failing phones need a duration: a failure shows over several polls")
	case o.FailRate > 0 && o.FailMode == FailNone:
		return res, deviceupdate.Errorf(deviceupdate.EINVALID, "failing phones need a fail mode: revert, stuck or silent")
	}
	if o.FailRate > 0 {
		res.FailMode = o.FailMode.String()
	}
	if !o.FirstAddr.IsValid() {
		o.FirstAddr = netip.MustParseAddr("127.0.1.1")
	}
	if o.PeerPort == 0 {
		o.PeerPort = upx.PeerPort
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	addrs, err := SimAddrs(o.FirstAddr, o.Count)
	if err != nil {
		return res, err
	}
	if o.StateDir == "" {
		dir, err := os.MkdirTemp("", "deviceupdate-phone-sim-")
		if err != nil {
			return res, fmt.Errorf("phone sim: %w", err)
		}
		defer os.RemoveAll(dir)
		o.StateDir = dir
	}
	var wan *rate.Limiter
	if o.WANRate > 0 {
		wan = NewWANLimiter(o.WANRate)
	}

	var nodes []*peer.Node
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	if o.Sharing != SharingOff {
		ports := make([]netip.AddrPort, len(addrs))
		for i, a := range addrs {
			ports[i] = netip.AddrPortFrom(a, uint16(o.PeerPort))
		}
		for i, a := range addrs {
			others := make([]netip.AddrPort, 0, len(ports)-1)
			others = append(append(others, ports[:i]...), ports[i+1:]...)
			disc, err := peer.NewUDPList(ports[i], others)
			if err != nil {
				return res, fmt.Errorf("phone sim: discovery on %s: %w", ports[i], err)
			}
			n, err := peer.NewNode(peer.Config{Addr: a, Port: o.PeerPort, Discovery: disc, StoreAndForward: o.StoreAndForward,
				Logger: o.Logger.With(zap.String("peer", a.String()))})
			if err != nil { // it closed disc
				return res, fmt.Errorf("phone sim: peer on %s: %w", ports[i], err)
			}
			nodes = append(nodes, n)
		}
	}

	phones := make([]*simPhone, len(addrs))
	defer func() {
		for _, p := range phones {
			if p != nil {
				p.a.Close()
			}
		}
	}()
	ids := make([]string, len(addrs))
	for i, addr := range addrs {
		ids[i] = macFor(addr)
	}
	failing := failingPhones(ids, o.FailRate, o.Seed)
	for i, addr := range addrs {
		id := o.Identity
		id.MAC, id.Serial = ids[i], ""
		cfg := Config{
			Server: o.Server, TLS: o.TLS, Identity: id, Version: o.Version, Trust: o.Trust,
			StateDir: filepath.Join(o.StateDir, id.MAC), LocalAddr: addr, WAN: wan, Sharing: o.Sharing,
			Logger: o.Logger, NoSync: true,
		}
		if o.Duration > 0 {
			// Time runs faster in a fleet over time: a phone told to come
			// back in a minute (a busy server's Retry-After) comes back
			// within one poll interval, as it would when phones poll daily.
			cfg.MaxRetryWait = o.PollEvery
		}
		if nodes != nil {
			cfg.Peer = nodes[i]
		}
		a, err := New(cfg)
		if err != nil {
			return res, fmt.Errorf("phone sim: %w", err)
		}
		fail := FailNone
		if failing[i] {
			fail = o.FailMode
		}
		phones[i] = newSimPhone(a, i, fail, &o)
	}

	start := time.Now()
	var wg sync.WaitGroup
	for _, p := range phones {
		wg.Go(func() { p.run(ctx, start) })
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	tally(&res, phones, o.Duration == 0)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("phone sim: %w", err)
	}
	return res, nil
}
