package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/client"
)

func newImportCommand(stdout, stderr io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import an update package into the running service",
		Long: `Upload an update package (SPEC §3) to the running service, which accepts it
only when every catalog is signed by a publisher in <certs>/trusted/, every
file's hash is in its catalog, and every description is valid. Each update
becomes the pending version of its rule; test devices get it at once, other
devices once it is approved. Importing a version again changes nothing while
it is its rule's pending or approved version; after a reset or a restore it
makes it pending again (re-staged). A package that claims an imported version
with other content is refused. On a terminal, a progress bar shows the upload.

FILE is a cabinet (.cab) or a vendor's self-extracting program (UCUpdates.exe):
the service finds the one cabinet inside, as cabextract does.`,
		Example: `  deviceupdate import UCUpdates.cab
  deviceupdate import UCUpdates.exe
  deviceupdate import --server https://fe01.contoso.com UCUpdates.cab --json`,
		Args: exactArgs(1, "one FILE"),
	}
	connect := addClientFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON document")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		path := args[0]
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		c, err := connect()
		if err != nil {
			return err
		}
		var bar io.Writer
		if tty, ok := stderr.(*os.File); ok && term.IsTerminal(int(tty.Fd())) {
			bar = stderr
		}
		name := filepath.Base(path)
		res, err := uploadPackage(cmd.Context(), c, f, fi.Size(), name, bar)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(stdout, res)
		}
		fmt.Fprintf(stdout, "imported %s (sha256 %s)\n", name, res.PackageSHA256)
		for _, u := range res.Updates {
			fmt.Fprintf(stdout, "  %-40s %-16s %s\n", u.Key, u.Version, importOutcome(u))
		}
		return nil
	}
	return cmd
}

// importOutcome says what an import did with one update.
func importOutcome(u deviceupdate.ImportedUpdate) string {
	switch {
	case u.Status == deviceupdate.ImportRestaged:
		return "re-staged: imported before, now the pending version of rule " + u.RuleID + " again"
	case u.Status != deviceupdate.ImportUnchanged:
		return "now the pending version of rule " + u.RuleID
	case u.RuleAfter != nil && u.RuleAfter.ApprovedVersion == u.Version:
		return "already the approved version of rule " + u.RuleID + "; nothing changed"
	case u.RuleAfter != nil && u.RuleAfter.PendingVersion == u.Version:
		return "already the pending version of rule " + u.RuleID + "; nothing changed"
	}
	return "already imported; nothing changed (rule " + u.RuleID + ")"
}

// uploadPackage sends size bytes of a package to the admin API, drawing a
// progress bar on bar when it is not nil. The bar's line is cleared before
// uploadPackage returns, so that the result or the error printed next
// starts on a line of its own.
func uploadPackage(ctx context.Context, c *client.Client, body io.Reader, size int64, name string, bar io.Writer) (deviceupdate.ImportResult, error) {
	if bar != nil {
		p := newProgress(bar, name, size)
		defer p.end()
		body = p.reader(body)
	}
	var res deviceupdate.ImportResult
	err := c.Upload(ctx, "/packages?name="+url.QueryEscape(name), body, size, "application/vnd.ms-cab-compressed", &res)
	return res, err
}

// progress draws an upload progress bar on a terminal: at once, then
// every 100 ms until end.
type progress struct {
	w     io.Writer
	name  string
	total int64
	done  atomic.Int64
	quit  chan struct{}
	ended chan struct{}
}

func newProgress(w io.Writer, name string, total int64) *progress {
	p := &progress{w: w, name: name, total: total, quit: make(chan struct{}), ended: make(chan struct{})}
	p.draw()
	go p.run()
	return p
}

func (p *progress) reader(r io.Reader) io.Reader { return &countingReader{r: r, n: &p.done} }

func (p *progress) run() {
	defer close(p.ended)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			fmt.Fprint(p.w, "\r\033[K")
			return
		case <-t.C:
			p.draw()
		}
	}
}

func (p *progress) draw() {
	done := p.done.Load()
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = float64(done) / float64(p.total)
	}
	bar := int(frac * width)
	state := "uploading"
	if done >= p.total {
		state = "verifying"
	}
	fmt.Fprintf(p.w, "\r\033[K%s %s [%-*s] %3.0f%% %.1f/%.1f MB", state, p.name, width,
		string(repeat('#', bar)), 100*frac, float64(done)/1e6, float64(p.total)/1e6)
}

// end stops drawing and clears the bar's line; nothing is written to the
// terminal by p after it returns.
func (p *progress) end() {
	close(p.quit)
	<-p.ended
}

func repeat(b byte, n int) []byte {
	out := make([]byte, max(n, 0))
	for i := range out {
		out[i] = b
	}
	return out
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
