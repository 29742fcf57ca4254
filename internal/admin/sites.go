package admin

import (
	"context"
	"encoding/json"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
)

var (
	_ deviceupdate.SiteService         = (*Service)(nil)
	_ deviceupdate.DeviceConfigService = (*Service)(nil)
)

// Sites returns every site.
func (s *Service) Sites(context.Context) ([]deviceupdate.Site, error) {
	return s.DB.Sites()
}

// PutSite validates, stores and audits a site.
func (s *Service) PutSite(_ context.Context, site deviceupdate.Site, actor string) (deviceupdate.Site, error) {
	norm, err := site.Normalize()
	var before *deviceupdate.Site
	if err == nil {
		before, err = s.DB.PutSite(norm)
		if before != nil {
			norm.Name = before.Name
		}
	}
	e := audit.Entry{Actor: actor, Action: "site.put", Target: site.Name, Result: audit.ResultOK}
	if err != nil {
		e.Result = deviceupdate.ErrorMessage(err)
	} else {
		if before != nil {
			e.Before, _ = json.Marshal(before)
		}
		e.After, _ = json.Marshal(norm)
	}
	return norm, s.audited(e, err)
}

// RemoveSite deletes a site with its settings, refused while test devices
// are limited to it, and audits it with the settings it had.
func (s *Service) RemoveSite(_ context.Context, name, actor string) error {
	site, settings, err := s.DB.RemoveSite(name)
	e := audit.Entry{Actor: actor, Action: "site.remove", Target: name, Result: audit.ResultOK}
	if err != nil {
		e.Result = deviceupdate.ErrorMessage(err)
	} else {
		e.Before, _ = json.Marshal(struct {
			deviceupdate.Site
			Settings map[string]string `json:"settings,omitempty"`
		}{site, settings})
	}
	return s.audited(e, err)
}

// DeviceConfig returns one device's setting overrides.
func (s *Service) DeviceConfig(_ context.Context, id string) (deviceupdate.DeviceConfig, error) {
	id, err := deviceupdate.DeviceID(id)
	if err != nil {
		return deviceupdate.DeviceConfig{}, err
	}
	m, err := s.DB.DeviceConfig(id)
	if err != nil {
		return deviceupdate.DeviceConfig{}, err
	}
	return deviceupdate.DeviceConfig{ID: id, Settings: m}, nil
}

// SetDeviceConfig validates, applies and audits one device's overrides.
func (s *Service) SetDeviceConfig(_ context.Context, id string, settings map[string]string, actor string) (deviceupdate.DeviceConfig, error) {
	e := audit.Entry{Actor: actor, Action: "device.config.set", Target: id, Result: audit.ResultOK}
	norm, err := deviceupdate.DeviceID(id)
	var checked, before, after map[string]string
	if err == nil {
		e.Target = norm
		checked, err = deviceupdate.CheckDeviceSettings(settings)
	}
	if err == nil {
		before, after, err = s.DB.SetDeviceConfig(norm, checked)
	}
	if err != nil {
		e.Result = deviceupdate.ErrorMessage(err)
		return deviceupdate.DeviceConfig{}, s.audited(e, err)
	}
	e.Before, _ = json.Marshal(before)
	e.After, _ = json.Marshal(after)
	if err := s.audited(e, nil); err != nil {
		return deviceupdate.DeviceConfig{}, err
	}
	return deviceupdate.DeviceConfig{ID: norm, Settings: after}, nil
}
