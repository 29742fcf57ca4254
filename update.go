package deviceupdate

import (
	"io"
	"strings"
	"time"
)

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

// Folder returns the update's folder, relative and with slashes:
// DeviceType/Brand/Model/Revision/Locale/Version/UpdateType. It is the
// same in a package's cabinet, in the update store and in the download
// URLs, so that a package unpacks into the store as it is.
func (u Update) Folder() string {
	return strings.Join([]string{u.DeviceType, u.Brand, u.Model, u.Revision, u.Locale, u.Version.String(), u.UpdateType}, "/")
}

// UpdateFile is one stored file of an update.
type UpdateFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// StoredUpdate is an imported update: its files in the update store, who
// signed it and when it arrived.
type StoredUpdate struct {
	RuleKey
	Version       Version      `json:"version"`
	Images        []UpdateFile `json:"images"`
	Catalog       UpdateFile   `json:"catalog"`
	Description   UpdateFile   `json:"description"`
	Signer        string       `json:"signer"`
	CabinetSigner string       `json:"cabinetSigner,omitempty"`
	PackageSHA256 string       `json:"packageSha256"`
	ImportedAt    time.Time    `json:"importedAt"`
}

// Files returns every file of the update: its images, its catalog and its
// description.
func (u *StoredUpdate) Files() []UpdateFile {
	return append(append(make([]UpdateFile, 0, len(u.Images)+2), u.Images...), u.Catalog, u.Description)
}

// PhoneFiles returns the files of the update a phone downloads: its
// images, then its catalog. The description stays on the server.
func (u *StoredUpdate) PhoneFiles() []UpdateFile {
	return append(append(make([]UpdateFile, 0, len(u.Images)+1), u.Images...), u.Catalog)
}

// SameContent reports whether u and o hold the same files with the same
// bytes: o may be imported again (see ImportStatus), while another o
// claiming the same version is refused.
func (u *StoredUpdate) SameContent(o *StoredUpdate) bool {
	if len(u.Images) != len(o.Images) || u.Catalog != o.Catalog || u.Description != o.Description {
		return false
	}
	for i := range u.Images {
		if u.Images[i] != o.Images[i] {
			return false
		}
	}
	return true
}

// Download is a stored update file opened for a phone to download.
type Download struct {
	File    UpdateFile // as recorded: its name, size and SHA-256
	ModTime time.Time
	Content io.ReadSeekCloser
}

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
