package deviceupdate

import (
	"context"
	"time"
)

// Role is what an admin may do (SPEC §7). Roles are ordered: each allows
// what the one below it does.
type Role string

// The roles, from least to most.
const (
	// RoleViewer reads everything: rules, packages, devices, logs' list,
	// configuration, the audit trail.
	RoleViewer Role = "viewer"
	// RoleOperator also acts on rules and rollouts, test devices, device
	// logs and device settings.
	RoleOperator Role = "operator"
	// RoleAdmin also imports packages and changes configuration, sites,
	// users, admins, backups and stored files.
	RoleAdmin Role = "admin"
)

// Roles lists the roles from least to most.
var Roles = []Role{RoleViewer, RoleOperator, RoleAdmin}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether an admin of role r may do what needs role need.
// An unknown role allows nothing.
func (r Role) Allows(need Role) bool {
	return r.rank() > 0 && need.rank() > 0 && r.rank() >= need.rank()
}

// ParseRole reads a role name. Errors: EINVALID.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", Errorf(EINVALID, "role %q: want viewer, operator or admin", truncateForMessage(s))
}

// ValidateAdminName checks an admin's name: the rules of user names
// (1-64 letters, digits, '.', '-', '_' or '@', starting with a letter or a
// digit). Errors: EINVALID.
func ValidateAdminName(name string) error {
	if !validUserName(name) {
		return Errorf(EINVALID, "admin name %q: want 1-%d letters, digits, '.', '-', '_' or '@', starting with a letter or a digit",
			truncateForMessage(name), MaxUserNameLen)
	}
	return nil
}

// BootstrapAdmin is the name under which the break-glass admin.token
// made by `certs init` acts (role admin), in the trail and the logs.
const BootstrapAdmin = "bootstrap"

// Admin is a person who administers the service: a name, a role and
// their own credentials, a password for the console and personal API
// tokens. Neither credential is part of it: the store keeps only hashes.
// Admin names follow the rules of user names (ValidateUserName);
// "bootstrap" is reserved.
type Admin struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
	CreatedBy string    `json:"createdBy"`
	// HasPassword says whether the admin may sign in to the console; an
	// admin without one uses tokens only.
	HasPassword bool `json:"hasPassword"`
}

// Lifetimes of personal API tokens.
const (
	DefaultTokenTTL = 90 * 24 * time.Hour
	MaxTokenTTL     = 366 * 24 * time.Hour
)

// AdminToken describes a personal API token; the secret itself is shown
// once, when it is made, and stored only as a hash.
type AdminToken struct {
	// ID is a short public name of the token, for lists and revocation.
	ID        string    `json:"id"`
	Admin     string    `json:"admin"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Expired reports whether the token no longer works at now.
func (t AdminToken) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// AdminService manages admins and their credentials. Every change is
// audited, with actor naming the admin who made it; authentication is
// not.
type AdminService interface {
	// Admins returns every admin, ordered by name.
	Admins(ctx context.Context) ([]Admin, error)
	// AddAdmin validates and stores a new admin. password may be empty
	// (a token-only admin); otherwise it follows ValidatePassword and is
	// stored hashed. Errors: EINVALID, ECONFLICT (the name is taken, or
	// is "bootstrap").
	AddAdmin(ctx context.Context, name string, role Role, password, actor string) (Admin, error)
	// RemoveAdmin deletes an admin with their tokens and sessions; their
	// credentials stop working at once. Errors: ENOTFOUND.
	RemoveAdmin(ctx context.Context, name, actor string) error
	// Authenticate checks a name and a password. Errors: EUNAUTHORIZED
	// for any failure, with one message whether the admin is unknown, has
	// no password or gave a wrong one.
	Authenticate(ctx context.Context, name, password string) (Admin, error)
	// NewToken makes a personal API token for the named admin, valid for
	// ttl (DefaultTokenTTL when zero, at most MaxTokenTTL), and returns
	// its secret, which is never shown again. Errors: EINVALID, ENOTFOUND.
	NewToken(ctx context.Context, name string, ttl time.Duration, actor string) (secret string, t AdminToken, err error)
	// Tokens lists the named admin's tokens, expired ones too.
	Tokens(ctx context.Context, name string) ([]AdminToken, error)
	// RevokeToken deletes one of the named admin's tokens. Errors:
	// ENOTFOUND.
	RevokeToken(ctx context.Context, name, id, actor string) error
	// TokenAdmin returns the admin a token secret belongs to. Errors:
	// EUNAUTHORIZED (unknown, revoked or expired).
	TokenAdmin(ctx context.Context, secret string) (Admin, error)
}
