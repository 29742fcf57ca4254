package handler

import (
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
)

// sendfileWriter lets http.ServeContent reach the connection's ReadFrom,
// which echo.Response hides: on plain TCP the kernel then copies an update
// file to the socket (sendfile) with no buffer of ours, so a thousand
// downloads cost a thousand small goroutines, not a thousand 32 KiB
// buffers and the copying. The echo.Response still records the status and
// size for the access log and the metrics.
type sendfileWriter struct {
	*echo.Response
}

// ReadFrom sends r's bytes through the underlying writer's ReadFrom.
func (w sendfileWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.Committed {
		w.WriteHeader(http.StatusOK)
	}
	n, err := io.Copy(w.Writer, r)
	w.Size += n
	return n, err
}
