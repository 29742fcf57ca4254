package handler

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// BackupErrorTrailer is the trailer in which a backup that failed after
// its first byte says why: the tar stream then ends without its manifest.
const BackupErrorTrailer = "Deviceupdate-Backup-Error"

// backupStallTimeout drops a backup client that takes nothing for this
// long, releasing the files the backup holds; a slow one goes on.
const backupStallTimeout = 60 * time.Second

// handleBackup streams a consistent backup of the service (GET
// /backup[?logs=true]): a tar that `deviceupdate backup` verifies as it
// writes it and `deviceupdate restore` lays into empty folders.
func (s *Server) handleBackup(c echo.Context) error {
	var opts deviceupdate.BackupOptions
	switch v := c.QueryParam("logs"); v {
	case "", "false":
	case "true":
		opts.Logs = true
	default:
		return deviceupdate.Errorf(deviceupdate.EINVALID, "logs=%.20q: want true or false", v)
	}
	b, err := s.backup.Backup(c.Request().Context(), opts, actor(c))
	if err != nil {
		return err
	}
	defer b.Close()
	res := c.Response()
	h := res.Header()
	h.Set(echo.HeaderContentType, "application/x-tar")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="deviceupdate-%s.tar"`, s.now().UTC().Format("20060102T150405Z")))
	h.Set("Cache-Control", "no-store")
	h.Set("Trailer", BackupErrorTrailer)
	res.WriteHeader(http.StatusOK)
	start := s.now()
	n, err := b.WriteTo(&stallWriter{w: res, rc: http.NewResponseController(res)})
	if err != nil {
		Logger(c).Error("backup failed while it was sent", zap.Int64("bytes", n), zap.Error(err))
		res.Header().Set(BackupErrorTrailer, deviceupdate.ErrorMessage(err))
		return nil
	}
	Logger(c).Info("backup sent", zap.Int64("bytes", n), zap.Bool("logs", opts.Logs), zap.Duration("took", s.now().Sub(start)))
	return nil
}

// stallWriter moves the connection's write deadline on before each write,
// so that only a client that stops reading is cut off.
type stallWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (sw *stallWriter) Write(p []byte) (int, error) {
	if err := sw.rc.SetWriteDeadline(time.Now().Add(backupStallTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	return sw.w.Write(p)
}
