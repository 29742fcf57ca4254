package phone

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/catalog"
	"github.com/deviceupdate/deviceupdate/internal/fsutil"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// offer is an answer's files, checked: plain names, sane sizes, hashes
// that decode, and a catalog for every image.
type offer struct {
	version    string
	base       *url.URL
	updateType string
	catalogs   []upx.File // the files other files name as SignatureFile (or .cat files)
	images     []upx.File // every other file, each listed in its catalog
	catalogOf  map[string]string
}

// checkOffer validates an answer before anything is downloaded.
func (a *Agent) checkOffer(ans *upx.Response) (*offer, error) {
	bad := func(format string, args ...any) (*offer, error) {
		return nil, fmt.Errorf("%w: %s", ErrOffer, fmt.Sprintf(format, args...))
	}
	if _, err := deviceupdate.ParseVersion(ans.Version); err != nil {
		return bad("version %q", ans.Version)
	}
	if ans.Files == nil || len(ans.Files.File) != ans.NumOfFiles {
		return bad("NumOfFiles is %d but %d files are listed", ans.NumOfFiles, len(filesOf(ans)))
	}
	baseURL := ans.BaseURL
	if a.cfg.External {
		baseURL = ans.ExternalBaseURL
	}
	base, err := url.Parse(baseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return bad("download folder %q is not an http:// or https:// URL", baseURL)
	}
	o := &offer{version: ans.Version, base: base, updateType: updateTypeOf(base), catalogOf: map[string]string{}}
	isCatalog := map[string]bool{}
	seen := map[string]bool{}
	for _, f := range ans.Files.File {
		if !plainName(f.Name) || seen[f.Name] {
			return bad("file name %q is not a plain name, or is listed twice", f.Name)
		}
		seen[f.Name] = true
		if f.Size < 0 || f.Size > MaxFileSize {
			return bad("%s: size %d", f.Name, f.Size)
		}
		if _, err := decodeSHA256(f.SHA256); err != nil {
			return bad("%s: SHA256 %q", f.Name, f.SHA256)
		}
		if f.SignatureFile != "" {
			isCatalog[f.SignatureFile] = true
		}
		if strings.EqualFold(filepath.Ext(f.Name), ".cat") {
			isCatalog[f.Name] = true
		}
	}
	for _, f := range ans.Files.File {
		if isCatalog[f.Name] {
			if f.Size > catalog.MaxSize {
				return bad("catalog %s: %d bytes", f.Name, f.Size)
			}
			o.catalogs = append(o.catalogs, f)
		} else {
			o.images = append(o.images, f)
		}
	}
	for _, f := range o.images {
		cat := f.SignatureFile
		if cat == "" && len(o.catalogs) == 1 {
			cat = o.catalogs[0].Name
		}
		if !seen[cat] {
			return bad("%s: its catalog %q is not offered", f.Name, cat)
		}
		o.catalogOf[f.Name] = cat
	}
	return o, nil
}

func filesOf(ans *upx.Response) []upx.File {
	if ans.Files == nil {
		return nil
	}
	return ans.Files.File
}

// plainName reports whether name is a file name that stays in its folder.
func plainName(name string) bool {
	if name == "" || len(name) > deviceupdate.MaxFileNameLen || name[0] == '.' || strings.ContainsAny(name, `/\:`) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func decodeSHA256(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err == nil && len(b) != sha256.Size {
		err = errors.New("not 32 bytes")
	}
	return b, err
}

// fetched is a downloaded file, verified against the offer, still in
// the downloads folder.
type fetched struct {
	file upx.File
	path string
}

// update downloads, verifies and installs an offer. The order:
//  1. the offer is checked (names, sizes, hashes, a catalog per image);
//  2. each catalog is downloaded from the server, checked against the
//     offer's size and SHA-256, parsed, and its signature verified
//     against the trusted roots;
//  3. each image's SHA-256 in the offer must be a member of its catalog,
//     before a byte of the image is fetched;
//  4. each image is fetched (from peers or the server) and its size and
//     SHA-256 checked again on the bytes on disk;
//  5. the files move into firmware/<type>/<version>/, and only then
//     state.json is replaced: the switch.
func (a *Agent) update(ctx context.Context, ans *upx.Response, share bool, counts *counters, d *diag) error {
	o, err := a.checkOffer(ans)
	if err != nil {
		return fmt.Errorf("update %s: %w", ans.Version, err)
	}
	wrap := func(err error) error { return fmt.Errorf("update %s: %w", o.version, err) }
	var done []fetched
	catalogs := map[string]*catalog.Catalog{}
	for _, f := range o.catalogs {
		p, err := a.fetchDirect(ctx, o, f, counts)
		if err != nil {
			return wrap(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return wrap(err)
		}
		cat, err := catalog.Parse(data)
		if err != nil {
			os.Remove(p)
			return wrap(fmt.Errorf("catalog %s: %w", f.Name, err))
		}
		signer, err := cat.Verify(a.cfg.Trust)
		if err != nil {
			os.Remove(p)
			return wrap(fmt.Errorf("catalog %s: %w", f.Name, err))
		}
		d.printf("catalog %s: signed by %s, trusted", f.Name, signer.Subject)
		catalogs[f.Name] = cat
		done = append(done, fetched{f, p})
	}
	for _, f := range o.images {
		sum, _ := decodeSHA256(f.SHA256)
		if _, ok := catalogs[o.catalogOf[f.Name]].Lookup(sum); !ok {
			return wrap(fmt.Errorf("%s: SHA-256 %s: %w %s", f.Name, f.SHA256, ErrNotListed, o.catalogOf[f.Name]))
		}
	}
	for _, f := range o.images {
		var p string
		if share {
			p, err = a.fetchShared(ctx, o, f, counts, d)
			if err != nil && ctx.Err() == nil { // the server's copy is verified as well
				a.log.Warn("peer fetch failed; downloading from the server", zap.String("file", f.Name), zap.Error(err))
				d.printf("%s: peer fetch failed (%v); downloading from the server", f.Name, err)
				p, err = a.fetchDirect(ctx, o, f, counts)
			}
		} else {
			p, err = a.fetchDirect(ctx, o, f, counts)
		}
		if err != nil {
			return wrap(err)
		}
		// The bytes on disk were checked against the offer's SHA-256,
		// which step 3 found in the signed catalog.
		d.printf("%s: %d bytes, SHA-256 %s, listed in %s", f.Name, f.Size, f.SHA256, o.catalogOf[f.Name])
		done = append(done, fetched{f, p})
	}
	if a.stuck {
		return wrap(errStuck)
	}
	if err := a.install(o, done); err != nil {
		return wrap(err)
	}
	return nil
}

// syncDir makes a rename or create in d durable, unless Config.NoSync.
func (a *Agent) syncDir(d string) error {
	if a.cfg.NoSync {
		return nil
	}
	return fsutil.SyncDir(d)
}

// errStuck is a simulated stuck phone's refusal to switch (Sim's
// FailStuck): its files stay in downloads/, verified, so the next offer
// fails the same way without fetching them again.
var errStuck = errors.New("the phone did not switch to it (simulated: stuck)")

// setModule makes m the running state of its module, as a phone that
// falls back to its previous firmware bank does (Sim's FailRevert). The
// files m lists may be gone: a simulated phone only reports them.
func (a *Agent) setModule(m ModuleState) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := a.state.with(m)
	if err := saveState(a.cfg.StateDir, next, !a.cfg.NoSync); err != nil {
		return err
	}
	a.state = next
	return nil
}

// partPath is where a file of an offer downloads: named by its hash, so a
// download resumes only into the same content.
func (a *Agent) partPath(f upx.File) string {
	return filepath.Join(a.cfg.StateDir, downloadsDir, strings.ToLower(f.SHA256)+"-"+f.Name)
}

// fileURL returns the URL of a file in the offer's folder.
func fileURL(base *url.URL, name string) string {
	return base.JoinPath(name).String()
}

// fetchDirect downloads a file from the server into its part file,
// resuming from the part's length with Range after a cut (and across
// restarts), then checks its size and SHA-256. A file that does not
// match is deleted, so the next try starts afresh.
func (a *Agent) fetchDirect(ctx context.Context, o *offer, f upx.File, counts *counters) (string, error) {
	p := a.partPath(f)
	file, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", f.Name, err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return "", fmt.Errorf("download %s: %w", f.Name, err)
	}
	have := fi.Size()
	if have > f.Size {
		if err := file.Truncate(0); err != nil {
			return "", fmt.Errorf("download %s: %w", f.Name, err)
		}
		have = 0
	}
	u := fileURL(o.base, f.Name)
	for attempt := 0; have < f.Size; attempt++ {
		retry, err := a.getInto(ctx, u, file, have, f.Size, counts)
		if have, _ = fileSize(file); err == nil {
			continue
		}
		if ctx.Err() != nil || !retry || attempt >= a.cfg.Retries {
			return "", fmt.Errorf("download %s: %w", f.Name, err)
		}
		a.log.Debug("download cut; resuming", zap.String("file", f.Name), zap.Int64("have", have), zap.Error(err))
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return "", fmt.Errorf("download %s: %w", f.Name, err)
		}
	}
	if !a.cfg.NoSync {
		if err := file.Sync(); err != nil {
			return "", fmt.Errorf("download %s: %w", f.Name, err)
		}
	}
	if err := verifyFile(file, f); err != nil {
		file.Close()
		os.Remove(p)
		return "", err
	}
	return p, nil
}

func fileSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// statusError is an answer other than 200 or 206 to a download.
type statusError struct {
	status int
	msg    string
	wait   time.Duration // a 503's Retry-After
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.msg)
}

// getInto GETs u from offset have (a Range request unless 0) and writes
// what comes at that offset of file, through the WAN limiter; the file's
// length is then what it holds. It returns whether a failure is worth
// another try: a cut, a 503 (after its Retry-After), a 416 (the part
// is dropped).
func (a *Agent) getInto(ctx context.Context, u string, file *os.File, have, size int64, counts *counters) (bool, error) {
	body, start, err := a.openRange(ctx, u, have, size)
	var se *statusError
	switch {
	case err == nil:
	case !errors.As(err, &se):
		return !errors.Is(err, ErrMismatch), err
	case se.status == http.StatusServiceUnavailable:
		if serr := sleep(ctx, se.wait); serr != nil {
			return false, serr
		}
		return true, err
	case se.status == http.StatusRequestedRangeNotSatisfiable:
		return true, errors.Join(err, file.Truncate(0))
	default:
		return false, err
	}
	defer body.Close()
	if err := file.Truncate(start); err != nil {
		return false, err
	}
	r := &countingReader{r: wanReader(ctx, a.cfg.WAN, io.LimitReader(body, size-start)), n: &counts.server}
	n, err := io.Copy(io.NewOffsetWriter(file, start), r)
	if err == nil && start+n < size {
		err = io.ErrUnexpectedEOF
	}
	return true, err
}

// openRange GETs u from offset (the whole file when 0) and returns the
// body and the offset it starts at: offset for a 206, 0 for a 200. A 416
// (the part is longer than the file) starts over.
func (a *Agent) openRange(ctx context.Context, u string, offset, size int64) (io.ReadCloser, int64, error) {
	req, err := a.newRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, 0, nil
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset || total != size {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("%w: Content-Range %q for bytes %d- of %d", ErrMismatch, resp.Header.Get("Content-Range"), offset, size)
		}
		return resp.Body, start, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	se := &statusError{status: resp.StatusCode, msg: firstLine(msg)}
	if resp.StatusCode == http.StatusServiceUnavailable {
		se.wait = a.retryAfter(resp, 0)
	}
	return nil, 0, se
}

// parseContentRange reads "bytes START-END/TOTAL".
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	first, _, found2 := strings.Cut(rng, "-")
	if !found || !found2 {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(first, 10, 64)
	total, err2 := strconv.ParseInt(tot, 10, 64)
	return start, total, err1 == nil && err2 == nil
}

type countingReader struct {
	r io.Reader
	n interface{ Add(int64) int64 }
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// checkSize checks a file's size against the offer.
func checkSize(file *os.File, f upx.File) error {
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("check %s: %w", f.Name, err)
	}
	if fi.Size() != f.Size {
		return fmt.Errorf("check %s: %d bytes, the offer says %d: %w", f.Name, fi.Size(), f.Size, ErrMismatch)
	}
	return nil
}

// verifyFile checks a file's size and SHA-256 against the offer.
func verifyFile(file *os.File, f upx.File) error {
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("verify %s: %w", f.Name, err)
	}
	if fi.Size() != f.Size {
		return fmt.Errorf("%s: %d bytes, the offer says %d: %w", f.Name, fi.Size(), f.Size, ErrMismatch)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(file, 0, f.Size)); err != nil {
		return fmt.Errorf("verify %s: %w", f.Name, err)
	}
	want, _ := decodeSHA256(f.SHA256)
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("%s: SHA-256 %x, the offer says %s: %w", f.Name, got, f.SHA256, ErrMismatch)
	}
	return nil
}

// install moves verified files into firmware/<type>/<version>/ and
// switches the running version by replacing state.json; the old
// version's files are deleted after the switch.
func (a *Agent) install(o *offer, files []fetched) error {
	dir := filepath.Join(a.cfg.StateDir, firmwareDir, o.updateType, o.version)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	m := ModuleState{UpdateType: o.updateType, Version: o.version, Installed: a.cfg.Now().UTC()}
	for _, f := range files {
		if err := os.Rename(f.path, filepath.Join(dir, f.file.Name)); err != nil {
			return fmt.Errorf("install: %w", err)
		}
		m.Files = append(m.Files, InstalledFile{Name: f.file.Name, Size: f.file.Size, SHA256: strings.ToLower(f.file.SHA256)})
		if f.file.SignatureFile != "" && m.Filename == "" {
			m.Filename = f.file.Name
		}
	}
	if m.Filename == "" {
		m.Filename = "CPE.nbt"
		if old, ok := a.State().Module(o.updateType); ok {
			m.Filename = old.Filename
		}
	}
	for _, d := range []string{dir, filepath.Join(a.cfg.StateDir, downloadsDir)} {
		if err := a.syncDir(d); err != nil {
			return fmt.Errorf("install: %w", err)
		}
	}
	a.mu.Lock()
	old, _ := a.state.Module(o.updateType)
	next := a.state.with(m)
	if err := saveState(a.cfg.StateDir, next, !a.cfg.NoSync); err != nil {
		a.mu.Unlock()
		return fmt.Errorf("install: %w", err)
	}
	a.state = next
	a.mu.Unlock()
	if old.Version != "" && old.Version != o.version {
		if err := os.RemoveAll(filepath.Join(a.cfg.StateDir, firmwareDir, o.updateType, old.Version)); err != nil {
			a.log.Warn("remove the old version's files", zap.Error(err))
		}
	}
	// Partial downloads of other offers will not resume into anything.
	if entries, err := os.ReadDir(filepath.Join(a.cfg.StateDir, downloadsDir)); err == nil {
		for _, e := range entries {
			_ = os.Remove(filepath.Join(a.cfg.StateDir, downloadsDir, e.Name()))
		}
	}
	a.switchShared(o.updateType, o.version)
	return nil
}
