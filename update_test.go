package deviceupdate_test

import (
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestValidIdentifier(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"UCPhone", true},
		{"CX600", true},
		{"4.0_beta-1", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{".", false},
		{"..", false},
		{"...", true},
		{"a/b", false},
		{`a\b`, false},
		{"a b", false},
		{"café", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		if got := deviceupdate.ValidIdentifier(tt.in); got != tt.want {
			t.Errorf("ValidIdentifier(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestUpdateValidate(t *testing.T) {
	good := func() deviceupdate.Update {
		return deviceupdate.Update{
			RuleKey: deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"},
			Version: deviceupdate.MustParseVersion("4.0.7577.4366"),
			Files:   []string{"CPE.nbt", "CPE2.nbt"},
		}
	}
	tests := []struct {
		name    string
		change  func(*deviceupdate.Update)
		wantErr string
	}{
		{"valid", func(*deviceupdate.Update) {}, ""},
		{"bad model", func(u *deviceupdate.Update) { u.Model = "CX 600" }, `Model "CX 600"`},
		{"traversal locale", func(u *deviceupdate.Update) { u.Locale = ".." }, `Locale ".."`},
		{"no version", func(u *deviceupdate.Update) { u.Version = deviceupdate.Version{} }, "Version is missing"},
		{"no files", func(u *deviceupdate.Update) { u.Files = nil }, "names no <File>"},
		{"path in file name", func(u *deviceupdate.Update) { u.Files = []string{"../CPE.nbt"} }, `file name "../CPE.nbt"`},
		{"duplicate file", func(u *deviceupdate.Update) { u.Files = []string{"CPE.nbt", "cpe.NBT"} }, "named twice"},
		{"long file name", func(u *deviceupdate.Update) { u.Files = []string{strings.Repeat("a", 129)} }, "file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := good()
			tt.change(&u)
			err := u.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
				t.Fatalf("Validate = %v, want EINVALID containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestUpdateFolder: an update's folder is the same path in a package's
// cabinet, the update store and the download URLs.
func TestUpdateFolder(t *testing.T) {
	u := deviceupdate.Update{
		RuleKey: deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"},
		Version: deviceupdate.MustParseVersion("4.0.7577.4366"),
	}
	if got, want := u.Folder(), "UCPhone/Polycom/CX600/A/ENU/4.0.7577.4366/CPE"; got != want {
		t.Errorf("Folder() = %q, want %q", got, want)
	}
}
