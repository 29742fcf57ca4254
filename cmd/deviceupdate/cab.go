package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate/internal/cab"
)

func newCabCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("cab", "Inspect and extract any cabinet (.cab), like cabextract",
		newCabListCommand(stdout), newCabExtractCommand(stdout))
}

// openCab opens a cabinet file with the default limits. The caller closes f.
func openCab(path string) (*cab.Reader, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	r, err := cab.NewReader(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, f, nil
}

// cabEntry is one member as `cab list --json` prints it.
type cabEntry struct {
	Name        string    `json:"name"`
	Size        int64     `json:"size"`
	Modified    time.Time `json:"modified"`
	Folder      int       `json:"folder"`
	Compression string    `json:"compression"`
}

func newCabListCommand(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list FILE",
		Short: "List the members of a cabinet",
		Long: `List every member of a cabinet: its size, date, folder and the folder's
compression (none, MSZIP, LZX:<window bits>, Quantum). The tables of the cabinet
are checked as they are read; a damaged or hostile cabinet is refused with the
place and the reason.`,
		Example: `  deviceupdate cab list update.cab
  deviceupdate cab list --json update.cab`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			r, f, err := openCab(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			entries := make([]cabEntry, 0, len(r.Files))
			for _, m := range r.Files {
				comp := "(continued)"
				if m.FolderIndex >= 0 && m.FolderIndex < len(r.Folders) {
					comp = r.Folders[m.FolderIndex].Compression.String()
				}
				entries = append(entries, cabEntry{m.Name, m.Size, m.Modified, m.FolderIndex, comp})
			}
			if asJSON {
				return writeJSON(stdout, entries)
			}
			tb := newTable(stdout, "SIZE", "DATE", "FOLDER", "COMPRESSION", "NAME")
			for _, e := range entries {
				tb.row(strconv.FormatInt(e.Size, 10), e.Modified.Format("2006-01-02 15:04:05"), strconv.Itoa(e.Folder), e.Compression, e.Name)
			}
			return tb.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON array")
	return cmd
}

func newCabExtractCommand(stdout io.Writer) *cobra.Command {
	var dir string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "extract FILE -o DIR",
		Short: "Extract every member of a cabinet below DIR",
		Long: `Extract every member of a cabinet below DIR (created if needed). The
cabinet's '\' separators become folders. A member name that could reach
outside DIR (absolute, a drive letter, a '..' component, a NUL byte) is
refused, and then nothing is extracted. Every data block's checksum is
verified; a member is written through a temporary file and renamed into
place, so a failure leaves no partial member.`,
		Example: `  deviceupdate cab extract update.cab -o out/
  deviceupdate cab extract -o out/ update.cab`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			if dir == "" {
				return usageError{fmt.Errorf("cab extract needs -o DIR (see 'deviceupdate cab extract --help')")}
			}
			r, f, err := openCab(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			written, err := r.ExtractTo(dir)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if verbose {
				for _, p := range written {
					fmt.Fprintf(stdout, "  extracting %s\n", p)
				}
			}
			var total int64
			for _, m := range r.Files {
				total += m.Size
			}
			fmt.Fprintf(stdout, "extracted %s (%s) to %s\n", plural(int64(len(written)), "file"), plural(total, "byte"), dir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "output", "o", "", "folder to extract into (required)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "name each file as it is written")
	return cmd
}
