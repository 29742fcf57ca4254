package handler

import (
	"net/http"

	"github.com/labstack/echo/v4"
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
