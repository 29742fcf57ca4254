package main_test

import (
	"bytes"
	"debug/pe"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/e2e"
	"github.com/deviceupdate/deviceupdate/internal/testpkg"
	"github.com/deviceupdate/deviceupdate/internal/testpki"
)

const libmspackDir = "../../internal/cab/testdata/libmspack/"

// buildSelfExtractor builds, with the Go toolchain, a Windows program that
// carries the cabinet at cabPath in its data, as a vendor's self-extracting
// UCUpdates.exe carries its package, and returns the program's path.
func buildSelfExtractor(t *testing.T, cabPath string) string {
	t.Helper()
	src := t.TempDir()
	cabinet, err := os.ReadFile(cabPath)
	if err != nil {
		t.Fatal(err)
	}
	main := `package main

import _ "embed"

//go:embed package.cab
var cabinet []byte

func main() { println("UCUpdates: an update package of", len(cabinet), "bytes") }
`
	makeTree(t, src, map[string][]byte{"package.cab": cabinet, "main.go": []byte(main), "go.mod": []byte("module ucupdates\n\ngo 1.22\n")})
	exe := filepath.Join(t.TempDir(), "UCUpdates.exe")
	cmd := exec.Command("go", "build", "-o", exe, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of the self-extractor: %v\n%s", err, out)
	}

	// The cabinet lies, whole, in one of the program's sections.
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	off := bytes.Index(data, cabinet)
	if off <= 0 {
		t.Fatal("the cabinet is not in the program")
	}
	f, err := pe.Open(exe)
	if err != nil {
		t.Fatalf("not a PE file: %v", err)
	}
	defer f.Close()
	i := slices.IndexFunc(f.Sections, func(s *pe.Section) bool {
		return int64(s.Offset) <= int64(off) && int64(off+len(cabinet)) <= int64(s.Offset)+int64(s.Size)
	})
	if i < 0 {
		t.Fatalf("the cabinet at offset %d is in no section of the program", off)
	}
	t.Logf("%s: the cabinet is at offset %d, in section %s", exe, off, f.Sections[i].Name)
	return exe
}

// cabextractMembers returns the member rows `cabextract -l` prints for path.
func cabextractMembers(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command(testpkg.NeedTool(t, "cabextract"), "-l", path).CombinedOutput()
	if err != nil {
		t.Fatalf("cabextract -l %s: %v\n%s", path, err, out)
	}
	var rows []string
	for _, line := range strings.Split(string(out), "\n") {
		if cols := strings.Split(line, " | "); len(cols) == 3 && !strings.Contains(cols[0], "File size") {
			rows = append(rows, line)
		}
	}
	return rows
}

// listedNames returns the member names `deviceupdate cab list --json`
// prints for path, with '/' separators, and their cabinets' offsets.
func listedNames(t *testing.T, path string) (names []string, offsets []int64) {
	t.Helper()
	res := e2e.Run(t, "", nil, "cab", "list", "--json", path)
	var listed []struct {
		Name          string `json:"name"`
		CabinetOffset int64  `json:"cabinetOffset"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &listed); res.Code != 0 || err != nil {
		t.Fatalf("cab list --json %s: exit %d, %v\n%s", path, res.Code, err, res.Stderr)
	}
	for _, m := range listed {
		names = append(names, strings.ReplaceAll(m.Name, `\`, "/"))
		if len(offsets) == 0 || offsets[len(offsets)-1] != m.CabinetOffset {
			offsets = append(offsets, m.CabinetOffset)
		}
	}
	return names, offsets
}

// TestSelfExtractingPackage: a signed package inside a real Windows
// program imports, lists and extracts as the package itself does, and
// cabextract sees in the program what it sees in the package.
func TestSelfExtractingPackage(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	ca := testpki.NewCA(t, "Polycom Root")
	trustPublisher(t, srv, ca)
	cert, key := publisherFiles(t, ca)
	work := t.TempDir()
	image := filepath.Join(work, "CPE.nbt")
	os.WriteFile(image, testpkg.Image(1<<20, 3), 0o644)
	pkg := filepath.Join(work, "package.cab")
	if res := pack(t, pkg, cert, key, []string{"--version", "4.0.7577.4366", "--sign-cabinet"}, image); res.Code != 0 {
		t.Fatalf("pack: %s", res.Stderr)
	}
	exe := buildSelfExtractor(t, pkg)

	// cab list and cab extract see the package's members, in the program.
	want, _ := listedNames(t, pkg)
	got, offsets := listedNames(t, exe)
	if !slices.Equal(got, want) || len(offsets) != 1 || offsets[0] == 0 {
		t.Errorf("cab list of the program: %v in cabinets at %v; of the package: %v", got, offsets, want)
	}
	if res := e2e.Run(t, "", nil, "cab", "list", exe); !strings.HasPrefix(res.Stdout, fmt.Sprintf("cabinet at offset %d ", offsets[0])) {
		t.Errorf("cab list names no offset:\n%s", res.Stdout)
	}
	ours, theirs := filepath.Join(work, "ours"), filepath.Join(work, "cabextract")
	if res := e2e.Run(t, "", nil, "cab", "extract", exe, "-o", ours); res.Code != 0 || !strings.Contains(res.Stdout, fmt.Sprintf("from 1 cabinet at offset %d", offsets[0])) {
		t.Fatalf("cab extract: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if out, err := exec.Command(testpkg.NeedTool(t, "cabextract"), "-q", "-d", theirs, exe).CombinedOutput(); err != nil {
		t.Fatalf("cabextract: %v\n%s", err, out)
	}
	mine, ref := readTree(t, ours), readTree(t, theirs)
	if len(mine) != len(want) || len(ref) != len(mine) {
		t.Errorf("extracted %v; cabextract %v", keys(mine), keys(ref))
	}
	for name, b := range ref {
		if !bytes.Equal(mine[name], b) {
			t.Errorf("%s differs from cabextract's", name)
		}
	}
	if a, b := cabextractMembers(t, exe), cabextractMembers(t, pkg); !slices.Equal(a, b) || len(a) != len(want) {
		t.Errorf("cabextract -l lists in the program\n%s\nand in the package\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}

	// import makes the program's update the pending version of its rule.
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	ruleKey := deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}
	tampered := filepath.Join(work, "tampered.exe")
	data, _ := os.ReadFile(exe)
	data = bytes.Clone(data)
	data[offsets[0]+2000] ^= 0x01 // in the cabinet's compressed data
	os.WriteFile(tampered, data, 0o644)
	if res := e2e.Run(t, "", env, "import", tampered); res.Code != 1 || !strings.Contains(res.Stderr, "tampered.exe: the cabinet's Authenticode signature does not verify") {
		t.Errorf("import of a program whose cabinet was changed: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	res := e2e.Run(t, "", env, "import", exe)
	if res.Code != 0 || !strings.Contains(res.Stdout, "imported UCUpdates.exe") || !strings.Contains(res.Stdout, "now the pending version of rule "+deviceupdate.RuleID(ruleKey)) {
		t.Fatalf("import: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	rules := listRules(t, env)
	if len(rules) != 1 || rules[0].RuleKey != ruleKey || rules[0].PendingVersion.String() != "4.0.7577.4366" {
		t.Errorf("rules = %+v", rules)
	}
}

// listRules returns the rules `rule list --json` prints.
func listRules(t *testing.T, env []string) []deviceupdate.Rule {
	t.Helper()
	res := e2e.Run(t, "", env, "rule", "list", "--json")
	var rules []deviceupdate.Rule
	if err := json.Unmarshal([]byte(res.Stdout), &rules); res.Code != 0 || err != nil {
		t.Fatalf("rule list --json: exit %d, %v\n%s", res.Code, err, res.Stderr)
	}
	return rules
}

// TestImportRefusesWhatIsNotOnePackage: a file with no cabinet or with two
// is refused with the reason, and nothing is imported.
func TestImportRefusesWhatIsNotOnePackage(t *testing.T) {
	srv := e2e.Start(t, e2e.Options{})
	trustPublisher(t, srv, testpki.NewCA(t, "Polycom Root"))
	env := []string{"DEVICEUPDATE_SERVER=" + srv.URL(), "DEVICEUPDATE_CERTS=" + srv.Certs}
	notes := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notes, []byte("release notes, no cabinet\n"), 0o644)
	tests := []struct{ path, want string }{
		{notes, "deviceupdate: notes.txt: no cabinet found in the file; an update package is a cabinet, or a program with one inside\n"},
		{libmspackDir + "search_basic.cab", "deviceupdate: search_basic.cab: the file holds 2 cabinets, at offsets 6, 265; an update package is one cabinet (see 'deviceupdate cab list')\n"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			res := e2e.Run(t, "", env, "import", tt.path)
			if res.Code != 1 || res.Stderr != tt.want {
				t.Errorf("import: exit %d, stderr %q; want 1 and %q", res.Code, res.Stderr, tt.want)
			}
		})
	}
	if rules := listRules(t, env); len(rules) != 0 {
		t.Errorf("rules after the refusals: %+v", rules)
	}
}

// TestCabEmbedded: cab list and cab extract on libmspack's search test
// files and other files with cabinets inside.
func TestCabEmbedded(t *testing.T) {
	work := t.TempDir()
	src := t.TempDir()
	makeTree(t, src, map[string][]byte{"a/one.txt": []byte("one\n"), "b/two.txt": []byte("two\n")})
	gcab(t, src, filepath.Join(work, "a.cab"), true, "a/one.txt")
	gcab(t, src, filepath.Join(work, "b.cab"), false, "b/two.txt")
	a, _ := os.ReadFile(filepath.Join(work, "a.cab"))
	b, _ := os.ReadFile(filepath.Join(work, "b.cab"))
	two := filepath.Join(work, "two.bin")
	os.WriteFile(two, bytes.Join([][]byte{[]byte("MZ stub"), a, []byte("padding"), b}, nil), 0o644)
	notes := filepath.Join(work, "notes.txt")
	os.WriteFile(notes, []byte("no cabinet here\n"), 0o644)
	offB := 7 + len(a) + 7

	tests := []struct {
		name       string
		path       string
		offsets    []int64
		extractOut string // what extract prints, or its one-line refusal
		files      []string
	}{
		{"libmspack search_basic", libmspackDir + "search_basic.cab", []int64{6, 265},
			`deviceupdate: ../../internal/cab/testdata/libmspack/search_basic.cab: cab: unsafe member name: "hello.c" names member 0 of the cabinet at offset 6 and member 0 of the cabinet at offset 265; one would overwrite the other` + "\n", nil},
		{"libmspack search_tricky1", libmspackDir + "search_tricky1.cab", []int64{4},
			"extracted 2 files (151 bytes) from 1 cabinet at offset 4 to OUT\n", []string{"hello.c", "welcome.c"}},
		{"two cabinets", two, []int64{7, int64(offB)},
			fmt.Sprintf("extracted 2 files (8 bytes) from 2 cabinets at offset 7, %d to OUT\n", offB), []string{"a/one.txt", "b/two.txt"}},
		{"no cabinet", notes, nil, "deviceupdate: no cabinet found in " + notes + "\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e2e.Run(t, "", nil, "cab", "list", tt.path)
			if tt.offsets == nil {
				if res.Code != 1 || res.Stderr != tt.extractOut {
					t.Errorf("cab list: exit %d, stderr %q", res.Code, res.Stderr)
				}
			} else {
				for _, off := range tt.offsets {
					if !strings.Contains(res.Stdout, fmt.Sprintf("cabinet at offset %d (%#x)", off, off)) {
						t.Errorf("cab list names no cabinet at offset %d:\n%s", off, res.Stdout)
					}
				}
				if _, offsets := listedNames(t, tt.path); !slices.Equal(offsets, tt.offsets) {
					t.Errorf("cab list --json: cabinets at %v, want %v", offsets, tt.offsets)
				}
			}

			out := filepath.Join(t.TempDir(), "out")
			res = e2e.Run(t, "", nil, "cab", "extract", tt.path, "-o", out)
			got := strings.ReplaceAll(res.Stdout+res.Stderr, out, "OUT")
			if got != tt.extractOut {
				t.Errorf("cab extract printed %q, want %q", got, tt.extractOut)
			}
			tree := readTree(t, out)
			if len(tree) != len(tt.files) {
				t.Errorf("extracted %v, want %v", keys(tree), tt.files)
			}
			if tt.files == nil {
				return
			}
			ref := filepath.Join(t.TempDir(), "cabextract")
			if b, err := exec.Command(testpkg.NeedTool(t, "cabextract"), "-q", "-d", ref, tt.path).CombinedOutput(); err != nil {
				t.Fatalf("cabextract: %v\n%s", err, b)
			}
			for name, data := range readTree(t, ref) {
				if !bytes.Equal(tree[name], data) {
					t.Errorf("%s differs from cabextract's", name)
				}
			}
		})
	}
}
