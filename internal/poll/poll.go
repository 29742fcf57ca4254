// Package poll answers phones (SPEC §5): which update, if any, to offer
// each poll, with everything the answer tells of it, and which stored
// files may be downloaded.
package poll

import (
	"context"
	"errors"
	"io/fs"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/inventory"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
	"golang.org/x/sync/singleflight"
)

// Service implements deviceupdate.PollService on the store, recording
// every poll with Recorder.
type Service struct {
	DB       store.Store
	Recorder *inventory.Recorder
	Files    *updatestore.Store // the files offered and downloaded
	Now      func() time.Time
	// CapPeriod is the period a staged rollout's --max-per-hour counts new
	// offers over: an hour when zero. Simulations compress it with the
	// hidden serve flag --rollout-hour.
	CapPeriod time.Duration
	// Offers, for a front end of a pool, is what the pool's nodes share of
	// staged rollouts' new offers (the pool's store); nil on a single
	// server, whose trackers know every offer. With it, a new offer is
	// recorded (and counted against the cap) there before it is answered,
	// and a device in the wave that this node never offered the version is
	// looked up there before it is answered the previous one: only then,
	// so that polls of the devices already offered, outside the wave, or
	// running the version never reach the database.
	Offers store.SharedOffers

	cache atomic.Pointer[snapshot]
	reads singleflight.Group // of snapshots, keyed by the generation the callers saw

	trackMu  sync.Mutex
	trackers map[string]*tracker // by rollout ID, of the active rollouts
}

// snapshot holds what an answer reads, as of one store generation.
type snapshot struct {
	gen     uint64
	sites   *deviceupdate.SiteMap
	global  scopeSettings
	scopes  map[string]scopeSettings // by site name, for the sites that have one
	devConf map[string]map[string]string
	devices []deviceupdate.TestDevice
	rules   map[string]*rule // by ID
}

// rule is a rule with the offers of the versions it can give a device,
// its approved and pending ones, made once per store generation, and its
// active staged rollout, if any.
type rule struct {
	deviceupdate.Rule
	offers  []*offer
	rollout *deviceupdate.Rollout
	tracker *tracker
}

// tracker is what the offer decision of a staged rollout reads besides
// the rollout, kept in memory between polls: the devices it offered its
// version to (read from the store when the rollout is first seen, so a
// restart decides the same) and its new offers in the current hour.
type tracker struct {
	mu      sync.Mutex
	offered map[string]bool
	hour    int64 // the cap period count is of: Unix time / period
	count   int
	// full is, in a pool, 1 + the cap period in which the pool's store
	// refused a new offer (the pool made the cap): until that period ends
	// this node asks it no more. Zero: none.
	full int64
	// absent are, in a pool, the devices of the wave the pool's store
	// said were never offered while the pool's cap of the period t.hour
	// was reached: no node offers more in that period, so the answer
	// holds until it ends (to within the nodes' clocks' difference), and
	// their next polls in it do not ask again. Emptied as the period ends.
	absent map[string]bool
}

// trackerOf returns the tracker of an active rollout, loading the devices
// it offered its version to from the store the first time.
func (s *Service) trackerOf(r *deviceupdate.Rollout, now time.Time, keep map[string]*tracker) (*tracker, error) {
	s.trackMu.Lock()
	t := s.trackers[r.ID]
	s.trackMu.Unlock()
	if t == nil {
		devices, err := s.DB.RolloutDevices(r.ID)
		if err != nil {
			return nil, err
		}
		t = &tracker{offered: make(map[string]bool, len(devices)), hour: s.capPeriod(now)}
		for _, d := range devices {
			if d.OfferedAt.IsZero() {
				continue // held, not offered yet
			}
			t.offered[d.Device] = true
			if s.capPeriod(d.OfferedAt) == t.hour {
				t.count++
			}
		}
		// Of two snapshots made at once, both use the first tracker.
		s.trackMu.Lock()
		if first := s.trackers[r.ID]; first != nil {
			t = first
		} else {
			if s.trackers == nil {
				s.trackers = map[string]*tracker{}
			}
			s.trackers[r.ID] = t
		}
		s.trackMu.Unlock()
	}
	keep[r.ID] = t
	return t, nil
}

// capPeriod numbers the period of a rollout's hourly cap that t is in.
func (s *Service) capPeriod(t time.Time) int64 {
	p := s.CapPeriod
	if p <= 0 {
		p = time.Hour
	}
	return t.UnixNano() / int64(p)
}

// decideRollout is deviceupdate.Decide for a module under an active
// rollout, noting a new offer of its version.
func (s *Service) decideRollout(r *rule, in deviceupdate.OfferInput, now time.Time, loc *time.Location) (deviceupdate.Offer, error) {
	t := r.tracker
	h := s.capPeriod(now)
	t.mu.Lock()
	if h != t.hour {
		t.hour, t.count, t.absent = h, 0, nil
	}
	in.Rollout, in.RolloutOffered, in.Now, in.Location, in.OffersThisHour = r.rollout, t.offered[in.Device], now, loc, t.count
	full := t.full == h+1
	if s.Offers != nil {
		// The pool counts new offers: this node's count is not the cap's.
		in.OffersThisHour = 0
		if full {
			in.OffersThisHour = r.rollout.MaxPerHour
		}
	}
	d := deviceupdate.Decide(in)
	fresh := d.Reason == deviceupdate.OfferRollout && !in.RolloutOffered
	if s.Offers == nil || in.RolloutOffered || (t.absent[in.Device] && !fresh) {
		if fresh {
			t.offered[in.Device] = true
			t.count++
		}
		t.mu.Unlock()
		return d, nil
	}
	t.mu.Unlock()
	if fresh {
		return s.offerShared(r, in, d, now, h)
	}
	// Would another node's offer change the answer? Only then ask the pool
	// (a device of the wave, not running the version, while the window is
	// closed, the cap reached or the rollout paused).
	known := in
	known.RolloutOffered = true
	if deviceupdate.Decide(known) == d {
		return d, nil
	}
	offered, err := s.Offers.RolloutOffered(r.rollout.ID, in.Device)
	if err != nil {
		return d, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if offered {
		t.offered[in.Device] = true
		return deviceupdate.Decide(known), nil
	}
	// Only a look-up made once the cap was known reached holds for the
	// rest of the period: one made before may have missed the last offers.
	if full && t.hour == h {
		if t.absent == nil {
			t.absent = map[string]bool{}
		}
		t.absent[in.Device] = true
	}
	return d, nil
}

// offerShared makes the new offer d of a rollout's version in a pool: it
// records it in the pool's store, counted against the cap, and answers it
// unless the pool's cap of the period is reached, when it answers as
// Decide does past the cap.
func (s *Service) offerShared(r *rule, in deviceupdate.OfferInput, d deviceupdate.Offer, now time.Time, h int64) (deviceupdate.Offer, error) {
	t := r.tracker
	ok, err := s.Offers.OfferRollout(r.rollout.ID, in.Device, now, h, r.rollout.MaxPerHour)
	if err != nil {
		return deviceupdate.Offer{}, err
	}
	if ok {
		t.remember(in.Device)
		return d, nil
	}
	t.mu.Lock()
	t.full = h + 1
	t.mu.Unlock()
	in.OffersThisHour = r.rollout.MaxPerHour
	return deviceupdate.Decide(in), nil
}

// remember notes that the tracker's rollout offered its version to device.
func (t *tracker) remember(device string) {
	t.mu.Lock()
	t.offered[device] = true
	t.mu.Unlock()
}

// offer is an update as answers offer it: its folder's path and its
// files, listed once; with their chunk lists once a phone that shares
// files with its peers is offered it.
type offer struct {
	update *deviceupdate.StoredUpdate
	path   string
	files  []deviceupdate.OfferedFile
	shared atomic.Pointer[[]deviceupdate.OfferedFile]
}

func newOffer(u *deviceupdate.StoredUpdate) *offer {
	return &offer{update: u, path: updatestore.Rel(u.RuleKey, u.Version), files: deviceupdate.OfferFiles(u)}
}

// sharedFiles returns the offer's files with their chunk lists, which
// Files reads once per content. A failure is not kept: a later poll
// tries again.
func (o *offer) sharedFiles(files *updatestore.Store) ([]deviceupdate.OfferedFile, error) {
	if p := o.shared.Load(); p != nil {
		return *p, nil
	}
	out := make([]deviceupdate.OfferedFile, len(o.files))
	for i, f := range o.files {
		cl, err := files.ChunkList(o.update.RuleKey, o.update.Version, f.UpdateFile)
		if err != nil {
			return nil, err
		}
		out[i] = f.WithChunkList(cl)
	}
	o.shared.Store(&out)
	return out, nil
}

// scopeSettings are the settings a poll's answer needs, resolved for one
// scope (global, or a site over global).
type scopeSettings struct {
	overrides                  map[string]string // the scope's own, for per-device resolution
	global                     map[string]string
	interval                   int
	internalHost, externalHost string
	location                   *time.Location // of a staged rollout's window
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
		case "TimeZone":
			ss.location = deviceupdate.LoadTimeZone(v.Value)
		}
	}
	return ss
}

// current returns the decision inputs, re-read from the store only when a
// change was committed since they were last read. The generation is read
// first, so a change that lands while they are read makes the next call
// read again: an answer is never staler than the last commit.
//
// The callers that find the snapshot stale at the same generation share
// one read. After a change every poll finds it stale, and on PostgreSQL a
// read is a dozen round trips: a boot storm that came right after an
// approve had all of a node's polls reading at once, and the first 0.8 s
// of polls waited for one another (p99 150-270 ms over the storm in
// scripts/pool-storm.sh; 15 ms with one read). The shared read starts
// after each of them saw the generation, so it is as new as they need.
func (s *Service) current() (*snapshot, error) {
	gen := s.DB.Generation()
	if c := s.cache.Load(); c != nil && c.gen == gen {
		return c, nil
	}
	v, err, _ := s.reads.Do(strconv.FormatUint(gen, 10), func() (any, error) {
		if c := s.cache.Load(); c != nil && c.gen >= gen {
			return c, nil // read by a caller that saw a later generation
		}
		return s.read()
	})
	if err != nil {
		return nil, err
	}
	return v.(*snapshot), nil
}

// read reads the decision inputs from the store and caches them.
func (s *Service) read() (*snapshot, error) {
	gen := s.DB.Generation()
	global, _, err := s.DB.ConfigOverrides(deviceupdate.ScopeGlobal)
	if err != nil {
		return nil, err
	}
	snap := &snapshot{gen: gen, rules: map[string]*rule{}, scopes: map[string]scopeSettings{},
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
		sr := &rule{Rule: r}
		for _, v := range [...]deviceupdate.Version{r.ApprovedVersion, r.PendingVersion} {
			if v.IsZero() {
				continue
			}
			u, err := s.DB.FindUpdate(r.RuleKey, v)
			if deviceupdate.ErrorCode(err) == deviceupdate.ENOTFOUND {
				continue // offering it fails as the poll asks for it
			}
			if err != nil {
				return nil, err
			}
			sr.offers = append(sr.offers, newOffer(u))
		}
		snap.rules[r.ID] = sr
	}
	rollouts, err := s.DB.Rollouts()
	if err != nil {
		return nil, err
	}
	keep := map[string]*tracker{}
	for i := range rollouts {
		ro := &rollouts[i]
		if sr := snap.rules[ro.RuleID]; sr != nil && ro.Active() {
			if sr.tracker, err = s.trackerOf(ro, s.now(), keep); err != nil {
				return nil, err
			}
			sr.rollout = ro
		}
	}
	s.trackMu.Lock()
	s.trackers = keep
	s.trackMu.Unlock()
	for {
		// Reads of two generations may overlap: the older one does not
		// replace the newer.
		c := s.cache.Load()
		if c != nil && c.gen > gen {
			return snap, nil
		}
		if s.cache.CompareAndSwap(c, snap) {
			return snap, nil
		}
	}
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

// Poll answers the phone and records the poll.
func (s *Service) Poll(ctx context.Context, req deviceupdate.PollRequest, remote string) (*deviceupdate.PollAnswer, error) {
	ans, err := s.answer(ctx, req, remote)
	if err != nil {
		return nil, err
	}
	s.Recorder.Record(req, remote, s.now(), ans.Update, ans.PollInterval)
	return ans, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// answer is the whole answer: the phone's settings, and the offer
// deviceupdate.Decide makes for the first of the phone's modules that a
// rule governs and whose version should change.
func (s *Service) answer(_ context.Context, req deviceupdate.PollRequest, remote string) (*deviceupdate.PollAnswer, error) {
	snap, err := s.current()
	if err != nil {
		return nil, err
	}
	id := req.ID()
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
		in := deviceupdate.OfferInput{Device: id, Running: m.Version, TestDevice: isTest}
		r := snap.rules[deviceupdate.RuleID(req.RuleKey(m))]
		var decision deviceupdate.Offer
		switch {
		case r == nil:
			decision = deviceupdate.Decide(in)
		case r.rollout != nil:
			in.Rule = &r.Rule
			if decision, err = s.decideRollout(r, in, s.now(), ss.location); err != nil {
				return nil, err
			}
		default:
			in.Rule = &r.Rule
			decision = deviceupdate.Decide(in)
		}
		if !decision.Offered() {
			continue
		}
		o, err := s.offerOf(r, decision.Version)
		if err != nil {
			return nil, err
		}
		ans.Update, ans.Path, ans.Files = o.update, o.path, o.files
		if ans.PeerSharing {
			if ans.Files, err = o.sharedFiles(s.Files); err != nil {
				return nil, err
			}
		}
		return ans, nil
	}
	return ans, nil
}

// offerOf returns the offer of version v of r: one the snapshot made,
// else one made now from the update's record.
func (s *Service) offerOf(r *rule, v deviceupdate.Version) (*offer, error) {
	for _, o := range r.offers {
		if o.update.Version == v {
			return o, nil
		}
	}
	u, err := s.DB.FindUpdate(r.RuleKey, v)
	if err != nil {
		return nil, err
	}
	return newOffer(u), nil
}

// file finds a downloadable file by its path below the store, as
// updatestore.ParseFilePath reads it: an image or the catalog of a stored
// update.
func (s *Service) file(path string) (*deviceupdate.StoredUpdate, deviceupdate.UpdateFile, error) {
	notFound := deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no such update file")
	key, v, name, ok := updatestore.ParseFilePath(path)
	if !ok {
		return nil, deviceupdate.UpdateFile{}, notFound
	}
	u, err := s.DB.FindUpdate(key, v)
	// The stored folder is named as the update's own key, whose case may
	// differ from the request's.
	if err != nil || u.RuleKey != key {
		return nil, deviceupdate.UpdateFile{}, notFound
	}
	for _, f := range u.PhoneFiles() {
		if f.Name == name {
			return u, f, nil
		}
	}
	return nil, deviceupdate.UpdateFile{}, notFound
}

// OpenFile implements deviceupdate.PollService.
func (s *Service) OpenFile(ctx context.Context, path string) (*deviceupdate.Download, error) {
	u, f, err := s.file(path)
	if err != nil {
		return nil, err
	}
	d, err := s.Files.OpenFile(ctx, u, f)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no such update file")
	}
	return d, err
}

// ChunkList implements deviceupdate.PollService: the chunk list of a
// stored file, read from the store once per content and kept.
func (s *Service) ChunkList(_ context.Context, path string) (*deviceupdate.ChunkList, error) {
	u, f, err := s.file(path)
	if err != nil {
		return nil, err
	}
	return s.Files.ChunkList(u.RuleKey, u.Version, f)
}
