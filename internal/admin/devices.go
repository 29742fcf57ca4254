package admin

import (
	"context"
	"encoding/json"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
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
// pending ones included. Errors: EINVALID (a cursor it did not give).
func (s *Service) Devices(_ context.Context, f deviceupdate.DeviceFilter) (*deviceupdate.DeviceList, error) {
	after, err := deviceupdate.DecodeCursor(f.Cursor)
	if err != nil {
		return nil, err
	}
	if err := s.inventory().Flush(); err != nil {
		return nil, err
	}
	page, next, err := s.DB.DevicesPage(after, f.Limit, f.Match)
	if err != nil {
		return nil, err
	}
	list := &deviceupdate.DeviceList{Devices: page}
	if next != "" {
		list.Next = deviceupdate.EncodeCursor(next)
	}
	return list, nil
}

// RemoveDevice forgets one device and its own settings, and audits it. A
// poll of it still waiting in the batch is written first and deleted with
// the rest, so it cannot bring the device back.
func (s *Service) RemoveDevice(_ context.Context, id, actor string) (deviceupdate.RemovedDevice, error) {
	e := audit.Entry{Actor: actor, Action: "device.remove", Target: id, Result: audit.ResultOK}
	var removed deviceupdate.RemovedDevice
	norm, err := deviceupdate.DeviceID(id)
	if err == nil {
		e.Target = norm
		err = s.inventory().Forget(func() (err error) {
			removed, err = s.DB.RemoveDevice(norm)
			return err
		})
	}
	if err != nil {
		e.Result = deviceupdate.ErrorMessage(err)
	} else {
		e.Before, _ = json.Marshal(removed)
	}
	return removed, s.audited(e, err)
}

// PruneDevices forgets the devices not heard from for notSeen, and their
// own settings, and audits it; a dry run changes nothing and is not
// audited.
func (s *Service) PruneDevices(_ context.Context, notSeen string, dryRun bool, actor string) (*deviceupdate.PruneResult, error) {
	age, err := deviceupdate.ParseAge(notSeen)
	var res *deviceupdate.PruneResult
	e := audit.Entry{Actor: actor, Action: "device.prune", Target: "inventory", Result: audit.ResultOK}
	if err == nil {
		cutoff := s.now().Add(-age)
		e.Target = "not seen since " + cutoff.UTC().Format(time.RFC3339)
		err = s.inventory().Forget(func() (err error) {
			res, err = s.DB.PruneDevices(cutoff, dryRun)
			return err
		})
	}
	if dryRun {
		return res, err
	}
	if err != nil {
		e.Result = deviceupdate.ErrorMessage(err)
	} else {
		e.After, _ = json.Marshal(res)
	}
	return res, s.audited(e, err)
}
