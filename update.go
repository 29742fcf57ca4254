package deviceupdate

import (
	"io"
	"strings"
	"time"
)

// MaxIdentifierLen is the longest identifier (device type, brand, model,
// revision, locale, update type) the service accepts.
const MaxIdentifierLen = 64

// ValidIdentifier reports whether s may name a device type, brand, model,
// revision, locale or update type: 1 to 64 letters, digits, '-', '_' and
// '.', and not "." or "..", since identifiers become folder names in the
// update store.
func ValidIdentifier(s string) bool { return validName(s, MaxIdentifierLen) }

// MaxFileNameLen is the longest update file name the service accepts.
const MaxFileNameLen = 128

// ValidFileName reports whether s is a safe base name for an update file:
// the characters of an identifier (so no separators, and not "." or ".."),
// 1 to 128 of them.
func ValidFileName(s string) bool { return validName(s, MaxFileNameLen) }

func validName(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// RuleKey names a device update rule (Lync): which updates of which kind
// apply to which devices.
type RuleKey struct {
	DeviceType string `json:"deviceType"`
	Brand      string `json:"brand"`
	Model      string `json:"model"`
	Revision   string `json:"revision"`
	Locale     string `json:"locale"`
	UpdateType string `json:"updateType"`
}

// fields returns the key's parts with their names, in path order.
func (k RuleKey) fields() [6][2]string {
	return [6][2]string{
		{"DeviceType", k.DeviceType}, {"Brand", k.Brand}, {"Model", k.Model},
		{"Revision", k.Revision}, {"Locale", k.Locale}, {"UpdateType", k.UpdateType},
	}
}

// Validate returns an EINVALID error naming the first bad part.
func (k RuleKey) Validate() error {
	for _, f := range k.fields() {
		if !ValidIdentifier(f[1]) {
			return Errorf(EINVALID, "%s %q: want 1-%d letters, digits, '-', '_' or '.'", f[0], truncateForMessage(f[1]), MaxIdentifierLen)
		}
	}
	return nil
}

// String returns the key as DeviceType/Brand/Model/Revision/Locale/UpdateType,
// the form ParseRuleKey reads.
func (k RuleKey) String() string {
	f := k.fields()
	parts := make([]string, len(f))
	for i := range f {
		parts[i] = f[i][1]
	}
	return strings.Join(parts, "/")
}

// ParseRuleKey reads a key such as UCPhone/Polycom/CX600/A/ENU/CPE.
func ParseRuleKey(s string) (RuleKey, error) {
	p := strings.Split(s, "/")
	if len(p) != 6 {
		return RuleKey{}, Errorf(EINVALID, "rule key %q: want DeviceType/Brand/Model/Revision/Locale/UpdateType, such as UCPhone/Polycom/CX600/A/ENU/CPE", truncateForMessage(s))
	}
	k := RuleKey{DeviceType: p[0], Brand: p[1], Model: p[2], Revision: p[3], Locale: p[4], UpdateType: p[5]}
	return k, k.Validate()
}

// Update is one update as its description (<base>.xml) declares it: the
// rule it belongs to, its version and its image files.
type Update struct {
	RuleKey
	Version Version  `json:"version"`
	Files   []string `json:"files"`
}

// MaxUpdateFiles bounds the images one update may name.
const MaxUpdateFiles = 256

// Validate checks the key, that the version is set, and that the files
// are distinct safe base names.
func (u Update) Validate() error {
	if err := u.RuleKey.Validate(); err != nil {
		return err
	}
	if u.Version.IsZero() {
		return Errorf(EINVALID, "Version is missing or 0.0.0.0")
	}
	if len(u.Files) == 0 {
		return Errorf(EINVALID, "the update names no <File>")
	}
	if len(u.Files) > MaxUpdateFiles {
		return Errorf(EINVALID, "the update names %d files, more than %d", len(u.Files), MaxUpdateFiles)
	}
	seen := map[string]bool{}
	for _, f := range u.Files {
		if !ValidFileName(f) {
			return Errorf(EINVALID, "file name %q: want a plain name of letters, digits, '-', '_' and '.', such as CPE.nbt", truncateForMessage(f))
		}
		if seen[strings.ToLower(f)] {
			return Errorf(EINVALID, "file %q is named twice", f)
		}
		seen[strings.ToLower(f)] = true
	}
	return nil
}

// PhoneFiles returns the files of the update a phone downloads: its
// images, then its catalog. The description stays on the server.
func (u *StoredUpdate) PhoneFiles() []UpdateFile {
	return append(append(make([]UpdateFile, 0, len(u.Images)+1), u.Images...), u.Catalog)
}

// Download is a stored update file opened for a phone to download.
type Download struct {
	File    UpdateFile // as recorded: its name, size and SHA-256
	ModTime time.Time
	Content io.ReadSeekCloser
}
