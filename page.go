package deviceupdate

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
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

// DeviceList is one page of the inventory, ordered by device ID.
type DeviceList struct {
	Devices []Device `json:"devices"`
	Next    string   `json:"next,omitempty"` // the cursor of the next page; "" at the end
}

// LogList is one page of the stored device logs, newest first.
type LogList struct {
	Logs []DeviceLog `json:"logs"`
	Next string      `json:"next,omitempty"` // the cursor of the next page; "" at the end
}

// AuditCursor is the cursor that follows the entry seq.
func AuditCursor(seq uint64) string { return EncodeCursor(strconv.FormatUint(seq, 10)) }

// ParseAuditCursor returns the sequence number an AuditCursor holds; ""
// is 0, before the first entry. Errors: EINVALID.
func ParseAuditCursor(c string) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	pos, err := DecodeCursor(c)
	if err != nil {
		return 0, err
	}
	seq, err := strconv.ParseUint(pos, 10, 64)
	if err != nil {
		return 0, badCursor(c)
	}
	return seq, nil
}

// LogCursor is the cursor that follows the log l in the list's order.
func LogCursor(l DeviceLog) string {
	return EncodeCursor(l.Modified.UTC().Format(time.RFC3339Nano) + " " + l.Path())
}

// ListedBefore reports whether l comes before o in a list of logs: the
// newer first, then by path.
func (l DeviceLog) ListedBefore(o DeviceLog) bool {
	if !l.Modified.Equal(o.Modified) {
		return l.Modified.After(o.Modified)
	}
	return l.Path() < o.Path()
}

// ParseLogCursor returns the log a LogCursor names (its time and path
// only); nil for "". Errors: EINVALID.
func ParseLogCursor(c string) (*DeviceLog, error) {
	if c == "" {
		return nil, nil
	}
	pos, err := DecodeCursor(c)
	if err != nil {
		return nil, err
	}
	at, path, _ := strings.Cut(pos, " ")
	parts := strings.Split(path, "/")
	l := &DeviceLog{}
	if l.Modified, err = time.Parse(time.RFC3339Nano, at); err != nil || len(parts) != 3 {
		return nil, badCursor(c)
	}
	l.Type, l.Device, l.Name = parts[0], parts[1], parts[2]
	return l, nil
}
