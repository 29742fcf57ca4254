package handler

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

func (s *Server) handleClearFiles(c echo.Context) error {
	res, err := s.files.ClearFiles(c.Request().Context(), actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
