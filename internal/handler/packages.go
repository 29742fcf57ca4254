package handler

import (
	"errors"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// handleImport takes an update package as the request body (streamed, not
// buffered) and imports it. ?name= gives the file name for messages and
// the audit trail. A refused package is logged at warn level with the
// source address and the reason; an internal failure is the error
// handler's to log.
func (s *Server) handleImport(c echo.Context) error {
	name := path.Base(strings.ReplaceAll(c.QueryParam("name"), `\`, "/"))
	if name == "." || name == "/" || name == "" {
		name = "package.cab"
	}
	res, err := s.importPackage(c, name)
	if err != nil {
		if code := deviceupdate.ErrorCode(err); code != deviceupdate.EINTERNAL {
			Logger(c).Warn("import refused", zap.String("remote", c.RealIP()), zap.String("package", name),
				zap.String("code", code), zap.String("reason", deviceupdate.ErrorMessage(err)))
		}
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) importPackage(c echo.Context, name string) (*deviceupdate.ImportResult, error) {
	req := c.Request()
	if s.maxPackageSize > 0 && req.ContentLength > s.maxPackageSize {
		return nil, deviceupdate.Errorf(deviceupdate.ETOOLARGE, "%s: %d bytes is more than the %d a package may have", name, req.ContentLength, s.maxPackageSize)
	}
	slow := s.newMinRateBody(c)
	body := limitedBody{http.MaxBytesReader(c.Response(), slow, s.maxPackageSize), name}
	res, err := s.packages.Import(req.Context(), body, req.ContentLength, name, actor(c))
	return res, s.cut(c, slow, err)
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
