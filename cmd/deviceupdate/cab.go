package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deviceupdate/deviceupdate/internal/cab"
)

func newCabCommand(stdout io.Writer) *cobra.Command {
	return newGroupCommand("cab", "Inspect and extract any cabinet (.cab), like cabextract",
		newCabListCommand(stdout), newCabExtractCommand(stdout))
}

// openCabs opens a file and finds its cabinets with the default limits: a
// cabinet file, or cabinets embedded in another file (a vendor's
// self-extracting UCUpdates.exe). The caller closes f.
func openCabs(path string) ([]*cab.Reader, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	cabs, err := cab.Search(f, fi.Size())
	if err != nil {
		f.Close()
		if errors.Is(err, cab.ErrNoCabinet) {
			// "cab: no cabinet found (why)" becomes "no cabinet found in PATH (why)".
			return nil, nil, fmt.Errorf("no cabinet found in %s%s", path, strings.TrimPrefix(err.Error(), cab.ErrNoCabinet.Error()))
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cabs, f, nil
}

// embedded reports whether the cabinets are not simply the whole file.
func embedded(cabs []*cab.Reader) bool { return len(cabs) > 1 || cabs[0].Offset != 0 }

// cabEntry is one member as `cab list --json` prints it.
type cabEntry struct {
	Name        string    `json:"name"`
	Size        int64     `json:"size"`
	Modified    time.Time `json:"modified"`
	Folder      int       `json:"folder"`
	Compression string    `json:"compression"`
	// CabinetOffset is where the member's cabinet starts in the file: 0
	// for a cabinet file, more in a self-extracting program.
	CabinetOffset int64 `json:"cabinetOffset"`
}

func newCabListCommand(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list FILE",
		Short: "List the members of a cabinet",
		Long: `List every member of a cabinet: its size, date, folder and the folder's
compression (none, MSZIP, LZX:<window bits>, Quantum). The tables of the cabinet
are checked as they are read; a damaged or hostile cabinet is refused with the
place and the reason.

FILE may also be a program with cabinets inside, such as a vendor's
self-extracting UCUpdates.exe: every cabinet in it is found, as cabextract
finds them, and listed under its offset in the file.`,
		Example: `  deviceupdate cab list update.cab
  deviceupdate cab list --json update.cab
  deviceupdate cab list UCUpdates.exe`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			cabs, f, err := openCabs(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			var entries []cabEntry
			for _, r := range cabs {
				for _, m := range r.Files {
					comp := "(continued)"
					if m.FolderIndex >= 0 && m.FolderIndex < len(r.Folders) {
						comp = r.Folders[m.FolderIndex].Compression.String()
					}
					entries = append(entries, cabEntry{m.Name, m.Size, m.Modified, m.FolderIndex, comp, r.Offset})
				}
			}
			if asJSON {
				return writeJSON(stdout, entries)
			}
			for i, r := range cabs {
				if embedded(cabs) {
					if i > 0 {
						fmt.Fprintln(stdout)
					}
					fmt.Fprintf(stdout, "cabinet at offset %d (%#x): %s\n", r.Offset, r.Offset, plural(int64(len(r.Files)), "file"))
				}
				tb := newTable(stdout, "SIZE", "DATE", "FOLDER", "COMPRESSION", "NAME")
				for _, e := range entries {
					if e.CabinetOffset == r.Offset {
						tb.row(strconv.FormatInt(e.Size, 10), e.Modified.Format("2006-01-02 15:04:05"), strconv.Itoa(e.Folder), e.Compression, e.Name)
					}
				}
				if err := tb.flush(); err != nil {
					return err
				}
			}
			return nil
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
place, so a failure leaves no partial member.

FILE may also be a program with cabinets inside, such as a vendor's
self-extracting UCUpdates.exe: the members of every cabinet in it are
extracted, as cabextract does, except that a name two cabinets share is
refused rather than overwritten.`,
		Example: `  deviceupdate cab extract update.cab -o out/
  deviceupdate cab extract -o out/ update.cab
  deviceupdate cab extract UCUpdates.exe -o out/`,
		Args: exactArgs(1, "one FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			if dir == "" {
				return usageError{fmt.Errorf("cab extract needs -o DIR (see 'deviceupdate cab extract --help')")}
			}
			cabs, f, err := openCabs(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			written, err := cab.ExtractAll(dir, cabs)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if verbose {
				for _, p := range written {
					fmt.Fprintf(stdout, "  extracting %s\n", p)
				}
			}
			var total int64
			var offsets []string
			for _, r := range cabs {
				for _, m := range r.Files {
					total += m.Size
				}
				offsets = append(offsets, strconv.FormatInt(r.Offset, 10))
			}
			from := ""
			if embedded(cabs) {
				from = fmt.Sprintf(" from %s at offset %s", plural(int64(len(cabs)), "cabinet"), strings.Join(offsets, ", "))
			}
			fmt.Fprintf(stdout, "extracted %s (%s)%s to %s\n", plural(int64(len(written)), "file"), plural(total, "byte"), from, dir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "output", "o", "", "folder to extract into (required)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "name each file as it is written")
	return cmd
}
