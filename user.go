package deviceupdate

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// User is an account that external phones sign in with (HTTP Basic on
// the external endpoints, SPEC §5). Its password is never part of it: the
// store keeps only a hash, and nothing that marshals a User can leak one.
type User struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	CreatedBy string    `json:"createdBy"` // the admin who added it
}

// Limits of user names and passwords.
const (
	MaxUserNameLen = 64
	MinPasswordLen = 12  // characters
	MaxPasswordLen = 256 // characters
)

// ValidateUserName checks a user name: 1-64 letters, digits, '.', '-',
// '_' or '@', starting with a letter or a digit (so never "." or "..",
// and never a ':', which HTTP Basic cannot carry in a name). Errors:
// EINVALID.
func ValidateUserName(name string) error {
	if !validUserName(name) {
		return Errorf(EINVALID, "user name %q: want 1-%d letters, digits, '.', '-', '_' or '@', starting with a letter or a digit",
			truncateForMessage(name), MaxUserNameLen)
	}
	return nil
}

func validUserName(s string) bool {
	if s == "" || len(s) > MaxUserNameLen || !isAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '-' && c != '_' && c != '@' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ValidatePassword checks a new password for the user name: 12 to 256
// characters of valid UTF-8 without control characters (it must fit on
// one line), and not the user name itself. The message never repeats the
// password. Errors: EINVALID.
func ValidatePassword(name, password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return Errorf(EINVALID, "password: not valid UTF-8 text")
	case n < MinPasswordLen:
		return Errorf(EINVALID, "password: too short (%d characters); want at least %d", n, MinPasswordLen)
	case n > MaxPasswordLen:
		return Errorf(EINVALID, "password: too long (%d characters); want at most %d", n, MaxPasswordLen)
	case strings.IndexFunc(password, unicode.IsControl) >= 0:
		return Errorf(EINVALID, "password: contains a control character (a tab, a line break...); use printable characters")
	case strings.EqualFold(password, name):
		return Errorf(EINVALID, "password: must not be the user name")
	}
	return nil
}

// UserService manages the users of the external endpoints; additions and
// removals are audited, authentication is not.
type UserService interface {
	// Users returns every user, ordered by name.
	Users(ctx context.Context) ([]User, error)
	// AddUser validates name and password and stores the user, with the
	// password hashed. Names are unique regardless of case. Errors:
	// EINVALID (the name or the password), ECONFLICT (the name is taken).
	AddUser(ctx context.Context, name, password, actor string) (User, error)
	// RemoveUser deletes the named user (any case); its credentials stop
	// working at once. Errors: ENOTFOUND.
	RemoveUser(ctx context.Context, name, actor string) error
	// Authenticate checks a name and a password and returns the user.
	// Errors: EUNAUTHORIZED for any failure, with the same message whether
	// the user is unknown or the password wrong; EINTERNAL when the store
	// fails.
	Authenticate(ctx context.Context, name, password string) (User, error)
	// Remembered returns the user when Authenticate verified this name
	// and password lately and nothing changed since; it costs no password
	// check, so it may be asked before any throttle. ok is false
	// otherwise, which says nothing of the credentials.
	Remembered(name, password string) (u User, ok bool)
}
