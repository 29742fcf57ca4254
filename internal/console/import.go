package console

import (
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// multipartSlack is what a browser's upload may carry beyond the
// package: the CSRF field and the parts' headers.
const multipartSlack = 64 << 10

type importData struct {
	Result  *deviceupdate.ImportResult
	Name    string
	Refusal string
}

func (c *Console) handleImportPage(ec echo.Context, s *deviceupdate.Session) error {
	return c.render(ec, http.StatusOK, "import", page{Title: "Import", Nav: "import", Session: s, Data: importData{}})
}

// handleImport reads a multipart upload as it arrives: its CSRF token
// first (the header htmx sends, else the form's first field), then the
// package, which streams into the importer without being buffered.
func (c *Console) handleImport(ec echo.Context, s *deviceupdate.Session) error {
	r := ec.Request()
	if c.cfg.MaxPackageSize > 0 && r.ContentLength > c.cfg.MaxPackageSize+multipartSlack {
		return c.importRefused(ec, s, "", deviceupdate.Errorf(deviceupdate.ETOOLARGE, "the upload is larger than the %d bytes a package may have", c.cfg.MaxPackageSize))
	}
	if c.cfg.MaxPackageSize > 0 {
		r.Body = http.MaxBytesReader(ec.Response(), r.Body, c.cfg.MaxPackageSize+multipartSlack)
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return c.importRefused(ec, s, "", deviceupdate.Errorf(deviceupdate.EINVALID, "send the package as a file upload (multipart/form-data)"))
	}
	csrfOK := r.Header.Get(CSRFHeader) != "" // checked by signedIn when present
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return c.importRefused(ec, s, "", bodyError(err))
		}
		switch part.FormName() {
		case CSRFField:
			tok, _ := io.ReadAll(io.LimitReader(part, 256))
			if !validCSRF(s, string(tok)) {
				return c.csrfRefused(ec, s)
			}
			csrfOK = true
		case "package":
			if !csrfOK {
				return c.csrfRefused(ec, s)
			}
			return c.importPart(ec, s, part)
		}
	}
	return c.importRefused(ec, s, "", deviceupdate.Errorf(deviceupdate.EINVALID, "choose a .cab or .exe package to import"))
}

func (c *Console) importPart(ec echo.Context, s *deviceupdate.Session, part *multipart.Part) error {
	name := path.Base(strings.ReplaceAll(part.FileName(), `\`, "/"))
	switch strings.ToLower(path.Ext(name)) {
	case ".cab", ".exe":
	default:
		return c.importRefused(ec, s, name, deviceupdate.Errorf(deviceupdate.EINVALID, "%q is neither a .cab nor an .exe package", truncate(name, 64)))
	}
	var src io.Reader = part
	if c.cfg.MaxPackageSize > 0 {
		src = &limitReader{r: part, left: c.cfg.MaxPackageSize, max: c.cfg.MaxPackageSize}
	}
	res, err := c.cfg.Packages.Import(ec.Request().Context(), src, -1, name, s.Admin.Name)
	if err != nil {
		return c.importRefused(ec, s, name, bodyError(err))
	}
	Logger(c, ec).Info("console import", zap.String("admin", s.Admin.Name), zap.String("package", name), zap.Int("updates", len(res.Updates)))
	return c.render(ec, http.StatusOK, "import", page{Title: "Import", Nav: "import", Session: s, Data: importData{Result: res, Name: name}})
}

// importRefused shows why a package was not imported, under the form.
func (c *Console) importRefused(ec echo.Context, s *deviceupdate.Session, name string, err error) error {
	code := deviceupdate.ErrorCode(err)
	if code == deviceupdate.EINTERNAL {
		return c.fail(ec, s, err)
	}
	Logger(c, ec).Warn("console import refused", zap.String("admin", s.Admin.Name), zap.String("package", name), zap.String("reason", deviceupdate.ErrorMessage(err)))
	return c.render(ec, statusOf(code), "import", page{Title: "Import", Nav: "import", Session: s, Data: importData{Name: name, Refusal: deviceupdate.ErrorMessage(err)}})
}

// bodyError names an upload cut by the size limit as too large.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return deviceupdate.Errorf(deviceupdate.ETOOLARGE, "the upload is larger than a package may be")
	}
	var de *deviceupdate.Error
	if errors.As(err, &de) {
		return err
	}
	return deviceupdate.Errorf(deviceupdate.EINVALID, "the upload was cut short: %v", err)
}

// limitReader fails with ETOOLARGE past max bytes.
type limitReader struct {
	r         io.Reader
	left, max int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if l.left -= int64(n); l.left < 0 {
		return 0, deviceupdate.Errorf(deviceupdate.ETOOLARGE, "the package is larger than the %d bytes a package may have", l.max)
	}
	return n, err
}
