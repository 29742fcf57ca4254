package deviceupdate

import (
	"context"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// LogUpload is what a phone says of a log it uploads (SPEC §6): who it
// is, the kind of log and the file's name. The body comes separately.
type LogUpload struct {
	DeviceType string
	MAC        string
	Serial     string
	LogType    string
	FileName   string
	Remote     string // the phone's address
}

// DeviceLog is one stored device log.
type DeviceLog struct {
	Type     string    `json:"logType"`
	Device   string    `json:"device"` // the device's ID: its MAC, else its serial
	Name     string    `json:"fileName"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
}

// Path is the log's path under Logs/Client: <LogType>/<device>/<file>.
func (l DeviceLog) Path() string { return l.Type + "/" + l.Device + "/" + l.Name }

// ListedBefore reports whether l comes before o in a list of logs: the
// newer first, then by path.
func (l DeviceLog) ListedBefore(o DeviceLog) bool {
	if !l.Modified.Equal(o.Modified) {
		return l.Modified.After(o.Modified)
	}
	return l.Path() < o.Path()
}

// LogSettings are the settings that govern uploads and retention, as
// Lync names them (SPEC §6).
type LogSettings struct {
	MaxFileSize    int64
	MaxCacheLimit  int64
	FlushInterval  time.Duration
	CleanUpDays    int
	CleanUpAt      string // hh:mm, or "" for hourly
	ValidTypes     []string
	ValidExtension []string // lower case, with the dot
}

// LogSettingsFrom reads resolved settings (name → value, as
// ResolveConfig returns them); a value that does not parse takes the
// setting's default.
func LogSettingsFrom(values []ConfigValue) LogSettings {
	get := func(name string) string {
		for _, v := range values {
			if v.Name == name {
				return v.Value
			}
		}
		s, _ := LookupSetting(name)
		return s.Default
	}
	var ls LogSettings
	ls.MaxFileSize, _ = strconv.ParseInt(get("MaxLogFileSize"), 10, 64)
	ls.MaxCacheLimit, _ = strconv.ParseInt(get("MaxLogCacheLimit"), 10, 64)
	ls.FlushInterval, _ = parseTimeSpan(get("LogFlushInterval"))
	ls.CleanUpDays, _ = strconv.Atoi(get("LogCleanUpInterval"))
	ls.CleanUpAt = get("LogCleanUpTimeOfDay")
	for _, t := range strings.Split(get("ValidLogFileTypes"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			ls.ValidTypes = append(ls.ValidTypes, t)
		}
	}
	for _, e := range strings.Split(get("ValidLogFileExtensions"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			ls.ValidExtension = append(ls.ValidExtension, strings.ToLower(e))
		}
	}
	return ls
}

// MaxLogFileName bounds an uploaded log's file name.
const MaxLogFileName = 128

// CheckUpload validates an upload against the settings and returns the
// log it will be stored as: the device's ID and the canonical spelling
// of its log type. Errors: EINVALID, with the reason.
func (ls LogSettings) CheckUpload(u LogUpload) (DeviceLog, error) {
	var l DeviceLog
	if u.DeviceType == "" || !ValidIdentifier(u.DeviceType) {
		return l, Errorf(EINVALID, "DeviceType %q: want an identifier such as UCPhone", truncateForMessage(u.DeviceType))
	}
	switch {
	case u.MAC != "":
		mac, err := NormalizeMAC(u.MAC)
		if err != nil {
			return l, err
		}
		l.Device = mac
	case u.Serial != "":
		if !ValidSerial(u.Serial) {
			return l, Errorf(EINVALID, "SerialNumber %q: want letters, digits, '-' or '_'", truncateForMessage(u.Serial))
		}
		l.Device = u.Serial
	default:
		return l, Errorf(EINVALID, "the upload names no device; give MacAddress or SerialNumber")
	}
	for _, t := range ls.ValidTypes {
		if strings.EqualFold(t, u.LogType) {
			l.Type = t
		}
	}
	if l.Type == "" {
		return l, Errorf(EINVALID, "LogType %q is not accepted; ValidLogFileTypes is %s", truncateForMessage(u.LogType), strings.Join(ls.ValidTypes, ","))
	}
	name, err := SafeLogName(u.FileName)
	if err != nil {
		return l, err
	}
	ext := strings.ToLower(path.Ext(name))
	ok := false
	for _, e := range ls.ValidExtension {
		ok = ok || e == ext
	}
	if !ok {
		return l, Errorf(EINVALID, "FileName %q: extension %q is not accepted; ValidLogFileExtensions is %s", truncateForMessage(name), ext, strings.Join(ls.ValidExtension, ","))
	}
	l.Name = name
	return l, nil
}

// SafeLogName returns the file name an upload may be stored under: a
// base name of printable characters that no file system reads as a
// path. Names with separators, NUL or other control characters, and "."
// or "..", are refused rather than rewritten, so a phone's log is never
// stored under a name it did not send.
func SafeLogName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", Errorf(EINVALID, "FileName %q: %s", truncateForMessage(name), why)
	}
	switch {
	case name == "":
		return bad("missing")
	case len(name) > MaxLogFileName:
		return bad("longer than " + strconv.Itoa(MaxLogFileName) + " bytes")
	case name == "." || name == ".." || strings.HasPrefix(name, "."):
		return bad("a name may not start with '.'")
	case strings.ContainsAny(name, `/\:`):
		return bad("a name may not hold '/', '\\' or ':'")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return bad("a name may not hold NUL or control characters")
		}
	}
	if strings.TrimSpace(name) != name || strings.HasSuffix(name, ".") {
		return bad("a name may not start or end with a space, or end with '.'")
	}
	return name, nil
}

// LogFilter selects stored logs; zero fields select all.
type LogFilter struct {
	Device string
	Type   string
	Page   // the logs listed after the cursor
}

// LogList is one page of the stored device logs, newest first.
type LogList struct {
	Logs []DeviceLog `json:"logs"`
	Next string      `json:"next,omitempty"` // the cursor of the next page; "" at the end
}

// LogCursor is the cursor that follows the log l in the list's order.
func LogCursor(l DeviceLog) string {
	return EncodeCursor(l.Modified.UTC().Format(time.RFC3339Nano) + " " + l.Path())
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

// ClearLogsResult reports what a clean-up deleted.
type ClearLogsResult struct {
	Deleted int   `json:"deleted"`
	Bytes   int64 `json:"bytes"`
}

// MinClearDays and MaxClearDays bound `logs clear --days-back` (Lync's
// Clear-CsDeviceUpdateLog -DaysBack).
const (
	MinClearDays = 1
	MaxClearDays = 30
)

// LogService stores and serves device logs.
type LogService interface {
	// Upload stores a log whose body is read from r; size is its declared
	// length, -1 when unknown. Errors: EINVALID (bad name, type, extension
	// or identity), ETOOLARGE (past MaxLogFileSize, checked while
	// reading), EUNAVAILABLE (the disk is full). Nothing is left behind
	// when it fails.
	Upload(ctx context.Context, u LogUpload, r io.Reader, size int64) (DeviceLog, error)
	// Logs lists the stored logs that match f, newest first, with the
	// cursor of the next page when more follow.
	Logs(ctx context.Context, f LogFilter) (*LogList, error)
	// OpenLog opens one stored log. Errors: ENOTFOUND.
	OpenLog(ctx context.Context, logType, device, name string) (io.ReadSeekCloser, DeviceLog, error)
	// ClearLogs deletes the logs last written more than daysBack days ago
	// and audits it. Errors: EINVALID (daysBack outside 1-30).
	ClearLogs(ctx context.Context, daysBack int, actor string) (ClearLogsResult, error)
}
