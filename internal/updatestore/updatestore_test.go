package updatestore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/updatestore"
)

var (
	cx600 = deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}
	v4366 = deviceupdate.MustParseVersion("4.0.7577.4366")
)

func TestRelAndFolder(t *testing.T) {
	const want = "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE"
	if got := updatestore.Rel(cx600, v4366); got != want {
		t.Errorf("Rel = %q, want %q", got, want)
	}
	data := t.TempDir()
	if got, want := updatestore.Folder(data, cx600, v4366), filepath.Join(data, "DeviceUpdateStore", filepath.FromSlash(want)); got != want {
		t.Errorf("Folder = %q, want %q", got, want)
	}
	if got := updatestore.New(data, nil).Folder(cx600, v4366); got != updatestore.Folder(data, cx600, v4366) {
		t.Errorf("Store.Folder = %q", got)
	}
}

// TestParseFilePath: a download path reads back into the update's key,
// version and file name only when it names a file of an update folder,
// in the form Rel writes; anything else a phone may send is refused.
func TestParseFilePath(t *testing.T) {
	const good = "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt"
	tests := []struct {
		name string
		path string
		ok   bool
	}{
		{"an image", good, true},
		{"names in another case", "ucphone/POLYCOM/cx600/a/enu/4.0.7577.4366/cpe/cpe.NBT", true},
		{"the folder alone", "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE", false},
		{"one level too deep", good + "/x", false},
		{"parent folder as the name", "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/..", false},
		{"parent folder as a part", "UCPhone/Polycom/../../../../../etc/passwd", false},
		{"climbing out", "../../../../../../../etc/passwd", false},
		{"current folder as a part", "UCPhone/./CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt", false},
		{"empty part", "UCPhone//CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt", false},
		{"absolute", "/UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt", false},
		{"backslash", `UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/..\..\x.nbt`, false},
		{"escaped dots", "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/%2e%2e", false},
		{"NUL", "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt\x00.cat", false},
		{"version with a leading zero", "UCPhone/Polycom/CX600/A/ENU/4.0.07577.4366/CPE/CPE.nbt", false},
		{"version of three parts", "UCPhone/Polycom/CX600/A/ENU/4.0.7577/CPE/CPE.nbt", false},
		{"version out of range", "UCPhone/Polycom/CX600/A/ENU/4.0.7577.99999999999/CPE/CPE.nbt", false},
		{"identifier too long", "UCPhone/" + strings.Repeat("P", deviceupdate.MaxIdentifierLen+1) + "/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt", false},
		{"file name too long", "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/" + strings.Repeat("n", deviceupdate.MaxFileNameLen+1), false},
		{"space in a name", "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE .nbt", false},
		{"many slashes", strings.Repeat("/", 1<<16), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, v, name, ok := updatestore.ParseFilePath(tt.path)
			if ok != tt.ok {
				t.Fatalf("ParseFilePath(%q) ok = %v, want %v", tt.path, ok, tt.ok)
			}
			if ok && updatestore.Rel(k, v)+"/"+name != tt.path {
				t.Errorf("ParseFilePath(%q) reads back as %q", tt.path, updatestore.Rel(k, v)+"/"+name)
			}
			if !ok && (k != deviceupdate.RuleKey{} || !v.IsZero() || name != "") {
				t.Errorf("refused %q, yet returned %+v %s %q", tt.path, k, v, name)
			}
		})
	}
}

// FuzzParseFilePath: whatever a phone puts in a download path, an
// accepted one is exactly the file name in the folder Rel names, inside
// the store; a refused one never panics.
func FuzzParseFilePath(f *testing.F) {
	f.Add("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt")
	f.Add("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/..")
	f.Add("a/b/c/d/e/0.0.0.0/f/g")
	f.Add("UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/CPE.nbt/")
	f.Add("././././././././")
	data := filepath.Join(string(filepath.Separator), "data")
	f.Fuzz(func(t *testing.T, p string) {
		k, v, name, ok := updatestore.ParseFilePath(p)
		if !ok {
			return
		}
		if back := updatestore.Rel(k, v) + "/" + name; back != p {
			t.Fatalf("ParseFilePath(%q) reads back as %q", p, back)
		}
		for _, part := range strings.Split(p, "/") {
			if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "\\\x00") {
				t.Fatalf("accepted %q, which has the part %q", p, part)
			}
		}
		file := filepath.Join(updatestore.Folder(data, k, v), name)
		if rel, err := filepath.Rel(filepath.Join(data, updatestore.Dir), file); err != nil || strings.HasPrefix(rel, "..") || filepath.Clean(file) != file {
			t.Fatalf("accepted %q leads to %s", p, file)
		}
	})
}

// writeUpdate writes the files of an update in its folder and returns its
// record.
func writeUpdate(t *testing.T, s *updatestore.Store, k deviceupdate.RuleKey, v deviceupdate.Version, image []byte) *deviceupdate.StoredUpdate {
	t.Helper()
	dir := s.Folder(k, v)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	file := func(name string, b []byte) deviceupdate.UpdateFile {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return deviceupdate.UpdateFile{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
	}
	return &deviceupdate.StoredUpdate{RuleKey: k, Version: v, Images: []deviceupdate.UpdateFile{file("CPE.nbt", image)},
		Catalog: file("CPE.cat", []byte("catalog")), Description: file("CPE.xml", []byte("<Update/>"))}
}

// TestOpenStaysInStore: a file is opened in its update's folder; a link
// in the store that leads out of it is not followed.
func TestOpenStaysInStore(t *testing.T) {
	data := t.TempDir()
	s := updatestore.New(data, nil)
	t.Cleanup(func() { s.Close() })
	writeUpdate(t, s, cx600, v4366, []byte("firmware"))
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(s.Folder(cx600, v4366), "Link.nbt")); err != nil {
		t.Fatal(err)
	}
	other := deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX700", Revision: "A", Locale: "ENU", UpdateType: "CPE"}
	if err := os.MkdirAll(filepath.Dir(s.Folder(other, v4366)), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), s.Folder(other, v4366)); err != nil {
		t.Fatal(err)
	}

	open := func(k deviceupdate.RuleKey, name string) (*deviceupdate.Download, error) {
		return s.OpenFile(context.Background(), &deviceupdate.StoredUpdate{RuleKey: k, Version: v4366}, deviceupdate.UpdateFile{Name: name})
	}
	d, err := open(cx600, "CPE.nbt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(d.Content)
	d.Content.Close()
	if string(got) != "firmware" {
		t.Errorf("CPE.nbt reads %q", got)
	}
	tests := []struct {
		name string
		key  deviceupdate.RuleKey
		file string
	}{
		{"a link to a file outside", cx600, "Link.nbt"},
		{"a linked folder outside", other, "secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := open(tt.key, tt.file); err == nil {
				d.Content.Close()
				t.Fatal("opened a file outside the store")
			}
		})
	}
	if _, err := open(cx600, "Missing.nbt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestChunkListReadOncePerContent: the chunk list of a file is read from
// the store once and kept, for every update holding the same content; a
// failure to read it is not kept.
func TestChunkListReadOncePerContent(t *testing.T) {
	s := updatestore.New(t.TempDir(), nil)
	t.Cleanup(func() { s.Close() })
	image := bytes.Repeat([]byte("0123456789abcdef"), deviceupdate.ChunkSize/8) // two chunks
	u := writeUpdate(t, s, cx600, v4366, image)
	want, err := deviceupdate.NewChunkList(bytes.NewReader(image), int64(len(image)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ChunkList(cx600, v4366, u.Images[0])
	if err != nil || got.SHA256 != want.SHA256 || len(got.Hashes) != 2 {
		t.Fatalf("ChunkList = %+v, %v; want %s", got, err, want.SHA256)
	}
	if err := os.Remove(filepath.Join(s.Folder(cx600, v4366), "CPE.nbt")); err != nil {
		t.Fatal(err)
	}
	if again, err := s.ChunkList(cx600, v4366, u.Images[0]); err != nil || again != got {
		t.Errorf("second ChunkList = %p, %v; want the kept %p", again, err, got)
	}
	// Other content at the same name is read, and fails while missing.
	other := u.Images[0]
	other.SHA256 = strings.Repeat("0", 64)
	if _, err := s.ChunkList(cx600, v4366, other); err == nil {
		t.Fatal("chunk list of a missing file")
	}
	if err := os.WriteFile(filepath.Join(s.Folder(cx600, v4366), "CPE.nbt"), image, 0o640); err != nil {
		t.Fatal(err)
	}
	if cl, err := s.ChunkList(cx600, v4366, other); err != nil || cl.SHA256 != want.SHA256 {
		t.Errorf("after the file is back: %v, %v", cl, err)
	}
}

func TestHoldsFiles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(store string) error
		want  bool
	}{
		{"no store", func(string) error { return nil }, false},
		{"empty folders", func(store string) error { return os.MkdirAll(filepath.Join(store, "UCPhone", "Polycom"), 0o750) }, false},
		{"a file deep down", func(store string) error {
			dir := filepath.Join(store, filepath.FromSlash(updatestore.Rel(cx600, v4366)))
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "CPE.nbt"), nil, 0o640)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := t.TempDir()
			if err := tt.setup(filepath.Join(data, updatestore.Dir)); err != nil {
				t.Fatal(err)
			}
			if got, err := updatestore.HoldsFiles(data); got != tt.want || err != nil {
				t.Errorf("HoldsFiles = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// openRecords opens the records (a real store) in data.
func openRecords(t *testing.T, data string) *store.DB {
	t.Helper()
	db, err := store.Open(data, store.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Error(err)
		}
		db.Close()
	})
	return db
}

// TestMoveIn: staged folders move into their places, replacing what is
// there, noted as in progress until the commit; a move that fails, or a
// commit that does not happen, leaves no folder of an update without a
// record, and no note.
func TestMoveIn(t *testing.T) {
	v4400 := deviceupdate.MustParseVersion("4.0.7577.4400")
	tests := []struct {
		name      string
		breakMove bool // the second staged folder is missing
		commit    bool
		wantKept  []deviceupdate.Version
	}{
		{"committed", false, true, []deviceupdate.Version{v4366, v4400}},
		{"commit failed", false, false, nil},
		{"a move failed", true, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := t.TempDir()
			db := openRecords(t, data)
			s := updatestore.New(data, nil)
			staging, err := s.Stage()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Unstage(staging)
			// What an interrupted import left where the first goes.
			if err := os.MkdirAll(s.Folder(cx600, v4366), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(s.Folder(cx600, v4366), "Old.nbt"), nil, 0o640); err != nil {
				t.Fatal(err)
			}
			var moves []updatestore.Move
			for i, v := range []deviceupdate.Version{v4366, v4400} {
				staged := filepath.Join(staging, "update-"+v.String())
				if err := os.MkdirAll(staged, 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(staged, "CPE.nbt"), []byte(v.String()), 0o640); err != nil {
					t.Fatal(err)
				}
				if tt.breakMove && i == 1 {
					os.RemoveAll(staged)
				}
				moves = append(moves, updatestore.Move{Update: &deviceupdate.StoredUpdate{RuleKey: cx600, Version: v}, Staged: staged})
			}
			err = s.MoveIn(db, moves, time.Now())
			if (err != nil) != tt.breakMove {
				t.Fatalf("MoveIn = %v", err)
			}
			if err == nil {
				if changes, _ := db.InProgressChanges(); len(changes) != 2 {
					t.Errorf("notes while moved in: %+v, want 2", changes)
				}
				if tt.commit {
					if _, err := db.CommitImport([]*deviceupdate.StoredUpdate{moves[0].Update, moves[1].Update}); err != nil {
						t.Fatal(err)
					}
				} else {
					s.Abandon(db, moves)
				}
			}
			if changes, err := db.InProgressChanges(); err != nil || len(changes) != 0 {
				t.Errorf("notes after: %+v, %v", changes, err)
			}
			for _, v := range []deviceupdate.Version{v4366, v4400} {
				got, err := os.ReadFile(filepath.Join(s.Folder(cx600, v), "CPE.nbt"))
				kept := len(tt.wantKept) > 0
				if kept != (err == nil) || kept && string(got) != v.String() {
					t.Errorf("%s: %q, %v; want kept %v", v, got, err, kept)
				}
			}
			if _, err := os.Stat(filepath.Join(s.Folder(cx600, v4366), "Old.nbt")); err == nil {
				t.Error("what an interrupted import left is still there")
			}
		})
	}
}
