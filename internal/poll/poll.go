// Package poll answers phones (SPEC §5): which update, if any, to offer
// each poll, and which stored files may be downloaded.
package poll

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// Service implements deviceupdate.PollService on the store, recording
// every poll with Recorder.
type Service struct {
	DB       *store.DB
	Recorder *inventory.Recorder
	Now      func() time.Time
	// StoreDir is DeviceUpdateStore, whose files Chunks reads.
	StoreDir string

	cache    atomic.Pointer[snapshot]
	chunksMu sync.Mutex
	chunks   map[chunkKey]*chunkEntry
}

// chunkKey names a file's content: its SHA-256 and size.
type chunkKey struct {
	sha256 string
	size   int64
}

// chunkEntry computes one file's chunk list once, however many polls ask
// for it at the same time.
type chunkEntry struct {
	once sync.Once
	cl   *deviceupdate.ChunkList
	err  error
}

// snapshot holds what a decision reads, as of one store generation.
type snapshot struct {
	gen     uint64
	sites   *deviceupdate.SiteMap
	global  scopeSettings
	scopes  map[string]scopeSettings // by site name, for the sites that have one
	devConf map[string]map[string]string
	devices []deviceupdate.TestDevice
	rules   map[string]deviceupdate.Rule // by ID
}

// scopeSettings are the settings a poll's answer needs, resolved for one
// scope (global, or a site over global).
type scopeSettings struct {
	overrides                  map[string]string // the scope's own, for per-device resolution
	global                     map[string]string
	interval                   int
	internalHost, externalHost string
	logs                       deviceupdate.LogSettings
}

func resolveScope(global, site map[string]string, scope string) scopeSettings {
	ss := scopeSettings{overrides: site, global: global}
	values := deviceupdate.ResolveConfig(global, site, scope)
	ss.logs = deviceupdate.LogSettingsFrom(values)
	for _, v := range values {
		switch v.Name {
		case "PollIntervalSeconds":
			ss.interval, _ = strconv.Atoi(v.Value)
		case "InternalHostName":
			ss.internalHost = v.Value
		case "ExternalHostName":
			ss.externalHost = v.Value
		}
	}
	return ss
}

// current returns the decision inputs, re-read from the store only when a
// change was committed since they were last read. The generation is read
// first, so a change that lands while they are read makes the next call
// read again: an answer is never staler than the last commit.
func (s *Service) current() (*snapshot, error) {
	gen := s.DB.Generation()
	if c := s.cache.Load(); c != nil && c.gen == gen {
		return c, nil
	}
	global, _, err := s.DB.ConfigOverrides(deviceupdate.ScopeGlobal)
	if err != nil {
		return nil, err
	}
	snap := &snapshot{gen: gen, rules: map[string]deviceupdate.Rule{}, scopes: map[string]scopeSettings{},
		global: resolveScope(global, nil, deviceupdate.ScopeGlobal)}
	sites, err := s.DB.Sites()
	if err != nil {
		return nil, err
	}
	if snap.sites, err = deviceupdate.NewSiteMap(sites); err != nil {
		return nil, err
	}
	for _, site := range sites {
		scope := "site:" + site.Name
		_, over, err := s.DB.ConfigOverrides(scope)
		if err != nil {
			return nil, err
		}
		snap.scopes[site.Name] = resolveScope(global, over, scope)
	}
	if snap.devConf, err = s.DB.DeviceConfigs(); err != nil {
		return nil, err
	}
	if snap.devices, err = s.DB.TestDevices(); err != nil {
		return nil, err
	}
	rules, err := s.DB.Rules()
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		snap.rules[r.ID] = r
	}
	s.cache.Store(snap)
	return snap, nil
}

// LogSettings returns the device log settings for a phone at remote:
// its site's, else the global ones; "" gives the global ones.
func (s *Service) LogSettings(remote string) (deviceupdate.LogSettings, error) {
	snap, err := s.current()
	if err != nil {
		return deviceupdate.LogSettings{}, err
	}
	if ss, ok := snap.scopes[snap.sites.Site(remote)]; ok && remote != "" {
		return ss.logs, nil
	}
	return snap.global.logs, nil
}

var _ deviceupdate.PollService = (*Service)(nil)

// Poll decides what to offer the phone and records the poll.
func (s *Service) Poll(ctx context.Context, req deviceupdate.PollRequest, remote string) (*deviceupdate.PollAnswer, error) {
	ans, err := s.decide(ctx, req, remote)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	s.Recorder.Record(req, remote, now(), ans.Update)
	return ans, nil
}

// decide is the offer: for the first of the phone's modules that a rule
// governs and whose version should change, that rule's target.
func (s *Service) decide(_ context.Context, req deviceupdate.PollRequest, remote string) (*deviceupdate.PollAnswer, error) {
	snap, err := s.current()
	if err != nil {
		return nil, err
	}
	id := req.MAC
	if id == "" {
		id = req.Serial
	}
	site := snap.sites.Site(remote)
	ss, ok := snap.scopes[site]
	if !ok {
		ss = snap.global
	}
	ans := &deviceupdate.PollAnswer{
		PollInterval: deviceupdate.JitteredInterval(ss.interval, id),
		PeerSharing:  deviceupdate.PeerSharingFor(snap.devConf[id], ss.overrides, ss.global),
		InternalHost: ss.internalHost, ExternalHost: ss.externalHost, Site: site,
	}
	isTest := false
	for _, d := range snap.devices {
		if d.Matches(req.MAC, req.Serial, site) {
			isTest = true
			break
		}
	}
	for _, m := range req.Modules {
		rule, ok := snap.rules[deviceupdate.RuleID(req.RuleKey(m))]
		if !ok {
			continue
		}
		target, offer := deviceupdate.Decide(&rule, m.Version, isTest)
		if !offer {
			continue
		}
		u, err := s.DB.FindUpdate(rule.RuleKey, target)
		if err != nil {
			return nil, err
		}
		ans.Offer, ans.Update = true, u
		return ans, nil
	}
	return ans, nil
}

// UpdateFile finds a downloadable file by its store path
// DeviceType/Brand/Model/Revision/Locale/Version/UpdateType/Name: an
// image or the catalog of a stored update.
func (s *Service) UpdateFile(_ context.Context, path string) (*deviceupdate.StoredUpdate, *deviceupdate.UpdateFile, error) {
	notFound := deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no such update file")
	p := strings.Split(path, "/")
	if len(p) != 8 {
		return nil, nil, notFound
	}
	key := deviceupdate.RuleKey{DeviceType: p[0], Brand: p[1], Model: p[2], Revision: p[3], Locale: p[4], UpdateType: p[6]}
	v, err := deviceupdate.ParseVersion(p[5])
	if key.Validate() != nil || err != nil || !deviceupdate.ValidFileName(p[7]) {
		return nil, nil, notFound
	}
	u, err := s.DB.FindUpdate(key, v)
	if err != nil {
		return nil, nil, notFound
	}
	// The stored folder is named as the update's own key, whose case may
	// differ from the request's.
	if u.RuleKey != key {
		return nil, nil, notFound
	}
	for _, f := range append(append([]deviceupdate.UpdateFile{}, u.Images...), u.Catalog) {
		if f.Name == p[7] {
			return u, &f, nil
		}
	}
	return nil, nil, notFound
}

// Chunks implements deviceupdate.PollService: the chunk list of a stored
// file, read from the store once per content and kept. A failure is not
// kept, so a later poll tries again.
func (s *Service) Chunks(_ context.Context, u *deviceupdate.StoredUpdate, f *deviceupdate.UpdateFile) (*deviceupdate.ChunkList, error) {
	key := chunkKey{f.SHA256, f.Size}
	s.chunksMu.Lock()
	if s.chunks == nil {
		s.chunks = map[chunkKey]*chunkEntry{}
	}
	e := s.chunks[key]
	if e == nil {
		e = &chunkEntry{}
		s.chunks[key] = e
	}
	s.chunksMu.Unlock()
	e.once.Do(func() { e.cl, e.err = s.readChunks(u, f) })
	if e.err != nil {
		s.chunksMu.Lock()
		if s.chunks[key] == e {
			delete(s.chunks, key)
		}
		s.chunksMu.Unlock()
	}
	return e.cl, e.err
}

func (s *Service) readChunks(u *deviceupdate.StoredUpdate, f *deviceupdate.UpdateFile) (*deviceupdate.ChunkList, error) {
	root, err := os.OpenRoot(s.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("chunk list: %w", err)
	}
	defer root.Close()
	rel := strings.Join([]string{u.DeviceType, u.Brand, u.Model, u.Revision, u.Locale, u.Version.String(), u.UpdateType, f.Name}, "/")
	file, err := root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("chunk list of %s: %w", rel, err)
	}
	defer file.Close()
	cl, err := deviceupdate.NewChunkList(file, f.Size)
	if err != nil {
		return nil, fmt.Errorf("chunk list of %s: %w", rel, err)
	}
	return cl, nil
}
