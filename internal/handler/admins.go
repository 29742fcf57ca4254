package handler

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// adminKey holds, in the echo context, the admin a request acts as.
const adminKey = "deviceupdate.admin"

// CurrentAdmin returns the admin the request acts as: set by the admin
// API's authentication, or by the console (WithAdmin) for a signed-in
// session; ok is false when there is none.
func CurrentAdmin(c echo.Context) (deviceupdate.Admin, bool) {
	a, ok := c.Get(adminKey).(deviceupdate.Admin)
	return a, ok
}

// WithAdmin makes a the admin the request acts as: its name goes to the
// request's log line and, through actor, to the audit trail.
func WithAdmin(c echo.Context, a deviceupdate.Admin) {
	c.Set(adminKey, a)
}

// actor names who made an admin request, for the services and the trail:
// the admin's name ("bootstrap" for the admin.token). Every admin route
// sets the admin before its handler runs; the address is the fallback
// for one that would not, so that the trail never names nobody.
func actor(c echo.Context) string {
	if a, ok := CurrentAdmin(c); ok {
		return a.Name
	}
	return "unknown@" + c.RealIP()
}

// access is what a route requires of the admin: a role, or (self) the
// admin role unless the :name of the path is the admin's own.
type access struct {
	role deviceupdate.Role
	self bool
}

// The accesses of the admin API's routes.
var (
	canRead    = access{role: deviceupdate.RoleViewer}
	canOperate = access{role: deviceupdate.RoleOperator}
	canAdmin   = access{role: deviceupdate.RoleAdmin}
	// ownOrAdmin: any admin manages their own tokens; the admin role
	// manages anyone's.
	ownOrAdmin = access{role: deviceupdate.RoleAdmin, self: true}
)

// routeKey names a route in the role table: method and echo path.
func routeKey(method, path string) string { return method + " " + path }

// route registers an admin API route with the access it requires. A
// route registered otherwise has no entry in the table, and requireAdmin
// refuses every request to it: forgetting a role fails closed.
func (s *Server) route(g *echo.Group, method, path string, need access, h echo.HandlerFunc) {
	s.access[routeKey(method, AdminPrefix+path)] = need
	g.Add(method, path, h)
}

// requireAdmin authenticates the admin API's requests and checks their
// admin's role against the route's. The bearer token is the admin.token
// (compared in constant time over hashes, so neither its content nor its
// length leaks through timing), acting as the bootstrap admin, or a
// personal token, acting as its admin with their role now. A refusal is
// logged at warn level with the source address and the reason, never the
// token sent.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a, err := s.authenticateAdmin(c)
		if err != nil {
			return err
		}
		WithAdmin(c, a)
		need, ok := s.access[routeKey(c.Request().Method, c.Path())]
		if !ok {
			if c.Path() == AdminPrefix || c.Path() == AdminPrefix+"/*" { // no such endpoint: echo's 404 for the group
				return next(c)
			}
			Logger(c).Error("admin route without a role refused", zap.String("route", routeKey(c.Request().Method, c.Path())))
			return deviceupdate.Errorf(deviceupdate.EFORBIDDEN, "this endpoint has no role set; it is refused to everyone")
		}
		if need.self && strings.EqualFold(c.Param("name"), a.Name) || a.Role.Allows(need.role) {
			return next(c)
		}
		msg := fmt.Sprintf("%s role required; %s is %s %s", need.role, a.Name, article(a.Role), a.Role)
		if need.self {
			msg = fmt.Sprintf("%s role required to manage another admin's tokens; %s is %s %s", need.role, a.Name, article(a.Role), a.Role)
		}
		Logger(c).Warn("admin role refused", zap.String("remote", c.RealIP()), zap.String("admin", a.Name),
			zap.String("role", string(a.Role)), zap.String("need", string(need.role)))
		return deviceupdate.Errorf(deviceupdate.EFORBIDDEN, "%s", msg)
	}
}

func article(r deviceupdate.Role) string {
	if strings.HasPrefix(string(r), "a") || strings.HasPrefix(string(r), "o") {
		return "an"
	}
	return "a"
}

// errAdminToken is the answer to every refused admin credential: the
// same whether the token is unknown, revoked, expired or its admin gone.
var errAdminToken = deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "missing or invalid admin token")

// authenticateAdmin resolves the request's bearer token to an admin.
func (s *Server) authenticateAdmin(c echo.Context) (deviceupdate.Admin, error) {
	header := c.Request().Header.Get(echo.HeaderAuthorization)
	tok, ok := bearerToken(header)
	sum := sha256.Sum256([]byte(tok))
	reason := "wrong admin token"
	switch {
	case header == "":
		reason = "no Authorization header"
	case !ok:
		reason = "not a bearer token"
	case subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) == 1:
		return deviceupdate.Admin{Name: deviceupdate.BootstrapAdmin, Role: deviceupdate.RoleAdmin}, nil
	case s.admins != nil:
		a, err := s.admins.TokenAdmin(c.Request().Context(), tok)
		if err == nil {
			return a, nil
		}
		if deviceupdate.ErrorCode(err) != deviceupdate.EUNAUTHORIZED {
			return deviceupdate.Admin{}, err
		}
		reason = "unknown, revoked or expired admin token"
	}
	Logger(c).Warn("admin credentials refused", zap.String("remote", c.RealIP()), zap.String("reason", reason))
	return deviceupdate.Admin{}, errAdminToken
}

// addAdminRequest is the body of POST /admins; Password may be empty for
// an admin who uses tokens only.
type addAdminRequest struct {
	Name     string            `json:"name"`
	Role     deviceupdate.Role `json:"role"`
	Password string            `json:"password"`
}

func (s *Server) handleAdmins(c echo.Context) error {
	admins, err := s.admins.Admins(c.Request().Context())
	if err != nil {
		return err
	}
	if admins == nil {
		admins = []deviceupdate.Admin{}
	}
	return c.JSON(http.StatusOK, admins)
}

func (s *Server) handleAddAdmin(c echo.Context) error {
	var req addAdminRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	a, err := s.admins.AddAdmin(c.Request().Context(), req.Name, req.Role, req.Password, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, a)
}

func (s *Server) handleRemoveAdmin(c echo.Context) error {
	if err := s.admins.RemoveAdmin(c.Request().Context(), c.Param("name"), actor(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleTokens(c echo.Context) error {
	toks, err := s.admins.Tokens(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	if toks == nil {
		toks = []deviceupdate.AdminToken{}
	}
	return c.JSON(http.StatusOK, toks)
}

// newTokenRequest is the body of POST /admins/:name/tokens: the token's
// lifetime, a duration such as 720h or days such as 90d; empty for the
// default.
type newTokenRequest struct {
	Expires string `json:"expires"`
}

// NewTokenResponse is the answer to POST /admins/:name/tokens: the
// token's secret, shown this once, and its description.
type NewTokenResponse struct {
	Secret string                  `json:"secret"`
	Token  deviceupdate.AdminToken `json:"token"`
}

func (s *Server) handleNewToken(c echo.Context) error {
	var req newTokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var ttl time.Duration
	if req.Expires != "" {
		var err error
		if ttl, err = deviceupdate.ParseAge(req.Expires); err != nil {
			return deviceupdate.Errorf(deviceupdate.EINVALID, "expires: %s", deviceupdate.ErrorMessage(err))
		}
	}
	secret, t, err := s.admins.NewToken(c.Request().Context(), c.Param("name"), ttl, actor(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, NewTokenResponse{Secret: secret, Token: t})
}

func (s *Server) handleRevokeToken(c echo.Context) error {
	if err := s.admins.RevokeToken(c.Request().Context(), c.Param("name"), c.Param("id"), actor(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
