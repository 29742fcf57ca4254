package handler

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

// handleRemoveDevice forgets the device named in the path and answers
// what went: {"device": ..., "settings": ...}.
func (s *Server) handleRemoveDevice(c echo.Context) error {
	removed, err := s.devices.RemoveDevice(c.Request().Context(), c.Param("id"), actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, removed)
}

// handlePruneDevices forgets the devices not seen for an age:
// {"notSeen": "30d", "dryRun": false}.
func (s *Server) handlePruneDevices(c echo.Context) error {
	var req struct {
		NotSeen string `json:"notSeen"`
		DryRun  bool   `json:"dryRun"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	res, err := s.devices.PruneDevices(c.Request().Context(), req.NotSeen, req.DryRun, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// handleDevices answers a page of the inventory that matches the query's
// filters: model, key (a rule key), version, notVersion (running another
// version), site, since and before (RFC
// 3339 times of the last poll) and search (MAC, serial or user, any
// part, any case).
func (s *Server) handleDevices(c echo.Context) error {
	q := c.QueryParams()
	f := deviceupdate.DeviceFilter{Model: q.Get("model"), Site: q.Get("site"), Search: q.Get("search")}
	var err error
	if v := q.Get("key"); v != "" {
		if f.Key, err = deviceupdate.ParseRuleKey(v); err != nil {
			return err
		}
	}
	for _, v := range []struct {
		name string
		dst  *deviceupdate.Version
	}{{"version", &f.Version}, {"notVersion", &f.NotVersion}} {
		if q := q.Get(v.name); q != "" {
			if *v.dst, err = deviceupdate.ParseVersion(q); err != nil {
				return deviceupdate.Errorf(deviceupdate.EINVALID, "%s: %s", v.name, deviceupdate.ErrorMessage(err))
			}
		}
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"before", &f.Before}} {
		if v := q.Get(t.name); v != "" {
			if *t.dst, err = time.Parse(time.RFC3339, v); err != nil {
				return deviceupdate.Errorf(deviceupdate.EINVALID, "%s=%q: want a time such as 2026-11-21T08:00:00Z", t.name, truncate(v, 64))
			}
		}
	}
	if err := pageOf(c, &f.Page); err != nil {
		return err
	}
	devices, err := s.devices.Devices(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, devices)
}

// handleDevice answers one device's record, with its versions over time.
func (s *Server) handleDevice(c echo.Context) error {
	d, err := s.devices.Device(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}
