// Package admin implements the admin services the API serves: rule
// changes, each written to the audit trail, and reading and verifying that
// trail.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// PollInterval is the poll interval staged rollouts judge devices
	// by; 0 means the PollIntervalSeconds setting.
	PollInterval time.Duration
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

// change makes one admin change through store.DB.Audited, the one way
// they are made: it takes effect only with its entry synced in the trail,
// and a refusal is audited with its reason. A change not made for a fault
// of the server is logged at error level.
func (s *Service) change(e audit.Entry, apply func(tx *store.DB, e *audit.Entry) error) error {
	err := s.DB.Audited(s.Trail, e, apply)
	if errors.Is(err, store.ErrNotMade) && s.Logger != nil {
		s.Logger.Error("admin change not made", zap.String("action", e.Action), zap.String("target", e.Target), zap.Error(err))
	}
	return err
}

// refuse audits a change refused before it reached the store.
func (s *Service) refuse(e audit.Entry, err error) error {
	return s.change(e, func(*store.DB, *audit.Entry) error { return err })
}

// Record writes e before a change the store does not hold, such as
// deleting files: the entry is synced, with the trail's head in the store,
// before Record returns, so the change may follow.
func (s *Service) Record(e audit.Entry) error { return s.change(e, nil) }

// ChangeRule performs a lifecycle action and audits it, refused or not.
func (s *Service) ChangeRule(ctx context.Context, id string, action deviceupdate.RuleAction, expect *deviceupdate.Rule, actor string) (before deviceupdate.Rule, after *deviceupdate.Rule, err error) {
	if action == deviceupdate.RuleReset {
		if r, err := s.DB.Rollout(id); err == nil && r.Active() {
			return s.resetRollout(ctx, id, actor)
		}
	}
	err = s.change(audit.Entry{Actor: actor, Action: "rule." + string(action), Target: id}, func(tx *store.DB, e *audit.Entry) (err error) {
		if before, after, err = tx.ChangeRule(id, action, expect); err != nil {
			return err
		}
		e.Before, _ = json.Marshal(before)
		if after != nil {
			e.After, _ = json.Marshal(after)
		}
		return nil
	})
	if err != nil {
		return before, nil, err
	}
	return before, after, nil
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

// CheckTrail anchors the trail to the head the store keeps, at start, so
// that entries removed from its end show as a break (logged at error
// level, like any break). Entries written whose change the store did not
// commit (a crash or a failed commit between the two) are marked as not
// applied with an audit.abandoned entry; a store that keeps no head yet
// (one made before it did) starts with the trail's, recorded in an
// audit.anchored entry. Only a trail that cannot be read fails it: when
// that entry cannot be written, the error is logged and the server goes
// on, to be done at the next start.
func (s *Service) CheckTrail() error {
	a, err := s.Trail.Anchor(s.DB)
	if err != nil {
		return err
	}
	switch {
	case !a.Recorded && a.Last.Seq == 0:
		err = s.DB.InitAuditHead()
	case len(a.Unapplied) > 0:
		err = s.change(audit.Abandoned(a.Unapplied, "the store does not hold these changes: the server stopped or the store failed "+
			"between writing the entry and committing the change, or the store was restored from a backup taken before it"), nil)
	case !a.Recorded && a.Last.Seq > 0:
		after, _ := json.Marshal(a.Last)
		err = s.change(audit.Entry{Actor: audit.ServerActor, Action: audit.ActionAnchored, Target: fmt.Sprintf("entry %d", a.Last.Seq), After: after}, nil)
	}
	if err != nil && s.Logger != nil {
		s.Logger.Error("audit trail not checked against the store", zap.Error(err))
	}
	s.logBroken(s.Trail.Broken())
	return nil
}

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
func (s *Service) AddTestDevice(_ context.Context, d deviceupdate.TestDevice, actor string) (norm deviceupdate.TestDevice, err error) {
	err = s.change(audit.Entry{Actor: actor, Action: "testdevice.add", Target: d.Name}, func(tx *store.DB, e *audit.Entry) (err error) {
		if norm, err = d.Normalize(); err != nil {
			return err
		}
		if norm, err = tx.AddTestDevice(norm); err != nil {
			return err
		}
		e.After, _ = json.Marshal(norm)
		return nil
	})
	return norm, err
}

// RemoveTestDevice deletes and audits a test device.
func (s *Service) RemoveTestDevice(_ context.Context, name, actor string) error {
	return s.change(audit.Entry{Actor: actor, Action: "testdevice.remove", Target: name}, func(tx *store.DB, e *audit.Entry) error {
		d, err := tx.RemoveTestDevice(name)
		if err != nil {
			return err
		}
		e.Before, _ = json.Marshal(d)
		return nil
	})
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
	var after store.ScopeConfig
	err := s.change(audit.Entry{Actor: actor, Action: "config.set", Target: scope}, func(tx *store.DB, e *audit.Entry) error {
		checked, err := deviceupdate.CheckSettings(settings)
		if err != nil {
			return err
		}
		var before map[string]string
		if before, after, err = tx.SetConfig(scope, checked); err != nil {
			return err
		}
		e.Target = after.Scope
		e.Before, _ = json.Marshal(before)
		e.After, _ = json.Marshal(after.Site)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return deviceupdate.ResolveConfig(after.Global, after.Site, after.Scope), nil
}
