package admin

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

var _ deviceupdate.DeviceService = (*Service)(nil)

// Inventory is where polls wait, batched, before they reach the store
// (internal/inventory's Recorder).
type Inventory interface {
	// Flush writes what is pending.
	Flush() error
	// Forget runs forget once what is pending is written, with no flush
	// until it returns.
	Forget(forget func() error) error
}

// pollRate is an Inventory that counts the polls of the last minute.
type pollRate interface {
	PollsLastMinute() int
}

// inventory returns s.Inventory, or one with nothing pending.
func (s *Service) inventory() Inventory {
	if s.Inventory == nil {
		return noBatch{}
	}
	return s.Inventory
}

type noBatch struct{}

func (noBatch) Flush() error                     { return nil }
func (noBatch) Forget(forget func() error) error { return forget() }

// Devices returns a page of the inventory records that match f, the
// pending ones included once they can be written; while they cannot (a
// full disk), the stored ones. Errors: EINVALID (a cursor it did not give,
// a search too long, a bad key).
func (s *Service) Devices(_ context.Context, f deviceupdate.DeviceFilter) (*deviceupdate.DeviceList, error) {
	after, err := deviceupdate.DecodeCursor(f.Cursor)
	if err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var sites *deviceupdate.SiteMap
	if f.Site != "" {
		all, err := s.DB.Sites()
		if err != nil {
			return nil, err
		}
		if sites, err = deviceupdate.NewSiteMap(all); err != nil {
			return nil, err
		}
	}
	s.flushInventory("devices listed")
	var match func(deviceupdate.Device) bool
	if f != (deviceupdate.DeviceFilter{Page: f.Page}) {
		match = f.Matcher(sites)
	}
	page, next, err := s.DB.DevicesPage(after, f.Limit, match)
	if err != nil {
		return nil, err
	}
	list := &deviceupdate.DeviceList{Devices: page}
	if next != "" {
		list.Next = deviceupdate.EncodeCursor(next)
	}
	return list, nil
}

// flushInventory writes the records waiting, so that what is read next
// includes the last polls; while they cannot be written, it is read
// without them.
func (s *Service) flushInventory(what string) {
	if err := s.inventory().Flush(); err != nil && s.Logger != nil {
		s.Logger.Warn(what+" without the records waiting to be written", zap.Error(err))
	}
}

// Device returns one device's record, with its versions over time.
// Errors: EINVALID, ENOTFOUND.
func (s *Service) Device(_ context.Context, id string) (deviceupdate.Device, error) {
	norm, err := deviceupdate.DeviceID(id)
	if err != nil {
		return deviceupdate.Device{}, err
	}
	s.flushInventory("device read")
	return s.DB.Device(norm)
}

// Summary returns the fleet at a glance: the store's counts per rule key
// and version, kept as polls are written (so up to a flush interval
// behind them), with the rules' approved and pending versions.
func (s *Service) Summary(context.Context) (deviceupdate.FleetSummary, error) {
	n, models, err := s.DB.FleetCounts()
	if err != nil {
		return deviceupdate.FleetSummary{}, err
	}
	rules, err := s.DB.Rules()
	if err != nil {
		return deviceupdate.FleetSummary{}, err
	}
	sum := deviceupdate.SummarizeFleet(n, models, rules)
	if r, ok := s.Inventory.(pollRate); ok {
		sum.PollsLastMinute = r.PollsLastMinute()
	}
	return sum, nil
}

// RemoveDevice forgets one device and its own settings, and audits it. A
// poll of it still waiting in the batch is written first and deleted with
// the rest, so it cannot bring the device back.
func (s *Service) RemoveDevice(_ context.Context, id, actor string) (removed deviceupdate.RemovedDevice, err error) {
	e := audit.Entry{Actor: actor, Action: "device.remove", Target: id}
	norm, err := deviceupdate.DeviceID(id)
	if err != nil {
		return removed, s.refuse(e, err)
	}
	e.Target = norm
	err = s.forget(e, func(tx store.Store, e *audit.Entry) (err error) {
		if removed, err = tx.RemoveDevice(norm); err != nil {
			return err
		}
		e.Before, _ = json.Marshal(removed)
		return nil
	})
	if err != nil {
		return deviceupdate.RemovedDevice{}, err
	}
	return removed, nil
}

// PruneDevices forgets the devices not heard from for notSeen, and their
// own settings, and audits it; a dry run changes nothing and is not
// audited.
func (s *Service) PruneDevices(_ context.Context, notSeen string, dryRun bool, actor string) (res *deviceupdate.PruneResult, err error) {
	age, err := deviceupdate.ParseAge(notSeen)
	cutoff := s.now().Add(-age)
	switch {
	case dryRun && err == nil:
		err = s.inventory().Forget(func() (err error) {
			res, err = s.DB.PruneDevices(cutoff, true)
			return err
		})
		return res, err
	case dryRun:
		return nil, err
	}
	e := audit.Entry{Actor: actor, Action: "device.prune", Target: "inventory"}
	if err != nil {
		return nil, s.refuse(e, err)
	}
	e.Target = "not seen since " + cutoff.UTC().Format(time.RFC3339)
	err = s.forget(e, func(tx store.Store, e *audit.Entry) (err error) {
		if res, err = tx.PruneDevices(cutoff, false); err != nil {
			return err
		}
		e.After, _ = json.Marshal(res)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// forget makes an audited change that deletes devices once the polls
// waiting in the batch are written; when they cannot be, the change is
// refused, and audited so.
func (s *Service) forget(e audit.Entry, apply func(tx store.Store, e *audit.Entry) error) error {
	ran := false
	err := s.inventory().Forget(func() error {
		ran = true
		return s.change(e, apply)
	})
	if err != nil && !ran {
		return s.refuse(e, err)
	}
	return err
}
