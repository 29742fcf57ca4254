package phone

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
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
}

// SimResult is what a simulated site did.
type SimResult struct {
	Phones      int      `json:"phones"`
	Updated     int      `json:"updated"`     // phones that ended on the offered version, every file verified
	ServerBytes int64    `json:"serverBytes"` // file bytes the phones read from the server
	PeerBytes   int64    `json:"peerBytes"`   // verified bytes the phones received from peers
	Seconds     float64  `json:"seconds"`     // from the boot to the last phone's end
	Offered     string   `json:"offered,omitempty"`
	FileBytes   int64    `json:"fileBytes"`        // the offered files' size: one copy of the update
	Errors      []string `json:"errors,omitempty"` // the distinct failures, with how many phones had each
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
// updated or failed. The phones keep serving their peers until all are
// done.
func Sim(ctx context.Context, o SimOptions) (SimResult, error) {
	res := SimResult{Phones: o.Count}
	if o.Count <= 0 {
		return res, deviceupdate.Errorf(deviceupdate.EINVALID, "the number of phones must be positive")
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

	agents := make([]*Agent, len(addrs))
	defer func() {
		for _, a := range agents {
			if a != nil {
				a.Close()
			}
		}
	}()
	for i, addr := range addrs {
		id := o.Identity
		id.MAC, id.Serial = macFor(addr), ""
		cfg := Config{
			Server: o.Server, TLS: o.TLS, Identity: id, Version: o.Version, Trust: o.Trust,
			StateDir: filepath.Join(o.StateDir, id.MAC), LocalAddr: addr, WAN: wan, Sharing: o.Sharing,
			Logger: o.Logger,
		}
		if nodes != nil {
			cfg.Peer = nodes[i]
		}
		a, err := New(cfg)
		if err != nil {
			return res, fmt.Errorf("phone sim: %w", err)
		}
		agents[i] = a
	}

	results := make([]Result, len(agents))
	errs := make([]error, len(agents))
	start := time.Now()
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = a.Poll(ctx, "boot")
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()

	failures := map[string]int{}
	for i, r := range results {
		res.ServerBytes += r.ServerBytes
		res.PeerBytes += r.PeerBytes
		if r.Offered != "" && res.Offered == "" {
			res.Offered, res.FileBytes = r.Offered, r.FileBytes
		}
		switch {
		case r.Updated:
			res.Updated++
		case errs[i] != nil:
			failures[errs[i].Error()]++
		case r.Offered == "":
			failures["nothing was offered"]++
		default:
			failures["offered the version it runs"]++
		}
	}
	for msg, n := range failures {
		res.Errors = append(res.Errors, fmt.Sprintf("%d phones: %s", n, msg))
	}
	sort.Strings(res.Errors)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("phone sim: %w", err)
	}
	return res, nil
}
