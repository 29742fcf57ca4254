package handler

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/netip"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// errAnonymous is the answer to the external endpoints without valid
// credentials (SPEC §5).
var errAnonymous = deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "anonymous access is not supported")

// basicChallenge asks for HTTP Basic credentials on a 401 of the external
// endpoints.
const basicChallenge = `Basic realm="deviceupdate"`

// principalKey holds, in the echo context, who an external request
// authenticated as.
const principalKey = "deviceupdate.principal"

// Reasons of the external authentication failures metric.
const (
	authNoCredentials     = "no_credentials"     // neither a client certificate nor an Authorization header
	authUnsupportedScheme = "unsupported_scheme" // an Authorization header that is not HTTP Basic
	authBadCredentials    = "bad_credentials"    // Basic credentials that do not authenticate
	authBadCertificate    = "bad_certificate"    // a client certificate not valid for client authentication

	// authThrottled is a sign-in refused unchecked: its source failed too
	// often lately. It is counted in the throttle's metric, not as a failure.
	authThrottled = "throttled"
)

// Reasons of the throttled sign-ins metric.
const (
	throttleFailures = "failures"
	throttleInFlight = "in_flight"
	throttleWait     = "wait"
)

// maxCertName bounds the common name carried into a principal.
const maxCertName = 128

// Principal returns who the request authenticated as on an external
// endpoint: "cert:<CommonName>" for a client certificate, the user name
// for HTTP Basic; "" elsewhere.
func Principal(c echo.Context) string {
	p, _ := c.Get(principalKey).(string)
	return p
}

// requireExternal admits requests that carry either a client certificate
// verified against the service CA and issued for client authentication,
// or HTTP Basic credentials of a user. Others get 401 with the SPEC's text
// and a Basic challenge, and are counted by reason. The principal is kept
// for the request's log lines and the poll's record.
func (s *Server) requireExternal(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		principal, reason, err := s.externalPrincipal(c)
		if err != nil {
			return err
		}
		if principal == "" {
			detail := reason
			if reason == authThrottled {
				detail = "too many failed sign-ins from this address lately; not checked"
			} else {
				s.metrics.authFailures.WithLabelValues(reason).Inc()
			}
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, basicChallenge)
			return &deviceupdate.Error{Code: errAnonymous.Code, Message: errAnonymous.Message, Err: errors.New(detail)}
		}
		c.Set(principalKey, principal)
		c.Set(loggerKey, Logger(c).With(zap.String("principal", principal)))
		return next(c)
	}
}

// externalPrincipal names who the request authenticates as, or says why
// it does not (reason). A client certificate is looked at first: the TLS
// handshake has verified it (tls.VerifyClientCertIfGiven with the CA as
// ClientCAs), which costs nothing more here. err is a failure of the
// service, not of the credentials.
//
// A password costs a bcrypt check, so HTTP Basic passes the source
// address's throttle first, and waits at most authWait for a check to be
// free: a flood of guesses is refused fast and never queues.
func (s *Server) externalPrincipal(c echo.Context) (principal, reason string, err error) {
	reason = authNoCredentials
	if st := c.Request().TLS; st != nil && len(st.PeerCertificates) > 0 {
		if len(st.VerifiedChains) > 0 && allowsClientAuth(st.VerifiedChains[0][0]) {
			return certPrincipal(st.VerifiedChains[0][0]), "", nil
		}
		reason = authBadCertificate
	}
	if c.Request().Header.Get(echo.HeaderAuthorization) == "" {
		return "", reason, nil
	}
	name, password, ok := c.Request().BasicAuth()
	if !ok || s.users == nil {
		return "", authUnsupportedScheme, nil
	}
	// Credentials verified lately cost nothing to accept again: a phone
	// behind the same address as a flood of guesses (a NAT) keeps
	// signing in while the address is throttled.
	if u, ok := s.users.Remembered(name, password); ok {
		return u.Name, "", nil
	}
	src, verdict := s.throttle.admit(remoteAddr(c))
	switch verdict {
	case overFailures:
		s.metrics.authThrottled.WithLabelValues(throttleFailures).Inc()
		return "", authThrottled, nil
	case overInFlight:
		s.metrics.authThrottled.WithLabelValues(throttleInFlight).Inc()
		return "", "", busy(c, "30", "busy checking credentials from this address")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.authWait)
	u, err := s.users.Authenticate(ctx, name, password)
	cancel()
	code := deviceupdate.ErrorCode(err)
	// A check that found no bcrypt slot in time spends the budget too: a
	// source whose checks keep timing out is loading the server all the same.
	waited := errors.Is(err, context.DeadlineExceeded) && c.Request().Context().Err() == nil
	s.throttle.done(src, code == deviceupdate.EUNAUTHORIZED || waited)
	switch {
	case code == "":
		return u.Name, "", nil
	case code == deviceupdate.EUNAUTHORIZED:
		return "", authBadCredentials, nil
	case waited:
		s.metrics.authThrottled.WithLabelValues(throttleWait).Inc()
		return "", "", busy(c, "30", "busy checking credentials")
	default:
		return "", "", err
	}
}

// remoteAddr is the address the request came from; the zero Addr when
// it cannot be read, which the throttle counts as one source.
func remoteAddr(c echo.Context) netip.Addr {
	ap, err := netip.ParseAddrPort(c.Request().RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// allowsClientAuth reports whether a certificate names client
// authentication (or any usage) among its extended key usages; one that
// names none is not taken as a client certificate.
func allowsClientAuth(cert *x509.Certificate) bool {
	for _, u := range cert.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func certPrincipal(cert *x509.Certificate) string {
	name := cert.Subject.CommonName
	if name == "" {
		return "cert:serial:" + cert.SerialNumber.Text(16)
	}
	return "cert:" + truncate(name, maxCertName)
}

// addUserRequest is the body of POST /users.
type addUserRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

func (s *Server) handleUsers(c echo.Context) error {
	users, err := s.users.Users(c.Request().Context())
	if err != nil {
		return err
	}
	if users == nil {
		users = []deviceupdate.User{}
	}
	return c.JSON(http.StatusOK, users)
}

func (s *Server) handleAddUser(c echo.Context) error {
	var req addUserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := s.users.AddUser(c.Request().Context(), req.Name, req.Password, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, u)
}

func (s *Server) handleRemoveUser(c echo.Context) error {
	if err := s.users.RemoveUser(c.Request().Context(), c.Param("name"), actor(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
