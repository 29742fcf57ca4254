package handler

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// Slow clients. The server sets no whole-request timeout (a firmware image
// on a thin link takes long), so each request that moves a body bounds
// how slowly it may move instead:
//
//   - a poll's body (at most upx.MaxRequestSize) must arrive within a
//     third of the stall timeout, and the poll takes its slot only then;
//   - an upload (device logs, packages) must average MinUploadRate over
//     every stall timeout it spends waiting for its body;
//   - a download is dropped once it has sent less than minProgress in
//     the stall timeout (what the kernel's send buffer takes in counts
//     as sent: it can put the cut up to twice the stall timeout after
//     the client's last read).
//
// A client cut off gets 408 (ETIMEOUT) when it is still sending, and a
// closed connection when it stopped reading.
const (
	// DefaultStallTimeout is how long a download may make no progress.
	DefaultStallTimeout = 30 * time.Second
	// MinUploadRate is the least an upload must average, in bytes a
	// second, over each stall timeout.
	MinUploadRate = 1 << 10
	// minProgress is what a download must send in the stall timeout. Not
	// a byte: a client that stopped reading still takes a few now and
	// then, as its kernel compacts its receive buffer.
	minProgress = 32 << 10
)

// Kinds of slow clients cut off, the label of the metric.
const (
	slowPoll     = "poll"
	slowUpload   = "upload"
	slowDownload = "download"
)

// isTimeout reports whether err is a read or write deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// slowError is the answer to a client cut off for sending too slowly.
func slowError(format string, args ...any) *deviceupdate.Error {
	return deviceupdate.Errorf(deviceupdate.ETIMEOUT, format, args...)
}

// pollBodyDeadline sets the deadline of a poll's body on its connection
// (HTTP/1) or stream (HTTP/2), through the writers' Unwrap as
// http.ResponseController does, but without the error it makes for a
// writer that has no deadline (a test's recorder): the poll path
// allocates nothing for it.
func (s *Server) pollBodyDeadline(c echo.Context) {
	var w http.ResponseWriter = c.Response()
	for {
		switch d := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			_ = d.SetReadDeadline(time.Now().Add(s.stall / 3))
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = d.Unwrap()
		default:
			return
		}
	}
}

// minRateBody cuts off an upload that averages less than MinUploadRate
// over a window (the stall timeout) of time spent waiting for it: before
// each read the connection's read deadline is set to when the window
// runs out, and a window ends early once it got its bytes. Only the time
// spent in Read counts, so a server busy writing what it read does not
// count against the client.
type minRateBody struct {
	r      io.ReadCloser
	rc     *http.ResponseController
	window time.Duration
	need   int64 // bytes a window must bring

	got      int64         // bytes in this window
	waited   time.Duration // time spent reading in this window
	eof      bool
	timedOut bool
}

func (s *Server) newMinRateBody(c echo.Context) *minRateBody {
	return &minRateBody{
		r: c.Request().Body, rc: http.NewResponseController(c.Response()),
		window: s.stall, need: int64(s.stall.Seconds() * MinUploadRate),
	}
}

func (b *minRateBody) Read(p []byte) (int, error) {
	if b.eof {
		return b.r.Read(p)
	}
	start := time.Now()
	_ = b.rc.SetReadDeadline(start.Add(b.window - b.waited))
	n, err := b.r.Read(p)
	b.waited += time.Since(start)
	b.got += int64(n)
	if b.got >= b.need {
		b.got, b.waited = 0, 0
	}
	switch {
	case err == io.EOF:
		b.eof = true // net/http lifts the deadline for what follows
	case isTimeout(err):
		b.timedOut = true
		return n, b.err()
	}
	return n, err
}

func (b *minRateBody) Close() error { return b.r.Close() }

// err is the answer to an upload cut off.
func (b *minRateBody) err() *deviceupdate.Error {
	return slowError("the upload was cut off: it sent less than %d bytes in %v; nothing was stored", b.need, b.window)
}

// cut returns the answer for an upload that failed with err: the cut-off
// when the body was too slow (whatever the consumer made of the read
// error), else err.
func (s *Server) cut(c echo.Context, b *minRateBody, err error) error {
	if err == nil || !b.timedOut {
		return err
	}
	s.slowCut(c, slowUpload, zap.Error(err))
	return b.err()
}

// slowCut counts and logs a slow client cut off.
func (s *Server) slowCut(c echo.Context, kind string, fields ...zap.Field) {
	s.metrics.slowCuts.WithLabelValues(kind).Inc()
	Logger(c).Info("slow client cut off", append([]zap.Field{zap.String("kind", kind), zap.String("remote", c.RealIP())}, fields...)...)
}

// copyBufs are the buffers of downloads that cannot use sendfile.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, minProgress); return &b }}

// fileWriter lets http.ServeContent send a file, dropping a client that
// takes less than minProgress in the stall timeout while a slow one that
// keeps reading goes on.
//
// Over plain HTTP/1 the file goes to the socket by sendfile (echo.Response
// hides the connection's ReadFrom; this reaches it), with no buffer of
// ours: a thousand downloads cost a thousand small goroutines. A write
// deadline every half stall timeout returns with what was sent so far,
// and the copy goes on from there unless two periods in a row sent less
// than half of minProgress each. Over TLS (or for content that is not a
// file) the copy goes through a buffer of minProgress, the deadline
// moved on before each write.
//
// The echo.Response still records the status and size for the access log
// and the metrics.
type fileWriter struct {
	*echo.Response
	s  *Server
	c  echo.Context
	rc *http.ResponseController
}

func (s *Server) newFileWriter(c echo.Context) fileWriter {
	return fileWriter{Response: c.Response(), s: s, c: c, rc: http.NewResponseController(c.Response())}
}

// ReadFrom sends r's bytes.
func (w fileWriter) ReadFrom(r io.Reader) (n int64, err error) {
	if !w.Committed {
		w.WriteHeader(http.StatusOK)
	}
	lr, isFile := r.(*io.LimitedReader)
	if isFile {
		_, isFile = lr.R.(*os.File)
	}
	req := w.c.Request()
	if isFile && req.TLS == nil && req.ProtoMajor == 1 {
		n, err = w.sendfile(lr)
	} else {
		n, err = w.copy(r)
	}
	// The last deadline stays for net/http's final flush, which lifts it
	// for the next request on the connection.
	w.Size += n
	if isTimeout(err) {
		w.s.slowCut(w.c, slowDownload, zap.Int64("bytes_sent", w.Size), zap.Duration("stalled", w.s.stall))
	}
	return n, err
}

// sendfile copies lr to the connection with sendfile, in periods of half
// the stall timeout. A period's deadline ends the sendfile with the bytes
// sent so far counted in lr and the file's offset, so the next period
// goes on where it stopped; it goes on only when every byte read from
// the file was sent, as sendfile guarantees (a buffered fallback may not).
func (w fileWriter) sendfile(lr *io.LimitedReader) (int64, error) {
	var total int64
	idle := 0
	for {
		before := lr.N
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.s.stall / 2))
		n, err := io.Copy(w.Response.Writer, lr)
		total += n
		if !isTimeout(err) || before-lr.N != n || w.c.Request().Context().Err() != nil {
			return total, err
		}
		if n >= minProgress/2 {
			idle = 0
		} else if idle++; idle == 2 {
			return total, err
		}
	}
}

// copy copies r to the response through a buffer, with a write deadline
// one stall timeout after the start of each write.
func (w fileWriter) copy(r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			_ = w.rc.SetWriteDeadline(time.Now().Add(w.s.stall))
			m, err := w.Response.Writer.Write(buf[:n])
			total += int64(m)
			if err != nil {
				return total, err
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// busy answers 503 with Retry-After.
func busy(c echo.Context, retryAfter, what string) error {
	c.Response().Header().Set("Retry-After", retryAfter)
	return deviceupdate.Errorf(deviceupdate.EUNAVAILABLE, "%s; retry in %s seconds", what, retryAfter)
}

// take reserves one of slots, or answers 503.
func take(c echo.Context, slots chan struct{}, retryAfter string) error {
	select {
	case slots <- struct{}{}:
		return nil
	default:
		return busy(c, retryAfter, "busy")
	}
}

// limit admits at most cap(slots) requests at once; past that it answers
// 503 with Retry-After, so a boot storm queues on the phones, not here.
func limit(slots chan struct{}, retryAfter string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := take(c, slots, retryAfter); err != nil {
				return err
			}
			defer func() { <-slots }()
			return next(c)
		}
	}
}
