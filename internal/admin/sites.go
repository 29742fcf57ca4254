package admin

import (
	"context"
	"encoding/json"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
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
func (s *Service) PutSite(_ context.Context, site deviceupdate.Site, actor string) (norm deviceupdate.Site, err error) {
	err = s.change(audit.Entry{Actor: actor, Action: "site.put", Target: site.Name}, func(tx store.Store, e *audit.Entry) error {
		norm, err = site.Normalize()
		if err != nil {
			return err
		}
		before, err := tx.PutSite(norm)
		if err != nil {
			return err
		}
		if before != nil {
			norm.Name = before.Name
			e.Before, _ = json.Marshal(before)
		}
		e.After, _ = json.Marshal(norm)
		return nil
	})
	return norm, err
}

// RemoveSite deletes a site with its settings, refused while test devices
// are limited to it, and audits it with the settings it had.
func (s *Service) RemoveSite(_ context.Context, name, actor string) error {
	return s.change(audit.Entry{Actor: actor, Action: "site.remove", Target: name}, func(tx store.Store, e *audit.Entry) error {
		site, settings, err := tx.RemoveSite(name)
		if err != nil {
			return err
		}
		e.Before, _ = json.Marshal(struct {
			deviceupdate.Site
			Settings map[string]string `json:"settings,omitempty"`
		}{site, settings})
		return nil
	})
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
	var dc deviceupdate.DeviceConfig
	err := s.change(audit.Entry{Actor: actor, Action: "device.config.set", Target: id}, func(tx store.Store, e *audit.Entry) error {
		norm, err := deviceupdate.DeviceID(id)
		if err != nil {
			return err
		}
		e.Target = norm
		checked, err := deviceupdate.CheckDeviceSettings(settings)
		if err != nil {
			return err
		}
		before, after, err := tx.SetDeviceConfig(norm, checked)
		if err != nil {
			return err
		}
		e.Before, _ = json.Marshal(before)
		e.After, _ = json.Marshal(after)
		dc = deviceupdate.DeviceConfig{ID: norm, Settings: after}
		return nil
	})
	if err != nil {
		return deviceupdate.DeviceConfig{}, err
	}
	return dc, nil
}
