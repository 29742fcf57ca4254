package handler

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// statusOf maps each application error code to its HTTP status.
var statusOf = map[string]int{
	deviceupdate.ECONFLICT:       http.StatusConflict,
	deviceupdate.EINTERNAL:       http.StatusInternalServerError,
	deviceupdate.EINVALID:        http.StatusBadRequest,
	deviceupdate.ENOTFOUND:       http.StatusNotFound,
	deviceupdate.EUNAUTHORIZED:   http.StatusUnauthorized,
	deviceupdate.EFORBIDDEN:      http.StatusForbidden,
	deviceupdate.ETOOLARGE:       http.StatusRequestEntityTooLarge,
	deviceupdate.EUNAVAILABLE:    http.StatusServiceUnavailable,
	deviceupdate.ETIMEOUT:        http.StatusRequestTimeout,
	deviceupdate.ENOTIMPLEMENTED: http.StatusNotImplemented,
}

// StatusOf returns the HTTP status of an application error code, 500
// for an unknown one; the web console answers with the same ones.
func StatusOf(code string) int {
	if st, ok := statusOf[code]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// codeOf maps the statuses echo itself produces (no route, wrong method,
// body too large) back to application codes.
var codeOf = map[int]string{
	http.StatusNotFound:              deviceupdate.ENOTFOUND,
	http.StatusMethodNotAllowed:      deviceupdate.EINVALID,
	http.StatusRequestEntityTooLarge: deviceupdate.ETOOLARGE,
	http.StatusUnauthorized:          deviceupdate.EUNAUTHORIZED,
	http.StatusBadRequest:            deviceupdate.EINVALID,
	http.StatusServiceUnavailable:    deviceupdate.EUNAVAILABLE,
	http.StatusRequestTimeout:        deviceupdate.ETIMEOUT,
}

// errorBody is the admin API's error envelope (SPEC §7).
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// handleError is the one place where an error becomes a response. Admin
// API errors are JSON envelopes; everything else is plain text, as phones
// expect. Internal errors are logged with their detail and answered with a
// generic message.
func (s *Server) handleError(err error, c echo.Context) {
	log := Logger(c)
	if c.Response().Committed {
		log.Warn("error after response started", zap.Error(err))
		return
	}
	code, status, msg := classify(err)
	if code == deviceupdate.EINTERNAL {
		log.Error("internal error", zap.Error(err))
	}
	if code == deviceupdate.EUNAUTHORIZED && strings.HasPrefix(c.Request().URL.Path, AdminPrefix) {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="deviceupdate admin"`)
	}
	var rerr error
	switch {
	case c.Request().Method == http.MethodHead:
		rerr = c.NoContent(status)
	case strings.HasPrefix(c.Request().URL.Path, AdminPrefix):
		rerr = c.JSON(status, errorBody{errorDetail{Code: code, Message: msg}})
	default:
		rerr = c.String(status, msg+"\n")
	}
	if rerr != nil {
		log.Warn("write error response", zap.Error(rerr))
	}
}

// classify returns the application code, HTTP status and safe message for err.
func classify(err error) (code string, status int, msg string) {
	var he *echo.HTTPError
	if errors.As(err, &he) && !isAppError(err) {
		status = he.Code
		code = codeOf[status]
		if code == "" {
			code = deviceupdate.EINTERNAL
			if status < 500 {
				code = deviceupdate.EINVALID
			}
		}
		msg = http.StatusText(status)
		if m, ok := he.Message.(string); ok && m != "" {
			msg = m
		}
		if status == http.StatusNotFound {
			msg = "no such endpoint"
		}
		return code, status, strings.ToLower(msg)
	}
	code = deviceupdate.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok { // a code added to the domain without a status here; TestEveryCodeHasStatus catches it
		return deviceupdate.EINTERNAL, http.StatusInternalServerError, deviceupdate.ErrorMessage(fmt.Errorf("unmapped code %q", code))
	}
	return code, status, deviceupdate.ErrorMessage(err)
}

func isAppError(err error) bool {
	var e *deviceupdate.Error
	return errors.As(err, &e)
}
