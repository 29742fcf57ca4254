// Package admin implements the admin services the API serves: rule
// changes, each written to the audit trail, and reading and verifying that
// trail.
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

// Service serves rules, test devices, configuration, sites, users, the
// inventory and the audit trail.
type Service struct {
	DB    *store.DB
	Trail *audit.Trail
	// Inventory batches the polls' records; nil when nothing is batched.
	Inventory Inventory
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger gets a broken audit trail at error level; nil logs nothing.
	Logger *zap.Logger
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Compile-time checks.
var (
	_ deviceupdate.RuleService       = (*Service)(nil)
	_ deviceupdate.AuditService      = (*Service)(nil)
	_ deviceupdate.TestDeviceService = (*Service)(nil)
	_ deviceupdate.ConfigService     = (*Service)(nil)
)

// Rules returns every rule.
func (s *Service) Rules(context.Context) ([]deviceupdate.Rule, error) {
	return s.DB.Rules()
}

// ChangeRule performs a lifecycle action and audits it, refused or not.
// The entry is synced before the answer: a change the audit trail lacks is
// never reported done.
func (s *Service) ChangeRule(_ context.Context, id string, action deviceupdate.RuleAction, expect *deviceupdate.Rule, actor string) (deviceupdate.Rule, *deviceupdate.Rule, error) {
	before, after, err := s.DB.ChangeRule(id, action, expect)
	e := audit.Entry{Actor: actor, Action: "rule." + string(action), Target: id, Result: audit.ResultOK}
	if err != nil {
		e.Result = deviceupdate.ErrorMessage(err)
	} else {
		e.Before, _ = json.Marshal(before)
		if after != nil {
			e.After, _ = json.Marshal(after)
		}
	}
	return before, after, s.audited(e, err)
}

// AuditEntries returns a page of the trail's entries that match f: those
// above the cursor's sequence number, in the file's order; of a broken
// trail, those it can read, with where it breaks. The whole trail is read
// to check its chain, but only the page is kept. Errors: EINVALID (a
// cursor it did not give).
func (s *Service) AuditEntries(_ context.Context, f deviceupdate.AuditFilter) (*deviceupdate.AuditList, error) {
	after, err := deviceupdate.ParseAuditCursor(f.Cursor)
	if err != nil {
		return nil, err
	}
	list := &deviceupdate.AuditList{Entries: []deviceupdate.AuditRecord{}}
	more := false
	brk, err := s.readTrail(func(e audit.Entry, verified bool) {
		if e.Seq <= after || !f.Match(e) || more {
			return
		}
		if f.Limit > 0 && len(list.Entries) == f.Limit {
			more = true
			return
		}
		list.Entries = append(list.Entries, deviceupdate.AuditRecord{AuditEntry: e, Unverified: !verified})
	})
	if err != nil {
		return nil, err
	}
	if more {
		list.Next = deviceupdate.AuditCursor(list.Entries[len(list.Entries)-1].Seq)
	}
	if brk != nil {
		list.Broken = &deviceupdate.AuditBreak{Line: brk.Line, Seq: brk.Seq, Reason: brk.Reason}
	}
	return list, nil
}

// VerifyAudit checks the whole trail.
func (s *Service) VerifyAudit(context.Context) (*deviceupdate.AuditVerification, error) {
	n := 0
	brk, err := s.readTrail(func(_ audit.Entry, verified bool) {
		if verified {
			n++
		}
	})
	switch {
	case err != nil:
		return nil, err
	case brk != nil:
		return &deviceupdate.AuditVerification{Entries: n, Line: brk.Line, Seq: brk.Seq, Reason: brk.Reason}, nil
	}
	return &deviceupdate.AuditVerification{Intact: true, Entries: n}, nil
}

// readTrail reads the trail and logs a break at error level: a trail
// altered behind the service's back is an incident.
func (s *Service) readTrail(fn func(e audit.Entry, verified bool)) (*audit.BrokenError, error) {
	brk, err := s.Trail.Read(fn)
	if err != nil {
		return nil, err
	}
	s.logBroken(brk)
	return brk, nil
}

// LogTrailState logs at error level when the trail was broken when last
// read; serve calls it once the trail is open.
func (s *Service) LogTrailState() { s.logBroken(s.Trail.Broken()) }

func (s *Service) logBroken(brk *audit.BrokenError) {
	if brk == nil || s.Logger == nil {
		return
	}
	s.Logger.Error("audit trail is broken", zap.String("file", s.Trail.Path()), zap.Int("line", brk.Line),
		zap.Uint64("entry", brk.Seq), zap.String("reason", brk.Reason),
		zap.String("fix", "stop serve, restore the file from a backup and start serve again; `deviceupdate audit verify` names the first altered entry"))
}

// TestDevices returns every test device.
func (s *Service) TestDevices(context.Context) ([]deviceupdate.TestDevice, error) {
	return s.DB.TestDevices()
}

// AddTestDevice validates, stores and audits a test device.
func (s *Service) AddTestDevice(_ context.Context, d deviceupdate.TestDevice, actor string) (deviceupdate.TestDevice, error) {
	norm, err := d.Normalize()
	if err == nil {
		norm, err = s.DB.AddTestDevice(norm)
	}
	e := audit.Entry{Actor: actor, Action: "testdevice.add", Target: d.Name, Result: audit.ResultOK}
	if err != nil {
		e.Result = deviceupdate.ErrorMessage(err)
	} else {
		e.After, _ = json.Marshal(norm)
	}
	return norm, s.audited(e, err)
}

// RemoveTestDevice deletes and audits a test device.
func (s *Service) RemoveTestDevice(_ context.Context, name, actor string) error {
	d, err := s.DB.RemoveTestDevice(name)
	e := audit.Entry{Actor: actor, Action: "testdevice.remove", Target: name, Result: audit.ResultOK}
	if err != nil {
		e.Result = deviceupdate.ErrorMessage(err)
	} else {
		e.Before, _ = json.Marshal(d)
	}
	return s.audited(e, err)
}

// audited appends e and returns err, or an internal error when the change
// succeeded but could not be audited.
func (s *Service) audited(e audit.Entry, err error) error {
	if _, aerr := s.Trail.Append(e); aerr != nil && err == nil {
		return &deviceupdate.Error{Code: deviceupdate.EINTERNAL, Message: "the change was made but the audit trail could not be written", Err: aerr}
	}
	return err
}

// Config returns the effective settings for a scope.
func (s *Service) Config(_ context.Context, scope string) ([]deviceupdate.ConfigValue, error) {
	sc, err := s.DB.ScopeConfig(scope)
	if err != nil {
		return nil, err
	}
	return deviceupdate.ResolveConfig(sc.Global, sc.Site, sc.Scope), nil
}

// SetConfig checks every setting first, applies them in one transaction,
// and audits the change.
func (s *Service) SetConfig(_ context.Context, scope string, settings map[string]string, actor string) ([]deviceupdate.ConfigValue, error) {
	e := audit.Entry{Actor: actor, Action: "config.set", Target: scope, Result: audit.ResultOK}
	checked, err := deviceupdate.CheckSettings(settings)
	var before map[string]string
	var after store.ScopeConfig
	if err == nil {
		before, after, err = s.DB.SetConfig(scope, checked)
	}
	if err != nil {
		e.Result = deviceupdate.ErrorMessage(err)
		return nil, s.audited(e, err)
	}
	e.Target = after.Scope
	e.Before, _ = json.Marshal(before)
	e.After, _ = json.Marshal(after.Site)
	if err := s.audited(e, nil); err != nil {
		return nil, err
	}
	return deviceupdate.ResolveConfig(after.Global, after.Site, after.Scope), nil
}
