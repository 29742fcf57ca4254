// Package poll answers phones (SPEC §5): which update, if any, to offer
// each poll, and which stored files may be downloaded.
package poll

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// Service implements deviceupdate.PollService and DeviceService on the
// store, recording every poll with Recorder.
type Service struct {
	DB       *store.DB
	Recorder *inventory.Recorder
	Now      func() time.Time

	cache atomic.Pointer[snapshot]
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
}

func resolveScope(global, site map[string]string, scope string) scopeSettings {
	ss := scopeSettings{overrides: site, global: global}
	for _, v := range deviceupdate.ResolveConfig(global, site, scope) {
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

var (
	_ deviceupdate.PollService   = (*Service)(nil)
	_ deviceupdate.DeviceService = (*Service)(nil)
)

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

// Devices returns the inventory records that match f, the pending ones
// included once flushed.
func (s *Service) Devices(_ context.Context, f deviceupdate.DeviceFilter) ([]deviceupdate.Device, error) {
	if err := s.Recorder.Flush(); err != nil {
		return nil, err
	}
	all, err := s.DB.Devices()
	if err != nil {
		return nil, err
	}
	out := []deviceupdate.Device{}
	for _, d := range all {
		if f.Match(d) {
			out = append(out, d)
		}
	}
	return out, nil
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
