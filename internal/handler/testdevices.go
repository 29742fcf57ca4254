package handler

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

func (s *Server) handleTestDevices(c echo.Context) error {
	devices, err := s.testDevices.TestDevices(c.Request().Context())
	if err != nil {
		return err
	}
	if devices == nil {
		devices = []deviceupdate.TestDevice{}
	}
	return c.JSON(http.StatusOK, devices)
}

func (s *Server) handleAddTestDevice(c echo.Context) error {
	var d deviceupdate.TestDevice
	if err := decodeJSON(c, &d); err != nil {
		return err
	}
	added, err := s.testDevices.AddTestDevice(c.Request().Context(), d, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, added)
}

func (s *Server) handleRemoveTestDevice(c echo.Context) error {
	if err := s.testDevices.RemoveTestDevice(c.Request().Context(), c.Param("name"), actor(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
