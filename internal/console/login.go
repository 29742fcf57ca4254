package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// Bounds of what the sign-in form accepts before the session service
// sees it.
const (
	maxNameLen     = 256
	maxPasswordLen = 1024
)

type loginData struct {
	Username string
	Next     string
}

func (c *Console) handleLoginPage(ec echo.Context) error {
	next := ec.QueryParam("next")
	if !safeNext(next) {
		next = ""
	}
	return c.render(ec, http.StatusOK, "login", page{Title: "Sign in", Data: loginData{Next: next}})
}

// handleLogin checks the name and password with the session service
// (which throttles sign-ins per source and per name) and sets the
// session cookie. A refusal shows the form again with one message,
// whatever was wrong.
func (c *Console) handleLogin(ec echo.Context) error {
	name := strings.TrimSpace(ec.FormValue("username"))
	password := ec.FormValue("password")
	next := ec.FormValue("next")
	if !safeNext(next) {
		next = "/"
	}
	d := loginData{Username: name, Next: next}
	if name == "" || password == "" || len(name) > maxNameLen || len(password) > maxPasswordLen {
		return c.render(ec, http.StatusUnauthorized, "login", page{Title: "Sign in", Error: "Enter your admin name and password.", Data: d})
	}
	secret, s, err := c.cfg.Sessions.SignIn(ec.Request().Context(), name, password, ec.RealIP())
	if err != nil {
		code := deviceupdate.ErrorCode(err)
		msg := "Wrong name or password."
		switch code {
		case deviceupdate.EUNAUTHORIZED:
		case deviceupdate.EUNAVAILABLE, deviceupdate.EFORBIDDEN:
			msg = deviceupdate.ErrorMessage(err) // throttled: say so, and when to try again
		default:
			return c.fail(ec, nil, err)
		}
		Logger(c, ec).Warn("console sign-in refused", zap.String("admin", truncate(name, 64)), zap.String("code", code))
		return c.render(ec, statusOf(code), "login", page{Title: "Sign in", Error: msg, Data: d})
	}
	ec.SetCookie(&http.Cookie{
		Name: CookieName, Value: secret, Path: "/", MaxAge: int(deviceupdate.SessionMaxAge.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	Logger(c, ec).Info("console sign-in", zap.String("admin", s.Admin.Name), zap.String("role", string(s.Admin.Role)))
	return ec.Redirect(http.StatusSeeOther, next)
}

// handleLogout ends the session and clears the cookie.
func (c *Console) handleLogout(ec echo.Context, s *deviceupdate.Session) error {
	if ck, err := ec.Cookie(CookieName); err == nil {
		if err := c.cfg.Sessions.SignOut(ec.Request().Context(), ck.Value); err != nil {
			return c.fail(ec, s, err)
		}
	}
	ec.SetCookie(&http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return ec.Redirect(http.StatusSeeOther, "/login")
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
