package handler

import (
	"errors"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

// handleImport takes an update package as the request body (streamed, not
// buffered) and imports it. ?name= gives the file name for messages and
// the audit trail.
func (s *Server) handleImport(c echo.Context) error {
	req := c.Request()
	name := path.Base(strings.ReplaceAll(c.QueryParam("name"), `\`, "/"))
	if name == "." || name == "/" || name == "" {
		name = "package.cab"
	}
	if s.maxPackageSize > 0 && req.ContentLength > s.maxPackageSize {
		return deviceupdate.Errorf(deviceupdate.ETOOLARGE, "%s: %d bytes is more than the %d a package may have", name, req.ContentLength, s.maxPackageSize)
	}
	body := limitedBody{http.MaxBytesReader(c.Response(), req.Body, s.maxPackageSize), name}
	res, err := s.packages.Import(req.Context(), body, req.ContentLength, name, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// actor names who made an admin request: the admin token's holder, from
// where.
func actor(c echo.Context) string {
	return "admin@" + c.RealIP()
}

// limitedBody reports a body past the limit as ETOOLARGE.
type limitedBody struct {
	r    io.ReadCloser
	name string
}

func (b limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return n, deviceupdate.Errorf(deviceupdate.ETOOLARGE, "%s: more than the %d bytes a package may have", b.name, mbe.Limit)
	}
	return n, err
}
