package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deviceupdate/deviceupdate"
)

// RequestLogDir is the request-handler audit log's folder below the data root.
const RequestLogDir = "Logs/Server/Audit/imageUpdates"

// RequestLog writes one line per poll to
// RequestHandlerAuditLog_<server>_<YYYYMMDD>.log (Lync's name), buffered,
// starting a new file each UTC day. It is safe for concurrent use.
//
// A write that fails (a full disk) drops the lines then buffered, counts
// them (Dropped), cuts the file back to its last whole line, and the log
// goes on with the next lines: once space returns, they are written.
type RequestLog struct {
	dir, server string
	mu          sync.Mutex
	day         string
	f           *os.File
	size        int64  // bytes of f that hold whole lines
	newline     bool   // f ends in a partial line: start the next write on a new one
	buf         []byte // lines not yet written
	lines       uint64 // in buf
	dropped     atomic.Uint64
}

// requestLogBuffer is how many bytes of lines wait before a write.
const requestLogBuffer = 64 << 10

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

// Dropped returns how many lines were lost to failed writes.
func (l *RequestLog) Dropped() uint64 { return l.dropped.Load() }

// Write adds the line of one poll: time, remote address, device type, MAC,
// serial, brand, model, revision, locale, the request's modules as
// Filename;Version;Timestamp joined by '#', the answer's files as
// Filename;Version joined by '#', and the user. It returns the error of a
// write that failed, which dropped lines; the log goes on.
func (l *RequestLog) Write(at time.Time, remote string, req deviceupdate.PollRequest, offered *deviceupdate.StoredUpdate) error {
	at = at.UTC()
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	if day := at.Format("20060102"); day != l.day || l.f == nil {
		err = l.flushLocked()
		if rerr := l.rotate(at); rerr != nil {
			l.dropped.Add(1)
			return errors.Join(err, rerr)
		}
		l.day = day
	}
	b := at.AppendFormat(l.buf, time.RFC3339)
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
	l.buf = append(appendClean(append(b, ';'), req.UserID), '\n')
	l.lines++
	if len(l.buf) >= requestLogBuffer {
		err = errors.Join(err, l.flushLocked())
	}
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
	f, err := os.OpenFile(l.Path(at), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open request log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open request log: %w", err)
	}
	// A crash in the middle of a write may have left a partial line.
	last := []byte{'\n'}
	if fi.Size() > 0 {
		if _, err := f.ReadAt(last, fi.Size()-1); err != nil {
			f.Close()
			return fmt.Errorf("open request log: %w", err)
		}
	}
	l.f, l.size, l.newline = f, fi.Size(), last[0] != '\n'
	return nil
}

// Flush writes buffered lines to the file. When the write fails, the
// lines are dropped and counted, and the error says so.
func (l *RequestLog) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked()
}

func (l *RequestLog) flushLocked() error {
	if len(l.buf) == 0 {
		return nil
	}
	lines := l.lines
	l.lines = 0
	defer func() { l.buf = l.buf[:0] }()
	if l.f == nil {
		l.dropped.Add(lines)
		return fmt.Errorf("write request log: no file open; %d lines dropped", lines)
	}
	if l.newline {
		l.buf = append(l.buf, 0)
		copy(l.buf[1:], l.buf)
		l.buf[0] = '\n'
	}
	n, err := l.f.Write(l.buf)
	if err == nil {
		l.size += int64(n)
		l.newline = false
		return nil
	}
	l.dropped.Add(lines)
	// Leave no part of a line behind; when the file cannot be cut, the
	// next write starts on a new line.
	if n > 0 {
		if terr := l.f.Truncate(l.size); terr != nil {
			l.size += int64(n)
			l.newline = true
		}
	}
	return fmt.Errorf("write request log %s: %w; %d lines dropped", l.f.Name(), err, lines)
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
	err := l.flushLocked()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
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
