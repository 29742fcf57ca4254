package deviceupdate

import (
	"context"
	"time"
)

// Lifetimes of a console session: it ends after SessionIdle without a
// request, and after SessionMaxAge whatever happens.
const (
	SessionIdle   = 30 * time.Minute
	SessionMaxAge = 12 * time.Hour
)

// Session is an admin signed in to the web console. Its secret, which
// the browser holds in a cookie, is not part of it: the store keeps only
// its hash.
type Session struct {
	Admin     Admin     `json:"admin"`
	CreatedAt time.Time `json:"createdAt"`
	SeenAt    time.Time `json:"seenAt"`
	// CSRF is the token every change made in this session must carry.
	CSRF string `json:"-"`
}

// Expired reports whether the session has ended at now, idle or too old.
func (s Session) Expired(now time.Time) bool {
	return !now.Before(s.SeenAt.Add(SessionIdle)) || !now.Before(s.CreatedAt.Add(SessionMaxAge))
}

// SessionService keeps console sessions. Signing in and out is audited
// (admin.signin, admin.signout); a refused sign-in is logged.
type SessionService interface {
	// SignIn checks the name and password (AdminService.Authenticate) and
	// starts a session, returning its secret. Errors: EUNAUTHORIZED.
	SignIn(ctx context.Context, name, password, from string) (secret string, s Session, err error)
	// Session returns the live session of a secret and marks it seen.
	// Errors: EUNAUTHORIZED (unknown, ended, or its admin removed or
	// changed role since).
	Session(ctx context.Context, secret string) (Session, error)
	// SignOut ends the session of a secret; ending an unknown one is not
	// an error.
	SignOut(ctx context.Context, secret string) error
}
