package handler

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// maxLoggedBody bounds the raw body logged for a poll that cannot be read.
const maxLoggedBody = 2048

// bodyPool holds poll body buffers: a poll is read whole before it is
// parsed, and the parsed values do not keep the buffer (upx copies them).
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// readBody appends the request body to buf, at most upx.MaxRequestSize
// bytes (a *http.MaxBytesError past it).
func readBody(c echo.Context, buf []byte) ([]byte, error) {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, upx.MaxRequestSize)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// pollHandler answers POST .../ucdevice.upx. The poll takes one of slots
// only once its body is in: a client that sends it slowly holds no
// capacity, and is cut off at the body's deadline.
func (s *Server) pollHandler(slots chan struct{}) echo.HandlerFunc {
	return func(c echo.Context) error {
		bp := bodyPool.Get().(*[]byte)
		defer bodyPool.Put(bp)
		s.pollBodyDeadline(c)
		body, err := readBody(c, (*bp)[:0])
		*bp = body[:0]
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return deviceupdate.Errorf(deviceupdate.ETOOLARGE, "request is larger than %d bytes", upx.MaxRequestSize)
		case isTimeout(err):
			s.slowCut(c, slowPoll, zap.Int("body_bytes", len(body)))
			return slowError("the poll's body did not arrive within %v", s.stall/3)
		case err != nil:
			return deviceupdate.Errorf(deviceupdate.EINVALID, "request body could not be read")
		}
		if err := take(c, slots, "30"); err != nil {
			return err
		}
		defer func() { <-slots }()
		return s.answerPoll(c, body)
	}
}

// answerPoll parses a poll's body and answers it.
func (s *Server) answerPoll(c echo.Context, body []byte) error {
	req, err := upx.ParseRequest(body)
	if err != nil {
		Logger(c).Info("unreadable poll", zap.String("reason", deviceupdate.ErrorMessage(err)),
			zap.ByteString("body", body[:min(len(body), maxLoggedBody)]), zap.Int("body_bytes", len(body)))
		return err
	}
	if req.UserID == "" {
		req.UserID = Principal(c) // who an external phone signed in as; "" inside
	}
	ans, err := s.polls.Poll(c.Request().Context(), req, c.RealIP())
	if err != nil {
		return err
	}
	res := &upx.Response{PollIntervalSeconds: ans.PollInterval, PeerSharing: &upx.PeerSharing{Enabled: ans.PeerSharing, Port: upx.PeerPort}}
	if u := ans.Update; u != nil {
		res.Version = u.Version.String()
		res.BaseURL = s.internalBase(hostOr(ans.InternalHost, c)) + "/DeviceUpdateFiles_Int/" + ans.Path
		res.ExternalBaseURL = baseURL("https", hostOr(ans.ExternalHost, c), s.externalPort) + "/DeviceUpdateFiles_Ext/" + ans.Path
		files := make([]upx.File, len(ans.Files))
		for i, f := range ans.Files {
			files[i] = upx.File{Name: f.Name, SignatureFile: f.SignatureFile, Size: f.Size, SHA256: f.SHA256}
			if cl := f.ChunkList; cl != nil {
				files[i].ChunkSize, files[i].Chunks, files[i].ChunksSHA256 = cl.ChunkSize, f.ChunkListName, cl.SHA256
			}
		}
		res.Files = &upx.Files{File: files}
		res.NumOfFiles = len(files)
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err = res.WriteTo(w)
	return err
}

// internalBase is where internal phones download: the plain-HTTP listener
// when there is one, else HTTPS.
func (s *Server) internalBase(host string) string {
	if s.httpPort != "" {
		return baseURL("http", host, s.httpPort)
	}
	return baseURL("https", host, s.httpsPort)
}

// baseURL is scheme://host, with the listener's port unless it is the
// scheme's default or host names its own port.
func baseURL(scheme, host, port string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return scheme + "://" + host
	}
	host = strings.Trim(host, "[]")
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" || port == "" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return scheme + "://" + host
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// hostOr is the configured host[:port], else the host the phone asked.
func hostOr(configured string, c echo.Context) string {
	if configured != "" {
		return configured
	}
	return requestHost(c)
}

// requestHost is the host name the phone used, without the port.
func requestHost(c echo.Context) string {
	h := c.Request().Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.Trim(h, "[]")
}

// mimeTypes of SPEC §5.
var mimeTypes = map[string]string{".nbt": "application/octet-stream", ".cat": "application/vnd.ms-pki.seccat"}

// handleFile serves GET /DeviceUpdateFiles_Int/<path>: only files of
// stored updates, as the poll service opens them, with Range, ETag and
// Content-Length.
func (s *Server) handleFile(c echo.Context) error {
	rel := c.Param("*")
	if base, ok := strings.CutSuffix(rel, deviceupdate.ChunkListSuffix); ok {
		return s.handleChunkList(c, base)
	}
	d, err := s.polls.OpenFile(c.Request().Context(), rel)
	if err != nil {
		return err
	}
	defer d.Content.Close()
	ct := mimeTypes[strings.ToLower(path.Ext(d.File.Name))]
	if ct == "" {
		ct = "application/octet-stream"
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, ct)
	w.Header().Set("ETag", `"`+d.File.SHA256+`"`)
	http.ServeContent(s.newFileWriter(c), c.Request(), d.File.Name, d.ModTime, d.Content)
	return nil
}

// handleChunkList serves <file>.chunks, the SHA-256 of each chunk of a
// stored file, for phones that share it (SPEC §9).
func (s *Server) handleChunkList(c echo.Context, rel string) error {
	cl, err := s.polls.ChunkList(c.Request().Context(), rel)
	if err != nil {
		return err
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/plain; charset=utf-8")
	w.Header().Set("ETag", `"`+cl.SHA256+`"`)
	http.ServeContent(w, c.Request(), path.Base(rel)+deviceupdate.ChunkListSuffix, time.Time{}, bytes.NewReader(cl.Text))
	return nil
}

// pageOf reads the limit and cursor parameters of a list that can grow
// large (SPEC §7).
func pageOf(c echo.Context, p *deviceupdate.Page) (err error) {
	p.Limit, err = deviceupdate.ParsePageLimit(c.QueryParam("limit"))
	p.Cursor = c.QueryParam("cursor")
	return err
}
