package handler

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

func (s *Server) handleSites(c echo.Context) error {
	sites, err := s.sites.Sites(c.Request().Context())
	if err != nil {
		return err
	}
	if sites == nil {
		sites = []deviceupdate.Site{}
	}
	return c.JSON(http.StatusOK, sites)
}

// handlePutSite creates or replaces the site named in the path; the body
// is {"subnets": ["10.1.0.0/16", ...]}.
func (s *Server) handlePutSite(c echo.Context) error {
	var req struct {
		Subnets []string `json:"subnets"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	prefixes, err := deviceupdate.ParseSubnets(req.Subnets)
	if err != nil {
		return err
	}
	site, err := s.sites.PutSite(c.Request().Context(), deviceupdate.Site{Name: c.Param("name"), Subnets: prefixes}, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, site)
}

func (s *Server) handleRemoveSite(c echo.Context) error {
	if err := s.sites.RemoveSite(c.Request().Context(), c.Param("name"), actor(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleDeviceConfig(c echo.Context) error {
	dc, err := s.deviceConfig.DeviceConfig(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, dc)
}

// handleSetDeviceConfig applies {"settings": {"PeerFirmwareSharing": "true"}}
// to one device; an empty value removes the device's own setting.
func (s *Server) handleSetDeviceConfig(c echo.Context) error {
	var req struct {
		Settings map[string]string `json:"settings"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	dc, err := s.deviceConfig.SetDeviceConfig(c.Request().Context(), c.Param("id"), req.Settings, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, dc)
}
