package handler

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

const (
	headerRequestID = echo.HeaderXRequestID
	loggerKey       = "deviceupdate.logger"
	maxRequestIDLen = 64
)

// reqLogger builds a request's logger the first time a handler asks for
// it: most polls never log anything but their access line, which does
// without it.
type reqLogger struct {
	base *zap.Logger
	id   string
	l    *zap.Logger
}

// Logger returns the request's logger, which carries its request ID.
func Logger(c echo.Context) *zap.Logger {
	switch l := c.Get(loggerKey).(type) {
	case *zap.Logger:
		return l
	case *reqLogger:
		if l.l == nil {
			l.l = l.base.With(zap.String("request_id", l.id))
		}
		return l.l
	}
	return zap.NewNop()
}

// observe gives every request an ID (the client's X-Request-Id when it is
// sane, else a new one), a logger carrying it, metrics, recovery from
// panics, and one access-log line. It hands errors to the error handler
// itself so that the log and the metrics see the final status.
func (s *Server) observe(listener string) echo.MiddlewareFunc {
	inflight := s.metrics.inflight.WithLabelValues(listener)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			start := s.now()
			req := c.Request()
			id := req.Header.Get(headerRequestID)
			if !validRequestID(id) {
				id = newRequestID()
			}
			c.Response().Header().Set(headerRequestID, id)
			c.Set(loggerKey, &reqLogger{base: s.logger, id: id})
			inflight.Inc()
			defer inflight.Dec()

			func() {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic serving %s %s: %v", req.Method, req.URL.Path, r)
						Logger(c).Error("panic", zap.Any("panic", r), zap.Stack("stack"))
					}
				}()
				err = next(c)
			}()
			if err != nil {
				c.Error(err)
			}

			res := c.Response()
			route := c.Path()
			if route == "" || res.Status == 404 && route == "/*" {
				route = "unmatched"
			}
			elapsed := s.now().Sub(start)
			s.metrics.observe(listener, req.Method, route, res.Status, elapsed.Seconds())
			fields := []zap.Field{
				zap.String("request_id", id),
				zap.String("listener", listener),
				zap.String("method", req.Method),
				zap.String("path", truncate(req.URL.Path, 256)),
				zap.Int("status", res.Status),
				zap.Int64("bytes_out", res.Size),
				zap.Duration("duration", elapsed),
				zap.String("remote", c.RealIP()),
			}
			if p := Principal(c); p != "" {
				fields = append(fields, zap.String("principal", p))
			}
			if a, ok := CurrentAdmin(c); ok {
				fields = append(fields, zap.String("admin", a.Name))
			}
			if err != nil && deviceupdate.ErrorCode(err) != deviceupdate.EINTERNAL {
				fields = append(fields, zap.String("error", err.Error()))
			}
			s.logger.Info("request", fields...)
			return nil
		}
	}
}

// bearerToken returns the credentials of an Authorization header of the
// Bearer scheme, whose name is read in any case (RFC 7235 §2.1).
func bearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

// newRequestID returns this process's random prefix and a counter: unique
// across restarts without a random read per request.
func newRequestID() string {
	b := make([]byte, 0, 24)
	b = append(b, requestIDPrefix...)
	return string(strconv.AppendUint(b, requestIDCounter.Add(1), 36))
}

var (
	requestIDPrefix  = func() string { var b [6]byte; _, _ = rand.Read(b[:]); return hex.EncodeToString(b[:]) + "-" }()
	requestIDCounter atomic.Uint64
)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
