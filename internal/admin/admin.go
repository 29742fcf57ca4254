// Package admin implements the admin services the API serves: rule
// changes, each written to the audit trail, and reading and verifying that
// trail.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

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

// AuditEntries returns the trail's entries that match f.
func (s *Service) AuditEntries(_ context.Context, f deviceupdate.AuditFilter) ([]deviceupdate.AuditEntry, error) {
	file, err := os.Open(s.Trail.Path())
	if err != nil {
		return nil, fmt.Errorf("read audit trail: %w", err)
	}
	defer file.Close()
	all, err := audit.ReadAll(file)
	var be *audit.BrokenError
	if errors.As(err, &be) {
		return nil, &deviceupdate.Error{Code: deviceupdate.ECONFLICT, Message: be.Error() + "; `deviceupdate audit verify` reports it", Err: err}
	}
	if err != nil {
		return nil, err
	}
	out := []deviceupdate.AuditEntry{}
	for _, e := range all {
		if f.Match(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// VerifyAudit checks the whole trail.
func (s *Service) VerifyAudit(context.Context) (*deviceupdate.AuditVerification, error) {
	file, err := os.Open(s.Trail.Path())
	if err != nil {
		return nil, fmt.Errorf("read audit trail: %w", err)
	}
	defer file.Close()
	n := 0
	err = audit.Scan(file, func(audit.Entry) { n++ })
	var be *audit.BrokenError
	switch {
	case errors.As(err, &be):
		return &deviceupdate.AuditVerification{Entries: n, Line: be.Line, Seq: be.Seq, Reason: be.Reason}, nil
	case err != nil:
		return nil, err
	}
	return &deviceupdate.AuditVerification{Intact: true, Entries: n}, nil
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
