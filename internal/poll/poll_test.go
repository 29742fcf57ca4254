package poll_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

const (
	phoneMAC = "00-04-F2-00-00-02"
	labMAC   = "00-04-F2-00-00-01"
	outside  = "192.0.2.10" // in no site
	redmond  = "10.1.2.3"   // in the site Redmond of withRedmond
)

var cx700 = deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX700", Revision: "A", Locale: "ENU", UpdateType: "CPE"}

// request is a poll of a phone of the given model, identified by mac (or
// serial when mac is empty), running version running.
func request(model, mac, serial, running string) deviceupdate.PollRequest {
	return deviceupdate.PollRequest{DeviceType: "UCPhone", MAC: mac, Serial: serial, Brand: "Polycom", Model: model, Revision: "A", Locale: "ENU",
		Modules: []deviceupdate.Module{{UpdateType: "CPE", Filename: "CPE.nbt", Version: v(running)}}}
}

func withRedmond(t testing.TB, f *fixture) { f.addSite(t, "Redmond", "10.1.0.0/16") }

// TestAnswer: which version a phone is offered (SPEC §5), with the
// settings of its site, from the rules and test devices in the store.
func TestAnswer(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t testing.TB, f *fixture)
		req      deviceupdate.PollRequest
		remote   string
		want     string // the offered version, "" for nothing
		site     string
		interval [2]int // its range
		internal string
		external string
	}{
		{"an old phone gets the approved version", nil, request("CX600", phoneMAC, "", "4.0.7577.4100"), outside,
			"4.0.7577.4366", "", [2]int{77760, 95040}, "", ""},
		{"a test device gets the pending version", func(t testing.TB, f *fixture) {
			f.addTestDevice(t, deviceupdate.TestDevice{Name: "lab", MAC: labMAC, Scope: deviceupdate.ScopeGlobal})
		}, request("CX600", labMAC, "", "4.0.7577.4100"), outside, "4.0.7577.4400", "", [2]int{77760, 95040}, "", ""},
		{"a test device known by its serial number", func(t testing.TB, f *fixture) {
			f.addTestDevice(t, deviceupdate.TestDevice{Name: "lab", Serial: "SN-1", Scope: deviceupdate.ScopeGlobal})
		}, request("CX600", "", "sn-1", "4.0.7577.4366"), outside, "4.0.7577.4400", "", [2]int{77760, 95040}, "", ""},
		{"a test device of a site, elsewhere", func(t testing.TB, f *fixture) {
			withRedmond(t, f)
			f.addTestDevice(t, deviceupdate.TestDevice{Name: "lab", MAC: labMAC, Scope: "site:Redmond"})
		}, request("CX600", labMAC, "", "4.0.7577.4100"), outside, "4.0.7577.4366", "", [2]int{77760, 95040}, "", ""},
		{"a test device of a site, at its site", func(t testing.TB, f *fixture) {
			withRedmond(t, f)
			f.addTestDevice(t, deviceupdate.TestDevice{Name: "lab", MAC: labMAC, Scope: "site:Redmond"})
		}, request("CX600", labMAC, "", "4.0.7577.4100"), redmond, "4.0.7577.4400", "Redmond", [2]int{77760, 95040}, "", ""},
		{"a newer phone is rolled back to the approved version", nil, request("CX600", phoneMAC, "", "4.0.7577.9999"), outside,
			"4.0.7577.4366", "", [2]int{77760, 95040}, "", ""},
		{"a restore rolls the fleet back", func(t testing.TB, f *fixture) {
			f.change(t, cx600, deviceupdate.RuleApprove)
			f.change(t, cx600, deviceupdate.RuleRestore)
		}, request("CX600", phoneMAC, "", "4.0.7577.4400"), outside, "4.0.7577.4366", "", [2]int{77760, 95040}, "", ""},
		{"a phone on the approved version gets nothing", nil, request("CX600", phoneMAC, "", "4.0.7577.4366"), outside,
			"", "", [2]int{77760, 95040}, "", ""},
		{"a test device on the pending version gets nothing", func(t testing.TB, f *fixture) {
			f.addTestDevice(t, deviceupdate.TestDevice{Name: "lab", MAC: labMAC, Scope: deviceupdate.ScopeGlobal})
		}, request("CX600", labMAC, "", "4.0.7577.4400"), outside, "", "", [2]int{77760, 95040}, "", ""},
		{"a model no rule governs gets nothing", nil, request("CX500", phoneMAC, "", "4.0.7577.4100"), outside,
			"", "", [2]int{77760, 95040}, "", ""},
		{"a rule with a pending version only offers nothing to others", func(t testing.TB, f *fixture) {
			f.addUpdate(t, cx700, "4.0.7577.4400", map[string][]byte{"CPE.nbt": content(100, 5)})
		}, request("CX700", phoneMAC, "", "4.0.7577.4100"), outside, "", "", [2]int{77760, 95040}, "", ""},
		{"the global settings outside any site", func(t testing.TB, f *fixture) {
			withRedmond(t, f)
			f.set(t, deviceupdate.ScopeGlobal, map[string]string{"PollIntervalSeconds": "7200", "InternalHostName": "files.example", "ExternalHostName": "ext.example:8443"})
			f.set(t, "site:Redmond", map[string]string{"PollIntervalSeconds": "3600", "InternalHostName": "redmond.example"})
		}, request("CX600", phoneMAC, "", "4.0.7577.4100"), outside, "4.0.7577.4366", "", [2]int{6480, 7920}, "files.example", "ext.example:8443"},
		{"a site's settings over the global ones", func(t testing.TB, f *fixture) {
			withRedmond(t, f)
			f.set(t, deviceupdate.ScopeGlobal, map[string]string{"PollIntervalSeconds": "7200", "InternalHostName": "files.example", "ExternalHostName": "ext.example:8443"})
			f.set(t, "site:Redmond", map[string]string{"PollIntervalSeconds": "3600", "InternalHostName": "redmond.example"})
		}, request("CX600", phoneMAC, "", "4.0.7577.4100"), redmond, "4.0.7577.4366", "Redmond", [2]int{3240, 3960}, "redmond.example", "ext.example:8443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := goldenFixture(t)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			ans, err := f.svc.Poll(context.Background(), tt.req, tt.remote)
			if err != nil {
				t.Fatal(err)
			}
			if got := offered(ans); got != tt.want {
				t.Errorf("offered %q, want %q", got, tt.want)
			}
			if ans.Site != tt.site || ans.InternalHost != tt.internal || ans.ExternalHost != tt.external {
				t.Errorf("site %q, hosts %q %q; want %q, %q %q", ans.Site, ans.InternalHost, ans.ExternalHost, tt.site, tt.internal, tt.external)
			}
			if ans.PollInterval < tt.interval[0] || ans.PollInterval > tt.interval[1] {
				t.Errorf("poll interval %d, want %d to %d", ans.PollInterval, tt.interval[0], tt.interval[1])
			}
			if tt.want == "" {
				if ans.Path != "" || ans.Files != nil {
					t.Errorf("nothing offered, yet path %q and files %+v", ans.Path, ans.Files)
				}
				return
			}
			u := ans.Update
			if wantPath := "UCPhone/Polycom/CX600/A/ENU/" + tt.want + "/CPE"; ans.Path != wantPath {
				t.Errorf("path %q, want %q", ans.Path, wantPath)
			}
			want := []deviceupdate.OfferedFile{
				{UpdateFile: u.Images[0], SignatureFile: "CPE.cat"},
				{UpdateFile: u.Images[1], SignatureFile: "CPE.cat"},
				{UpdateFile: u.Catalog},
			}
			if len(ans.Files) != len(want) {
				t.Fatalf("files %+v, want %+v", ans.Files, want)
			}
			for i := range want {
				if ans.Files[i] != want[i] {
					t.Errorf("file %d: %+v, want %+v", i, ans.Files[i], want[i])
				}
			}
		})
	}
}

func offered(ans *deviceupdate.PollAnswer) string {
	if ans.Update == nil {
		return ""
	}
	return ans.Update.Version.String()
}

// TestPeerSharing: whether a phone shares files is its own setting, else
// its site's, else the global one, else off (SPEC §9); the answer lists
// each file's chunk list, as the store's file hashes, only when it does.
func TestPeerSharing(t *testing.T) {
	on, off := map[string]string{"PeerFirmwareSharing": "true"}, map[string]string{"PeerFirmwareSharing": "false"}
	tests := []struct {
		name                 string
		global, site, device map[string]string
		remote               string
		want                 bool
	}{
		{"off by default", nil, nil, nil, redmond, false},
		{"global on", on, nil, nil, redmond, true},
		{"the site's over the global one", on, off, nil, redmond, false},
		{"the site's only at the site", off, on, nil, outside, false},
		{"the device's over its site's", off, off, on, redmond, true},
		{"the device's over the global one", on, nil, off, outside, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := goldenFixture(t)
			withRedmond(t, f)
			if tt.global != nil {
				f.set(t, deviceupdate.ScopeGlobal, tt.global)
			}
			if tt.site != nil {
				f.set(t, "site:Redmond", tt.site)
			}
			if tt.device != nil {
				f.setDevice(t, phoneMAC, tt.device)
			}
			ans, err := f.svc.Poll(context.Background(), request("CX600", phoneMAC, "", "4.0.7577.4100"), tt.remote)
			if err != nil {
				t.Fatal(err)
			}
			if ans.PeerSharing != tt.want {
				t.Errorf("peer sharing %v, want %v", ans.PeerSharing, tt.want)
			}
			if len(ans.Files) != 3 {
				t.Fatalf("files: %+v", ans.Files)
			}
			for _, file := range ans.Files {
				if !tt.want {
					if file.ChunkList != nil || file.ChunkListName != "" {
						t.Errorf("%s names a chunk list with sharing off", file.Name)
					}
					continue
				}
				b, err := os.ReadFile(filepath.Join(f.files.Folder(cx600, ans.Update.Version), file.Name))
				if err != nil {
					t.Fatal(err)
				}
				want, err := deviceupdate.NewChunkList(bytes.NewReader(b), int64(len(b)))
				if err != nil {
					t.Fatal(err)
				}
				if file.ChunkList == nil || file.ChunkList.SHA256 != want.SHA256 || file.ChunkListName != file.Name+".chunks" {
					t.Errorf("%s: chunk list %+v named %q, want %s", file.Name, file.ChunkList, file.ChunkListName, want.SHA256)
				}
			}
		})
	}
}

// TestPollInterval: each phone polls at the setting, moved by up to a
// tenth either way, always by the same amount, and a fleet is spread
// over that range.
func TestPollInterval(t *testing.T) {
	tests := []struct {
		name    string
		setting string
		lo, hi  int
	}{
		{"default, a day", "", 77760, 95040},
		{"an hour", "3600", 3240, 3960},
		{"a week", "604800", 544320, 665280},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := goldenFixture(t)
			if tt.setting != "" {
				f.set(t, deviceupdate.ScopeGlobal, map[string]string{"PollIntervalSeconds": tt.setting})
			}
			seen := map[int]bool{}
			for i := range 200 {
				mac := "00-04-F2-00-" + string("0123456789ABCDEF"[i/16]) + string("0123456789ABCDEF"[i%16]) + "-00"
				var got [2]int
				for j := range got {
					ans, err := f.svc.Poll(context.Background(), request("CX600", mac, "", "4.0.7577.4366"), outside)
					if err != nil {
						t.Fatal(err)
					}
					got[j] = ans.PollInterval
				}
				if got[0] < tt.lo || got[0] > tt.hi || got[1] != got[0] {
					t.Fatalf("%s polls every %v s, want one value from %d to %d", mac, got, tt.lo, tt.hi)
				}
				seen[got[0]] = true
			}
			if len(seen) < 100 {
				t.Errorf("200 phones share %d intervals", len(seen))
			}
		})
	}
}

// TestAnswerFollowsTheStore: a change committed between two polls is in
// the second answer.
func TestAnswerFollowsTheStore(t *testing.T) {
	f := goldenFixture(t)
	poll := func() string {
		ans, err := f.svc.Poll(context.Background(), request("CX600", phoneMAC, "", "4.0.7577.4100"), outside)
		if err != nil {
			t.Fatal(err)
		}
		return offered(ans)
	}
	steps := []struct {
		name   string
		change func()
		want   string
	}{
		{"approved", func() {}, "4.0.7577.4366"},
		{"the pending version approved", func() { f.change(t, cx600, deviceupdate.RuleApprove) }, "4.0.7577.4400"},
		{"restored", func() { f.change(t, cx600, deviceupdate.RuleRestore) }, "4.0.7577.4366"},
		{"a test device added", func() {
			f.addTestDevice(t, deviceupdate.TestDevice{Name: "lab", MAC: phoneMAC, Scope: deviceupdate.ScopeGlobal})
			f.addUpdate(t, cx600, "4.0.7577.4500", map[string][]byte{"CPE.nbt": content(100, 6)})
		}, "4.0.7577.4500"},
		{"the rule removed", func() { f.change(t, cx600, deviceupdate.RuleRemove) }, ""},
	}
	for _, s := range steps {
		s.change()
		if got := poll(); got != s.want {
			t.Errorf("%s: offered %q, want %q", s.name, got, s.want)
		}
	}
}

// TestPollIsRecorded: every poll lands in the inventory with what it was
// offered.
func TestPollIsRecorded(t *testing.T) {
	f := goldenFixture(t)
	for _, running := range []string{"4.0.7577.4100", "4.0.7577.4366"} {
		if _, err := f.svc.Poll(context.Background(), request("CX600", phoneMAC, "", running), outside); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.Poll(context.Background(), request("CX600", labMAC, "", "4.0.7577.4100"), outside); err != nil {
		t.Fatal(err)
	}
	if err := f.rec.Flush(); err != nil {
		t.Fatal(err)
	}
	devices, err := f.db.Devices()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range devices {
		got[d.ID] = fmt.Sprintf("%s after %d polls", d.Offered, d.Polls)
	}
	want := map[string]string{labMAC: "4.0.7577.4366 after 1 polls", phoneMAC: "0.0.0.0 after 2 polls"}
	if len(got) != len(want) || got[labMAC] != want[labMAC] || got[phoneMAC] != want[phoneMAC] {
		t.Errorf("inventory %v, want %v", got, want)
	}
}

// TestChunkListFailureIsNotKept: with sharing on, a poll whose offer's
// chunk list cannot be read fails; once the file is back, polls are
// answered.
func TestChunkListFailureIsNotKept(t *testing.T) {
	f := goldenFixture(t)
	f.set(t, deviceupdate.ScopeGlobal, map[string]string{"PeerFirmwareSharing": "true"})
	image := filepath.Join(f.files.Folder(cx600, v("4.0.7577.4366")), "CPE.nbt")
	b, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(image); err != nil {
		t.Fatal(err)
	}
	req := request("CX600", phoneMAC, "", "4.0.7577.4100")
	if ans, err := f.svc.Poll(context.Background(), req, outside); err == nil {
		t.Fatalf("answered %+v without the image", ans)
	}
	if err := os.WriteFile(image, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if ans, err := f.svc.Poll(context.Background(), req, outside); err != nil || ans.Files[1].ChunkList == nil {
		t.Fatalf("after the image is back: %v, %v", ans, err)
	}
}

// TestOpenFile: only the images and the catalog of a stored update are
// downloaded, at the path the answer names, in its exact case; the
// chunk lists of the same files are served.
func TestOpenFile(t *testing.T) {
	f := goldenFixture(t)
	const dir = "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE/"
	tests := []struct {
		name string
		path string
		want []byte // nil: ENOTFOUND
	}{
		{"an image", dir + "CPE.nbt", content(3<<19, 1)},
		{"the catalog", dir + "CPE.cat", content(1234, byte(len("4.0.7577.4366")))},
		{"the description", dir + "CPE.xml", nil},
		{"a file of no update", dir + "Other.nbt", nil},
		{"another case", "ucphone/polycom/cx600/a/enu/4.0.7577.4366/cpe/CPE.nbt", nil},
		{"a version not stored", "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4100/CPE/CPE.nbt", nil},
		{"climbing out", dir + "../../../../../../../deviceupdate.db", nil},
		{"the store itself", "../deviceupdate.db", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := f.svc.OpenFile(context.Background(), tt.path)
			if tt.want == nil {
				if deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
					t.Errorf("OpenFile = %+v, %v; want ENOTFOUND", d, err)
				}
				if _, err := f.svc.ChunkList(context.Background(), tt.path); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
					t.Errorf("ChunkList = %v; want ENOTFOUND", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(d.Content)
			d.Content.Close()
			if err != nil || !bytes.Equal(got, tt.want) || d.File.Name != filepath.Base(tt.path) || d.File.Size != int64(len(tt.want)) || d.ModTime.IsZero() {
				t.Errorf("OpenFile: %d bytes, %v, %+v", len(got), err, d)
			}
			cl, err := f.svc.ChunkList(context.Background(), tt.path)
			want, _ := deviceupdate.NewChunkList(bytes.NewReader(tt.want), int64(len(tt.want)))
			if err != nil || cl.SHA256 != want.SHA256 {
				t.Errorf("ChunkList = %v, %v; want %s", cl, err, want.SHA256)
			}
		})
	}
	// A recorded file missing from the store is not found.
	if err := os.Remove(filepath.Join(f.files.Folder(cx600, v("4.0.7577.4366")), "CPE.cat")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.OpenFile(context.Background(), dir+"CPE.cat"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("a missing file: %v, want ENOTFOUND", err)
	}
}
