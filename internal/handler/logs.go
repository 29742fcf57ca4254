package handler

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// queryFold returns the first query parameter named name in any case:
// phones' spelling of SPEC §6's parameters is not known exactly.
func queryFold(q url.Values, name string) string {
	if v := q.Get(name); v != "" {
		return v
	}
	for k, v := range q {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// handleLogUpload answers POST .../Files: the body is the log, streamed
// to the log store, which counts it against MaxLogFileSize as it reads.
func (s *Server) handleLogUpload(c echo.Context) error {
	req := c.Request()
	q := req.URL.Query()
	u := deviceupdate.LogUpload{
		DeviceType: queryFold(q, "DeviceType"), MAC: queryFold(q, "MacAddress"), Serial: queryFold(q, "SerialNumber"),
		LogType: queryFold(q, "LogType"), FileName: queryFold(q, "FileName"), Remote: c.RealIP(),
	}
	body := s.newMinRateBody(c)
	l, err := s.logs.Upload(req.Context(), u, body, req.ContentLength)
	if err = s.cut(c, body, err); err != nil {
		Logger(c).Info("device log refused", zap.String("reason", deviceupdate.ErrorMessage(err)),
			zap.String("log_type", clipField(u.LogType)), zap.String("file_name", clipField(u.FileName)),
			zap.String("mac", clipField(u.MAC)), zap.String("serial", clipField(u.Serial)))
		return err
	}
	Logger(c).Info("device log stored", zap.String("log", l.Path()), zap.Int64("bytes", l.Size))
	return c.String(http.StatusOK, "stored "+l.Path()+"\n")
}

// clipField bounds a phone-sent value in a log line.
func clipField(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func (s *Server) handleLogs(c echo.Context) error {
	f := deviceupdate.LogFilter{Device: c.QueryParam("device"), Type: c.QueryParam("type")}
	if err := pageOf(c, &f.Page); err != nil {
		return err
	}
	logs, err := s.logs.Logs(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, logs)
}

// handleLogDownload serves one stored log: GET /logs/{type}/{device}/{name}.
func (s *Server) handleLogDownload(c echo.Context) error {
	var parts [3]string
	for i, p := range []string{"type", "device", "name"} {
		v, err := pathParam(c, p)
		if err != nil {
			return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no such device log")
		}
		parts[i] = v
	}
	f, l, err := s.logs.OpenLog(c.Request().Context(), parts[0], parts[1], parts[2])
	if err != nil {
		return err
	}
	defer f.Close()
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "application/octet-stream")
	w.Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+strings.ReplaceAll(l.Name, `"`, "_")+`"`)
	http.ServeContent(s.newFileWriter(c), c.Request(), l.Name, l.Modified, f)
	return nil
}

// pathParam returns a path parameter decoded exactly once. Echo matches
// the raw path, and hands its parameters still escaped, only when the
// request's path holds escapes Go would not write itself (URL.RawPath is
// set); otherwise it matches the decoded path and they are decoded
// already, so decoding them again would read a FileName holding "%41" as
// another log's "A".
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	return url.PathUnescape(v)
}

func (s *Server) handleClearLogs(c echo.Context) error {
	var req struct {
		DaysBack int `json:"daysBack"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	res, err := s.logs.ClearLogs(c.Request().Context(), req.DaysBack, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
