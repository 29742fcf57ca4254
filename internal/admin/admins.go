package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// Bounds of what one admin may hold, so that a script in a loop cannot
// grow the store: past MaxTokensPerAdmin live tokens a new one is
// refused; past MaxSessionsPerAdmin live sessions the oldest ends.
const (
	MaxTokensPerAdmin   = 100
	MaxSessionsPerAdmin = 10
)

// sessionTouch is how stale a session's last-seen time may get before a
// request writes it again: idle expiry (30 minutes) needs no finer.
const sessionTouch = time.Minute

// TokenPrefix starts every personal API token, so that one found in a
// log or a repository is recognised, and told apart from admin.token.
const TokenPrefix = "du_"

// secretBytes is the randomness of a token's or a session's secret.
const secretBytes = 32

// tokenLen is the length of a token: the prefix and base64url of 32 bytes.
var tokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(secretBytes)

// Admins manages admins, their tokens and their console sessions, each
// change audited through the Service's trail. It is safe for concurrent
// use; make it with NewAdmins.
type Admins struct {
	svc      *Service
	throttle *signInThrottle
}

// NewAdmins returns the admins of s's store.
func NewAdmins(s *Service) *Admins {
	return &Admins{svc: s, throttle: newSignInThrottle(s.now)}
}

// Compile-time checks.
var (
	_ deviceupdate.AdminService   = (*Admins)(nil)
	_ deviceupdate.SessionService = (*Admins)(nil)
)

// Admins returns every admin, ordered by name.
func (a *Admins) Admins(context.Context) ([]deviceupdate.Admin, error) {
	return a.svc.DB.Admins()
}

// AddAdmin validates, stores and audits a new admin; the entry holds the
// admin as the API shows them, never the password nor its hash.
func (a *Admins) AddAdmin(_ context.Context, name string, role deviceupdate.Role, password, actor string) (deviceupdate.Admin, error) {
	ad := deviceupdate.Admin{Name: name, Role: role, CreatedAt: a.svc.now().UTC().Truncate(time.Second), CreatedBy: actor}
	// As for users, the password is hashed before the audited change,
	// which holds the store's write lock.
	err := deviceupdate.ValidateAdminName(name)
	if err == nil && !role.Valid() {
		_, err = deviceupdate.ParseRole(string(role))
	}
	if err == nil && password != "" {
		err = deviceupdate.ValidatePassword(name, password)
	}
	if err == nil {
		err = a.svc.DB.CheckAdminFree(name)
	}
	var hash store.PasswordHash
	if err == nil && password != "" {
		hash, err = store.HashPassword(password)
	}
	ad.HasPassword = password != ""
	refused := err
	err = a.svc.change(audit.Entry{Actor: actor, Action: "admin.add", Target: name}, func(tx store.Store, e *audit.Entry) error {
		if refused != nil {
			return refused
		}
		if err := tx.AddAdmin(ad, hash); err != nil {
			return err
		}
		e.After, _ = json.Marshal(ad)
		return nil
	})
	if err != nil {
		return deviceupdate.Admin{}, err
	}
	return ad, nil
}

// RemoveAdmin deletes and audits an admin with their tokens and sessions.
func (a *Admins) RemoveAdmin(_ context.Context, name, actor string) error {
	return a.svc.change(audit.Entry{Actor: actor, Action: "admin.remove", Target: name}, func(tx store.Store, e *audit.Entry) error {
		removed, err := tx.RemoveAdmin(name)
		if err != nil {
			return err
		}
		e.Target = removed.Name
		e.Before, _ = json.Marshal(removed)
		return nil
	})
}

// Authenticate checks an admin's name and password; it is neither
// audited nor throttled: SignIn, which knows the source, does both.
func (a *Admins) Authenticate(ctx context.Context, name, password string) (deviceupdate.Admin, error) {
	return a.svc.DB.CheckAdminPassword(ctx, name, password)
}

// NewToken makes, stores and audits a personal API token; the entry
// holds its ID and expiry, never its secret.
func (a *Admins) NewToken(_ context.Context, name string, ttl time.Duration, actor string) (secret string, t deviceupdate.AdminToken, err error) {
	now := a.svc.now().UTC().Truncate(time.Second)
	refused := checkTTL(ttl)
	if ttl == 0 {
		ttl = deviceupdate.DefaultTokenTTL
	}
	var raw [secretBytes]byte
	_, _ = rand.Read(raw[:]) // never fails; see crypto/rand.Read
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	hash := store.SecretHash(sha256.Sum256([]byte(secret)))
	t = deviceupdate.AdminToken{ID: hex.EncodeToString(hash[:6]), Admin: name, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	err = a.svc.change(audit.Entry{Actor: actor, Action: "admin.token.create", Target: name}, func(tx store.Store, e *audit.Entry) error {
		if refused != nil {
			return refused
		}
		ad, err := tx.FindAdmin(name)
		if err != nil {
			return err
		}
		t.Admin, e.Target = ad.Name, ad.Name
		if _, err := tx.AddAdminToken(t, hash, now, MaxTokensPerAdmin); err != nil {
			return err
		}
		e.After, _ = json.Marshal(t)
		return nil
	})
	if err != nil {
		return "", deviceupdate.AdminToken{}, err
	}
	return secret, t, nil
}

// checkTTL refuses a lifetime out of bounds; 0 means the default.
func checkTTL(ttl time.Duration) error {
	if ttl < 0 || ttl > deviceupdate.MaxTokenTTL {
		return deviceupdate.Errorf(deviceupdate.EINVALID, "token lifetime %s: want up to %d days", ttl, deviceupdate.MaxTokenTTL/(24*time.Hour))
	}
	return nil
}

// Tokens lists an admin's tokens, expired ones too.
func (a *Admins) Tokens(_ context.Context, name string) ([]deviceupdate.AdminToken, error) {
	return a.svc.DB.AdminTokens(name)
}

// RevokeToken deletes and audits one of an admin's tokens; it stops
// working at once.
func (a *Admins) RevokeToken(_ context.Context, name, id, actor string) error {
	return a.svc.change(audit.Entry{Actor: actor, Action: "admin.token.revoke", Target: name}, func(tx store.Store, e *audit.Entry) error {
		t, err := tx.RevokeAdminToken(name, id)
		if err != nil {
			return err
		}
		e.Target = t.Admin
		e.Before, _ = json.Marshal(t)
		return nil
	})
}

// TokenAdmin returns the admin a live token belongs to, with their role
// now. A secret not shaped like a token is refused without a look-up.
func (a *Admins) TokenAdmin(_ context.Context, secret string) (deviceupdate.Admin, error) {
	if len(secret) != tokenLen || !strings.HasPrefix(secret, TokenPrefix) {
		return deviceupdate.Admin{}, store.ErrBadToken
	}
	ad, _, err := a.svc.DB.TokenAdmin(sha256.Sum256([]byte(secret)), a.svc.now())
	return ad, err
}

// errSignIn is every refused password, whatever the cause: the store's
// one answer.
var errSignIn = store.ErrBadCredentials

// SignIn checks a name and password from a source address and starts a
// console session, audited as admin.signin. The source's and the name's
// failure budgets are checked before the password is (see throttle.go):
// past them, the sign-in is refused without costing a bcrypt check. A
// refused sign-in is logged at warn level with the source and the name,
// not audited: the trail holds changes, and a flood of guesses would
// bury them.
func (a *Admins) SignIn(ctx context.Context, name, password, from string) (string, deviceupdate.Session, error) {
	key := strings.ToLower(name)
	if deviceupdate.ValidateAdminName(name) != nil {
		key = "\x00invalid" // names that cannot exist share one budget
	}
	tk, over := a.throttle.admit(from, key)
	if over != "" {
		a.warn("admin sign-in refused", from, name, "too many failed sign-ins for this "+over+" lately; not checked")
		return "", deviceupdate.Session{}, deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "too many failed sign-ins lately; wait a minute and try again")
	}
	ad, err := a.svc.DB.CheckAdminPassword(ctx, name, password)
	a.throttle.done(tk, deviceupdate.ErrorCode(err) == deviceupdate.EUNAUTHORIZED)
	if err != nil {
		if deviceupdate.ErrorCode(err) == deviceupdate.EUNAUTHORIZED {
			a.warn("admin sign-in refused", from, name, "wrong user name or password")
			return "", deviceupdate.Session{}, errSignIn
		}
		return "", deviceupdate.Session{}, err
	}
	secret, hash := newSecret()
	csrf, _ := newSecret()
	now := a.svc.now().UTC()
	s := deviceupdate.Session{Admin: ad, CreatedAt: now, SeenAt: now, CSRF: csrf}
	after, _ := json.Marshal(struct {
		From string            `json:"from"`
		Role deviceupdate.Role `json:"role"`
	}{from, ad.Role})
	err = a.svc.change(audit.Entry{Actor: ad.Name, Action: "admin.signin", Target: ad.Name, After: after}, func(tx store.Store, _ *audit.Entry) error {
		_, err := tx.AddSession(store.NewSession{Hash: hash, Session: s}, now, MaxSessionsPerAdmin)
		return err
	})
	if err != nil {
		return "", deviceupdate.Session{}, err
	}
	return secret, s, nil
}

func (a *Admins) warn(msg, from, name, reason string) {
	if a.svc.Logger != nil {
		a.svc.Logger.Warn(msg, zap.String("remote", from), zap.String("admin", truncate(name, 80)), zap.String("reason", reason))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// newSecret returns a new random secret and its hash.
func newSecret() (string, store.SecretHash) {
	var raw [secretBytes]byte
	_, _ = rand.Read(raw[:]) // never fails; see crypto/rand.Read
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	return s, sha256.Sum256([]byte(s))
}

// Session returns the live session of a secret and marks it seen.
func (a *Admins) Session(_ context.Context, secret string) (deviceupdate.Session, error) {
	if len(secret) != base64.RawURLEncoding.EncodedLen(secretBytes) {
		return deviceupdate.Session{}, store.ErrNoSession
	}
	return a.svc.DB.Session(sha256.Sum256([]byte(secret)), a.svc.now().UTC(), sessionTouch)
}

// SignOut ends the session of a secret, audited as admin.signout with its
// admin as the actor; a secret of no live session is no error and no
// entry.
func (a *Admins) SignOut(ctx context.Context, secret string) error {
	s, err := a.Session(ctx, secret)
	if deviceupdate.ErrorCode(err) == deviceupdate.EUNAUTHORIZED {
		return nil
	} else if err != nil {
		return err
	}
	hash := store.SecretHash(sha256.Sum256([]byte(secret)))
	return a.svc.change(audit.Entry{Actor: s.Admin.Name, Action: "admin.signout", Target: s.Admin.Name}, func(tx store.Store, _ *audit.Entry) error {
		_, err := tx.EndSession(hash)
		return err
	})
}
