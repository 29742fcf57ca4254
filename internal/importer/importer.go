// Package importer ingests update packages into the service: it spools an
// upload, has updatepkg verify and stage it, has the update store move
// each new update's files in, records them in the store in one
// transaction, and writes the outcome to the admin audit trail.
//
// The store transaction is the commit point. Files move into place before
// it, so a committed update always has its files; the update store's
// notes of changes in progress (updatestore.MoveIn) make a crash before
// the commit leave nothing the next start does not remove.
package importer

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/cab"
	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/updatepkg"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

// DefaultMaxPackageSize bounds an uploaded package.
const DefaultMaxPackageSize = 4 << 30

// Importer ingests packages. It is safe for concurrent use; imports are
// serialized where they touch the store.
type Importer struct {
	DB       store.Store
	Logger   *zap.Logger
	Files    *updatestore.Store
	CertsDir string // the --certs folder; trusted/ is read at each import
	MaxSize  int64  // largest package accepted; 0 means DefaultMaxPackageSize
	Limits   cab.Limits
	Now      func() time.Time

	mu sync.Mutex // serializes the check-move-commit step
}

// Trust reads the publishers' certificates in <certs>/trusted/
// (certs.LoadTrust: PEM or DER, any file name) and logs, at warn level,
// each file it could not use. It runs at each import, and at start.
func (im *Importer) Trust() (*certs.Trust, error) {
	dir := filepath.Join(im.CertsDir, certs.TrustedDir)
	t, err := certs.LoadTrust(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return &certs.Trust{Pool: x509.NewCertPool()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read trusted publishers: %w", err)
	}
	for _, p := range t.Problems {
		im.Logger.Warn("a file in the trusted publishers folder is not usable", zap.String("file", p.Path), zap.Error(p.Err))
	}
	return t, nil
}

// trustNote is what a refusal adds when files of trusted/ were not
// usable: the publisher may be in one of them.
func trustNote(t *certs.Trust) string {
	if len(t.Problems) == 0 {
		return ""
	}
	notes := make([]string, len(t.Problems))
	for i, p := range t.Problems {
		notes[i] = p.Error()
	}
	return "; skipped as unusable: " + strings.Join(notes, "; ")
}

// Import reads a package of at most size bytes from src (size -1 when
// unknown), verifies it and makes its updates the pending versions of
// their rules. name is the package's file name, for messages and the audit
// trail; actor says who imports. Every outcome is audited.
func (im *Importer) Import(ctx context.Context, src io.Reader, size int64, name, actor string) (*deviceupdate.ImportResult, error) {
	entry := audit.Entry{Actor: actor, Action: "import", Target: name}
	audited := false // the commit, with its entry, was tried
	res, err := im.importPackage(ctx, src, size, name, func(records []*deviceupdate.StoredUpdate, sum string) (res *deviceupdate.ImportResult, err error) {
		audited = true
		err = im.audited(entry, func(tx store.Store, e *audit.Entry) error {
			updates, err := tx.CommitImport(records)
			if err != nil {
				return prefixName(err, name)
			}
			res = &deviceupdate.ImportResult{PackageSHA256: sum, Updates: updates}
			e.After, _ = json.Marshal(res)
			return nil
		})
		return res, err
	})
	if err != nil && !audited {
		// Refused before its commit: nothing changed; audit the refusal.
		err = im.audited(entry, func(store.Store, *audit.Entry) error { return err })
	}
	return res, err
}

// audited makes an audited change (store.Store.Audited), logging one the
// server could not make.
func (im *Importer) audited(e audit.Entry, apply func(tx store.Store, e *audit.Entry) error) error {
	err := im.DB.Audited(e, apply)
	if errors.Is(err, store.ErrNotMade) {
		im.Logger.Error("admin change not made", zap.String("action", e.Action), zap.String("target", e.Target), zap.Error(err))
	}
	return err
}

// importPackage verifies a package, moves its new updates' files into the
// store and has commit record them, with the import's audit entry.
func (im *Importer) importPackage(ctx context.Context, src io.Reader, size int64, name string,
	commit func(records []*deviceupdate.StoredUpdate, sum string) (*deviceupdate.ImportResult, error)) (*deviceupdate.ImportResult, error) {
	maxSize := im.MaxSize
	if maxSize == 0 {
		maxSize = DefaultMaxPackageSize
	}
	if size > maxSize {
		return nil, deviceupdate.Errorf(deviceupdate.ETOOLARGE, "%s: %d bytes is more than the %d a package may have", name, size, maxSize)
	}
	trust, err := im.Trust()
	if err != nil {
		return nil, err
	}
	if len(trust.Certs) == 0 {
		return nil, deviceupdate.Errorf(deviceupdate.EFORBIDDEN, "%s: no trusted publishers: put the publisher's certificate (PEM or DER) in %s and import again%s",
			name, filepath.Join(im.CertsDir, certs.TrustedDir), trustNote(trust))
	}

	staging, err := im.Files.Stage()
	if err != nil {
		return nil, err
	}
	defer im.Files.Unstage(staging)

	t0 := time.Now()
	spool, sum, n64, err := spoolPackage(ctx, src, filepath.Join(staging, "package.cab"), maxSize)
	if err != nil {
		return nil, prefixName(err, name)
	}
	defer spool.Close()
	t1 := time.Now()
	pkg, err := updatepkg.Stage(spool, n64, updatepkg.Options{Trust: trust.Pool, Limits: im.Limits, StagingDir: filepath.Join(staging, "updates")})
	if err != nil {
		if note := trustNote(trust); note != "" && deviceupdate.ErrorCode(err) == deviceupdate.EFORBIDDEN {
			err = &deviceupdate.Error{Code: deviceupdate.EFORBIDDEN, Message: deviceupdate.ErrorMessage(err) + note, Err: err}
		}
		return nil, prefixName(err, name)
	}
	t2 := time.Now()
	now := im.now()
	records := make([]*deviceupdate.StoredUpdate, len(pkg.Updates))
	for i, s := range pkg.Updates {
		records[i] = &deviceupdate.StoredUpdate{
			RuleKey:       s.Update.RuleKey,
			Version:       s.Update.Version,
			Images:        toFiles(s.Images),
			Catalog:       deviceupdate.UpdateFile(s.Catalog),
			Description:   deviceupdate.UpdateFile(s.Description),
			Signer:        s.Signer,
			CabinetSigner: pkg.CabinetSigner,
			PackageSHA256: sum,
			ImportedAt:    now,
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	im.mu.Lock()
	defer im.mu.Unlock()
	statuses, err := im.DB.CheckImport(records)
	if err != nil {
		return nil, prefixName(err, name)
	}
	var moves []updatestore.Move
	for i, s := range pkg.Updates {
		switch statuses[i] {
		case deviceupdate.ImportAdded:
		case deviceupdate.ImportRestaged:
			// The record says the files are there, with the package's
			// hashes; a store damaged from outside gets them back.
			err := im.Files.Check(ctx, records[i])
			if err == nil {
				continue
			}
			im.Logger.Warn("the stored files of a re-staged update are damaged; putting the package's in their place",
				zap.String("update", updatestore.Rel(records[i].RuleKey, records[i].Version)), zap.Error(err))
		default:
			continue
		}
		moves = append(moves, updatestore.Move{Update: records[i], Staged: s.Dir})
	}
	var res *deviceupdate.ImportResult
	err = im.Files.Import(ctx, im.DB, moves, now, func() (err error) {
		res, err = commit(records, sum)
		return err
	})
	if err != nil {
		return nil, err
	}
	im.Logger.Info("package imported", zap.String("package", name), zap.String("sha256", sum), zap.Int("updates", len(res.Updates)),
		zap.Int64("bytes", n64), zap.Duration("receive", t1.Sub(t0)), zap.Duration("verify", t2.Sub(t1)), zap.Duration("commit", time.Since(t2)))
	return res, nil
}

// spoolPackage copies src to path, hashing it, up to max bytes, and
// returns the file open for reading.
func spoolPackage(ctx context.Context, src io.Reader, path string, max int64) (*os.File, string, int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return nil, "", 0, fmt.Errorf("import: spool package: %w", err)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(ctxReader{ctx, src}, max+1), make([]byte, 1<<20))
	if err != nil {
		f.Close()
		var de *deviceupdate.Error
		if errors.As(err, &de) {
			return nil, "", 0, err
		}
		return nil, "", 0, &deviceupdate.Error{Code: deviceupdate.EINVALID, Message: "the upload was cut off before the package ended", Err: err}
	}
	if n > max {
		f.Close()
		return nil, "", 0, deviceupdate.Errorf(deviceupdate.ETOOLARGE, "more than the %d bytes a package may have", max)
	}
	return f, hex.EncodeToString(h.Sum(nil)), n, nil
}

// ctxReader stops a copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (im *Importer) now() time.Time {
	if im.Now != nil {
		return im.Now().UTC()
	}
	return time.Now().UTC()
}

func toFiles(fs []updatepkg.File) []deviceupdate.UpdateFile {
	out := make([]deviceupdate.UpdateFile, len(fs))
	for i, f := range fs {
		out[i] = deviceupdate.UpdateFile(f)
	}
	return out
}

// prefixName puts the package's name in front of an application error's
// message, so the admin sees which file was refused.
func prefixName(err error, name string) error {
	var de *deviceupdate.Error
	if !errors.As(err, &de) {
		return err
	}
	return &deviceupdate.Error{Code: de.Code, Message: name + ": " + de.Message, Err: err}
}

// ClearFiles deletes every stored version no rule references (Lync's
// Clear-CsDeviceUpdateFile): the records in one transaction, with the
// audit entry, which also notes their removal as in progress; then
// their folders. It holds the import lock, so no import is between moving
// its files and committing them. A crash after the commit leaves folders
// noted as being removed, which the update store's Reconcile removes at
// the next start.
func (im *Importer) ClearFiles(ctx context.Context, actor string) (*deviceupdate.ClearResult, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	res := &deviceupdate.ClearResult{Removed: []deviceupdate.ClearedUpdate{}}
	err := im.Files.Clear(ctx, im.DB, func() (removed []deviceupdate.StoredUpdate, err error) {
		err = im.audited(audit.Entry{Actor: actor, Action: "files.clear", Target: updatestore.Dir}, func(tx store.Store, e *audit.Entry) (err error) {
			if removed, err = tx.DeleteUnreferenced(); err != nil {
				return err
			}
			for _, u := range removed {
				var n int64
				for _, f := range u.Files() {
					n += f.Size
				}
				res.Removed = append(res.Removed, deviceupdate.ClearedUpdate{Key: u.RuleKey, Version: u.Version, Bytes: n})
				res.Bytes += n
			}
			e.After, _ = json.Marshal(res)
			return nil
		})
		return removed, err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
