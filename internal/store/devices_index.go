package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// deviceIndex holds what the console asks of the whole inventory, in
// memory: the devices per rule key and version (the dashboard), and a
// compact entry per device that a filtered page is matched against
// without decoding every record. It is read from the store once, on
// first use, and from then on moved by every committed write of the
// devices bucket, under deviceCap.mu, which orders those writes; its
// changes are idempotent (set a device, delete a device), so one that
// arrives after the build already saw it changes nothing.
//
// It costs about 200 bytes a device (strings of models and keys are
// shared).
type deviceIndex struct {
	mu      sync.RWMutex
	built   bool
	devices map[string]*indexed
	sorted  []*indexed                         // every device, by ID: what a filtered page walks
	added   bool                               // devices were added since sorted was
	keys    map[deviceupdate.RuleKey]*keyCount // as phones write a key
	canon   map[string]*keyCount               // lower-cased key → its counts
	idents  map[identity]*identity
	strs    map[string]string // update types, shared
}

// identity is what devices of one model share, stored once.
type identity struct{ deviceType, brand, model, revision, locale string }

// indexed is one device in the index: enough to filter it.
type indexed struct {
	id       string
	ident    *identity
	mac      string
	serial   string
	user     string
	remote   string
	lastSeen int64          // Unix nanoseconds; 0 for never polled
	modules  []deviceModule // the modules it reported in its last poll
}

type deviceModule struct {
	updateType string
	version    deviceupdate.Version
	count      *keyCount
}

// keyCount counts the devices of one rule key by the version they run.
type keyCount struct {
	key      deviceupdate.RuleKey // as first seen
	versions map[deviceupdate.Version]int
	spelled  []deviceupdate.RuleKey // its entries in deviceIndex.keys
}

func (x *deviceIndex) reset() {
	x.devices = map[string]*indexed{}
	x.sorted, x.added = nil, false
	x.keys = map[deviceupdate.RuleKey]*keyCount{}
	x.canon = map[string]*keyCount{}
	x.idents = map[identity]*identity{}
	x.strs = map[string]string{}
}

// set records d as the device is now stored; hold mu.
func (x *deviceIndex) set(d deviceupdate.Device) {
	old := x.devices[d.ID]
	if old != nil {
		x.uncount(old)
	} else {
		old = &indexed{id: d.ID}
		x.devices[d.ID] = old
		x.sorted, x.added = append(x.sorted, old), true
	}
	e := old
	id := identity{d.DeviceType, d.Brand, d.Model, d.Revision, d.Locale}
	if e.ident == nil || *e.ident != id {
		e.ident = x.idents[id]
		if e.ident == nil {
			e.ident = new(identity) // allocated only for a new one
			*e.ident = id
			x.idents[id] = e.ident
		}
	}
	e.mac = d.MAC
	if d.MAC == d.ID {
		e.mac = e.id
	}
	e.serial, e.user, e.remote = d.Serial, d.UserID, d.Remote
	e.lastSeen = 0
	if !d.LastSeen.IsZero() {
		e.lastSeen = d.LastSeen.UnixNano()
	}
	if cap(e.modules) < len(d.Modules) {
		e.modules = make([]deviceModule, len(d.Modules))
	}
	e.modules = e.modules[:len(d.Modules)]
	for i, m := range d.Modules {
		k := d.RuleKey(m.UpdateType)
		kc := x.keyCount(k)
		kc.versions[m.Version]++
		e.modules[i] = deviceModule{updateType: kc.key.UpdateType, version: m.Version, count: kc}
	}
}

// keyCount returns the counts of k, in any case, made when missing.
func (x *deviceIndex) keyCount(k deviceupdate.RuleKey) *keyCount {
	if kc := x.keys[k]; kc != nil {
		return kc
	}
	lower := strings.ToLower(k.String())
	kc := x.canon[lower]
	if kc == nil {
		kc = &keyCount{key: k, versions: map[deviceupdate.Version]int{}}
		x.canon[lower] = kc
	}
	kc.spelled = append(kc.spelled, k)
	x.keys[k] = kc
	return kc
}

// uncount takes e's modules out of the counts, forgetting a key no device
// reports any more, so that invented keys do not pile up; hold mu.
func (x *deviceIndex) uncount(e *indexed) {
	for _, m := range e.modules {
		kc := m.count
		if kc.versions[m.version]--; kc.versions[m.version] <= 0 {
			delete(kc.versions, m.version)
		}
		if len(kc.versions) == 0 {
			for _, k := range kc.spelled {
				delete(x.keys, k)
			}
			delete(x.canon, strings.ToLower(kc.key.String()))
		}
	}
	e.modules = e.modules[:0]
}

// remove forgets a device; hold mu, and call sort after.
func (x *deviceIndex) remove(id string) {
	if e := x.devices[id]; e != nil {
		x.uncount(e)
		delete(x.devices, id)
		e.id = "" // sort drops it from sorted
		x.added = true
	}
}

// sort puts sorted back in ID order without the removed devices, after a
// change added or removed some: once per committed write, so a boot storm
// of new devices costs a sort per flush, not per device.
func (x *deviceIndex) sort() {
	if !x.added {
		return
	}
	kept := x.sorted[:0]
	for _, e := range x.sorted {
		if e.id != "" {
			kept = append(kept, e)
		}
	}
	clear(x.sorted[len(kept):])
	x.sorted, x.added = kept, false
	slices.SortFunc(x.sorted, func(a, b *indexed) int { return strings.Compare(a.id, b.id) })
}

// after returns the position in sorted of the first device whose ID
// sorts after id.
func (x *deviceIndex) after(id string) int {
	i, found := slices.BinarySearchFunc(x.sorted, id, func(e *indexed, id string) int { return strings.Compare(e.id, id) })
	if found {
		i++
	}
	return i
}

// device returns the part of a Device that e holds, which is what
// DeviceFilter reads; modules is room for its modules.
func (e *indexed) device(modules []deviceupdate.Module) deviceupdate.Device {
	for i, m := range e.modules {
		modules[i] = deviceupdate.Module{UpdateType: m.updateType, Version: m.version}
	}
	d := deviceupdate.Device{ID: e.id, MAC: e.mac, Serial: e.serial, UserID: e.user, Remote: e.remote, Modules: modules[:len(e.modules)],
		DeviceType: e.ident.deviceType, Brand: e.ident.brand, Model: e.ident.model, Revision: e.ident.revision, Locale: e.ident.locale}
	if e.lastSeen != 0 {
		d.LastSeen = unixNano(e.lastSeen)
	}
	return d
}

// index returns the device index, read from the store when it is not
// yet; its mu is read-locked, and release unlocks it.
func (db *DB) index() (x *deviceIndex, release func(), err error) {
	x = &db.devIndex
	x.mu.RLock()
	if x.built {
		return x, x.mu.RUnlock, nil
	}
	x.mu.RUnlock()
	db.cap.mu.Lock()
	defer db.cap.mu.Unlock()
	x.mu.Lock()
	if !x.built {
		x.reset()
		err = db.bolt.View(func(tx *bolt.Tx) error {
			db.countDevices(tx)
			return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
				var d deviceupdate.Device
				if err := json.Unmarshal(v, &d); err != nil {
					return fmt.Errorf("decode device %s: %w", k, err)
				}
				x.set(d)
				return nil
			})
		})
		x.sort()
		if err != nil {
			x.reset()
			x.mu.Unlock()
			return nil, nil, fmt.Errorf("index devices: %w", err)
		}
		x.built = true
	}
	x.mu.Unlock()
	x.mu.RLock()
	return x, x.mu.RUnlock, nil
}

// BuildDeviceIndex reads the inventory into the in-memory index the
// dashboard and filtered device lists use, so that the first of them does
// not wait for it. Later calls do nothing.
func (db *DB) BuildDeviceIndex() error {
	_, release, err := db.index()
	if err != nil {
		return err
	}
	release()
	return nil
}

// indexChange is what a committed write did to the devices bucket: the
// devices of batch at the positions set were written, those in remove
// deleted. A PutDevices names its batch's records rather than copying
// the merged ones: what the index reads of a poll's record is the poll's
// (deviceupdate.Device.Merge), and a new device's record is its delta.
type indexChange struct {
	batch  []deviceupdate.Device
	set    []int32
	remove []string
}

// apply moves the index by c once c is committed; hold cap.mu. Before the
// index is built there is nothing to move: the build reads the store.
func (x *deviceIndex) apply(c *indexChange) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.built {
		return
	}
	for _, id := range c.remove {
		x.remove(id)
	}
	for _, i := range c.set {
		x.set(c.batch[i])
	}
	x.sort()
}

// FleetCounts returns how many devices the inventory holds and, per rule
// key (in any case, spelled as first seen), how many run each version;
// deviceupdate.SummarizeFleet completes them with the rules. The counts
// include every committed write; they are kept as writes land, not
// counted per call.
func (db *DB) FleetCounts() (int, []deviceupdate.ModelSummary, error) {
	x, release, err := db.index()
	if err != nil {
		return 0, nil, err
	}
	defer release()
	out := make([]deviceupdate.ModelSummary, 0, len(x.canon))
	for _, kc := range x.canon {
		m := deviceupdate.ModelSummary{RuleKey: kc.key, Versions: make([]deviceupdate.VersionCount, 0, len(kc.versions))}
		for v, n := range kc.versions {
			m.Versions = append(m.Versions, deviceupdate.VersionCount{Version: v, Devices: n})
		}
		out = append(out, m)
	}
	return len(x.devices), out, nil
}

func unixNano(n int64) time.Time { return time.Unix(0, n).UTC() }
