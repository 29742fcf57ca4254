package deviceupdate

import (
	"encoding/base64"
	"strconv"
)

// Lists that can grow large (devices, audit entries, device logs) are
// read a page at a time (SPEC §7): at most a limit of entries, after a
// cursor the previous page returned as its next.
const (
	DefaultPageLimit = 500
	MaxPageLimit     = 5000
)

// Page selects a page of a list: at most Limit entries (0: all of them)
// after Cursor, the Next of the page before ("" for the first page).
type Page struct {
	Cursor string
	Limit  int
}

// maxCursor bounds a cursor sent back by a client.
const maxCursor = 1024

// ParsePageLimit reads a list's limit: "" is DefaultPageLimit. Errors:
// EINVALID.
func ParsePageLimit(s string) (int, error) {
	if s == "" {
		return DefaultPageLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxPageLimit {
		return 0, Errorf(EINVALID, "limit=%q: want a whole number from 1 to %d", truncateForMessage(s), MaxPageLimit)
	}
	return n, nil
}

// EncodeCursor wraps a position in a list into an opaque cursor.
func EncodeCursor(pos string) string { return base64.RawURLEncoding.EncodeToString([]byte(pos)) }

// DecodeCursor returns the position an EncodeCursor cursor holds. Errors:
// EINVALID.
func DecodeCursor(c string) (string, error) {
	pos, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(c) > maxCursor {
		return "", badCursor(c)
	}
	return string(pos), nil
}

// badCursor is the error of a cursor this server did not give.
func badCursor(c string) error {
	return Errorf(EINVALID, "cursor=%q is not one this server gave; list again from the start without it", truncateForMessage(c))
}
