package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser;
// nothing is ever downloaded.
const ChromiumPath = "/usr/bin/chromium"

// actionTimeout bounds one browser step; a -race server on a busy
// machine answers slowly, and no test's verdict depends on it.
const actionTimeout = 60 * time.Second

// Browser is a headless Chromium driven over the DevTools protocol, in a
// fresh profile, trusting only the server certificate it is given.
type Browser struct {
	tb    testing.TB
	ctx   context.Context
	shots string // the test's folder of screenshots
	n     int
}

// NewBrowser starts Chromium, or skips the test when it is not installed
// (and fails it under CI=1 or CI=true, where .ci/run installs it). The
// browser accepts the server certificate cert, and no other untrusted
// one, by the hash of its public key.
func NewBrowser(tb testing.TB, cert *x509.Certificate) *Browser {
	tb.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if ci := os.Getenv("CI"); ci == "1" || ci == "true" {
			tb.Fatalf("%s is missing; CI must install chromium", ChromiumPath)
		}
		tb.Skipf("%s is not installed", ChromiumPath)
	}
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	// Every page records what its Content-Security-Policy refused and
	// its script errors, for Problems.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watchProblems}); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	return &Browser{tb: tb, ctx: ctx, shots: tb.TempDir()}
}

const watchProblems = `window.__problems = [];
document.addEventListener("securitypolicyviolation", e => window.__problems.push("CSP refused " + e.violatedDirective + " " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));
window.addEventListener("error", e => window.__problems.push("script error: " + e.message + " at " + e.filename + ":" + e.lineno));`

// Problems returns what the current page's CSP refused and its script
// errors since it loaded.
func (b *Browser) Problems() []string {
	b.tb.Helper()
	return Eval[[]string](b, "window.__problems || []")
}

// Do runs the steps in order and fails the test at the first that fails.
func (b *Browser) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.tb.Fatalf("browser: %s: %v", what, err)
	}
}

// Eval runs a JavaScript expression in the page (awaiting a promise) and
// returns its value.
func Eval[T any](b *Browser, expr string) T {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.tb.Fatalf("browser: evaluate %q: %v", expr, err)
	}
	return v
}

// Text returns the text of the first element that matches a CSS selector,
// waiting for it to appear.
func (b *Browser) Text(sel string) string {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.tb.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// Shot saves a PNG of the whole page as NN-name.png in the test's temp
// folder, and in $DEVICEUPDATE_SHOTS too when it names a folder, so that
// people can look at them.
func (b *Browser) Shot(name string) string {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.tb.Fatalf("browser: screenshot %s: %v", name, err)
	}
	b.n++
	name = fmt.Sprintf("%02d-%s.png", b.n, unsafeName.ReplaceAllString(name, "-"))
	base := filepath.Join(b.shots, name)
	if err := os.WriteFile(base, png, 0o644); err != nil {
		b.tb.Fatal(err)
	}
	if dir := os.Getenv("DEVICEUPDATE_SHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			b.tb.Fatal(err)
		}
	}
	return base
}
