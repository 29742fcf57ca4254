package audit

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

// RequestLogDir is the request-handler audit log's folder below the data root.
const RequestLogDir = "Logs/Server/Audit/imageUpdates"

// RequestLog writes one line per poll to
// RequestHandlerAuditLog_<server>_<YYYYMMDD>.log (Lync's name), buffered,
// starting a new file each UTC day. It is safe for concurrent use.
type RequestLog struct {
	dir, server string
	mu          sync.Mutex
	day         string
	f           *os.File
	w           *bufio.Writer
	line        []byte // the line being formatted, reused under mu
}

// OpenRequestLog prepares the log; files are opened as lines arrive.
func OpenRequestLog(dataDir, server string) (*RequestLog, error) {
	dir := filepath.Join(dataDir, filepath.FromSlash(RequestLogDir))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open request log: %w", err)
	}
	return &RequestLog{dir: dir, server: clean(server)}, nil
}

// Path returns the file of the given day.
func (l *RequestLog) Path(day time.Time) string {
	return filepath.Join(l.dir, "RequestHandlerAuditLog_"+l.server+"_"+day.UTC().Format("20060102")+".log")
}

// Write adds the line of one poll: time, remote address, device type, MAC,
// serial, brand, model, revision, locale, the request's modules as
// Filename;Version;Timestamp joined by '#', the answer's files as
// Filename;Version joined by '#', and the user.
func (l *RequestLog) Write(at time.Time, remote string, req deviceupdate.PollRequest, offered *deviceupdate.StoredUpdate) error {
	at = at.UTC()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := at.AppendFormat(l.line[:0], time.RFC3339)
	for _, f := range [...]string{remote, req.DeviceType, req.MAC, req.Serial, req.Brand, req.Model, req.Revision, req.Locale} {
		b = appendClean(append(b, ';'), f)
	}
	b = append(b, ';')
	for i, m := range req.Modules {
		if i > 0 {
			b = append(b, '#')
		}
		b = appendClean(b, m.Filename)
		b = m.Version.Append(append(b, ';'))
		b = appendClean(append(b, ';'), m.Timestamp)
	}
	b = append(b, ';')
	if offered != nil {
		for i, f := range offered.Images {
			if i > 0 {
				b = append(b, '#')
			}
			b = offered.Version.Append(append(appendClean(b, f.Name), ';'))
		}
		if len(offered.Images) > 0 {
			b = append(b, '#')
		}
		b = offered.Version.Append(append(appendClean(b, offered.Catalog.Name), ';'))
	}
	b = append(appendClean(append(b, ';'), req.UserID), '\n')
	l.line = b
	if day := at.Format("20060102"); day != l.day || l.f == nil {
		if err := l.rotate(at); err != nil {
			return err
		}
		l.day = day
	}
	_, err := l.w.Write(b)
	return err
}

// appendClean appends s with the separators of a line (';', '#') and
// line breaks replaced by '_', so a phone cannot forge fields or lines.
func appendClean(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ';', '#', '\n', '\r':
			b = append(b, '_')
		default:
			b = append(b, c)
		}
	}
	return b
}

func (l *RequestLog) rotate(at time.Time) error {
	if err := l.closeLocked(); err != nil {
		return err
	}
	f, err := os.OpenFile(l.Path(at), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open request log: %w", err)
	}
	l.f, l.w = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

// Flush writes buffered lines to the file.
func (l *RequestLog) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return nil
	}
	return l.w.Flush()
}

// Close flushes and closes the current file.
func (l *RequestLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeLocked()
}

func (l *RequestLog) closeLocked() error {
	if l.f == nil {
		return nil
	}
	err := l.w.Flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f, l.w = nil, nil
	return err
}

// clean keeps a free-text field from breaking the line's structure.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ';', '#', '\n', '\r':
			return '_'
		}
		return r
	}, s)
}
