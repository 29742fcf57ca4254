package main

import (
	"encoding/json"
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
devices once it is approved. Importing the same package again changes
nothing; a package that claims an imported version with other content is
refused. On a terminal, a progress bar shows the upload.

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
		var body io.Reader = f
		if tty, ok := stderr.(*os.File); ok && term.IsTerminal(int(tty.Fd())) {
			p := newProgress(stderr, filepath.Base(path), fi.Size())
			defer p.stop()
			body = p.reader(f)
		}
		var res deviceupdate.ImportResult
		err = c.Upload(cmd.Context(), "/packages?name="+url.QueryEscape(filepath.Base(path)), body, fi.Size(), "application/vnd.ms-cab-compressed", &res)
		if err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(res)
		}
		fmt.Fprintf(stdout, "imported %s (sha256 %s)\n", filepath.Base(path), res.PackageSHA256)
		for _, u := range res.Updates {
			what := "now the pending version of rule " + u.RuleID
			if u.Status == deviceupdate.ImportUnchanged {
				what = "already imported; nothing changed (rule " + u.RuleID + ")"
			}
			fmt.Fprintf(stdout, "  %-40s %-16s %s\n", u.Key, u.Version, what)
		}
		return nil
	}
	return cmd
}

// progress draws an upload progress bar on a terminal.
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

func (p *progress) stop() {
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
