package deviceupdate

import (
	"errors"
	"fmt"
)

// Application error codes. Every error a user can cause is an *Error with
// one of these codes; anything else is an internal error whose detail is
// logged and never shown. The HTTP layer maps each code to one status.
const (
	ECONFLICT       = "conflict"        // the state changed since it was read, or a duplicate
	EINTERNAL       = "internal"        // a fault of the service; details are only logged
	EINVALID        = "invalid"         // the request is malformed or a value is out of range
	ENOTFOUND       = "not_found"       // the named thing does not exist
	EUNAUTHORIZED   = "unauthorized"    // credentials are missing or wrong
	EFORBIDDEN      = "forbidden"       // credentials are valid but not enough
	ETOOLARGE       = "too_large"       // a body or file exceeds a configured limit
	EUNAVAILABLE    = "unavailable"     // overloaded or shutting down; retry later
	ETIMEOUT        = "timeout"         // the client sent its request too slowly and was cut off
	ENOTIMPLEMENTED = "not_implemented" // the operation is not supported
)

// Error is the application error. Code is machine-readable, Message is safe
// to show to any client. Err, when set, carries internal detail for the log.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error returns the message for users, followed by the internal cause when
// there is one, for logs.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

// Unwrap returns the internal cause, so errors.Is sees through an *Error.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain,
// EINTERNAL for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the safe message of the first *Error in err's chain,
// and a generic text for any other error: internal detail is never shown.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error; the server log has the details"
}

// truncateForMessage keeps hostile input from flooding an error message.
func truncateForMessage(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
