package handler

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

func (s *Server) handleConfig(c echo.Context) error {
	scope, err := deviceupdate.ConfigScope(c.QueryParam("site"))
	if err != nil {
		return err
	}
	values, err := s.config.Config(c.Request().Context(), scope)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, values)
}

// configChange is the body of PUT /config: name → value, "" to remove an
// override.
type configChange struct {
	Settings map[string]string `json:"settings"`
}

func (s *Server) handleSetConfig(c echo.Context) error {
	scope, err := deviceupdate.ConfigScope(c.QueryParam("site"))
	if err != nil {
		return err
	}
	var req configChange
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	values, err := s.config.SetConfig(c.Request().Context(), scope, req.Settings, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, values)
}
