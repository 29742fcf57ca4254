package deviceupdate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"time"
)

// Rule is a device update rule (Lync semantics, SPEC §4): for the devices
// its key names, which version is approved for everyone, which one waits
// for approval (offered to test devices), and which one a restore returns
// to.
type Rule struct {
	ID string `json:"id"`
	RuleKey
	ApprovedVersion Version `json:"approvedVersion"`
	PendingVersion  Version `json:"pendingVersion"`
	RestoreVersion  Version `json:"restoreVersion"`
}

// RuleID returns the stable identifier of the rule for key. Keys match
// case-insensitively, as Lync's did, so the ID is derived from the
// lower-cased key.
func RuleID(k RuleKey) string {
	sum := sha256.Sum256([]byte(strings.ToLower(k.String())))
	return hex.EncodeToString(sum[:6])
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

// Import outcomes of one update.
const (
	// ImportAdded: new; it is now the rule's pending version.
	ImportAdded = "imported"
	// ImportRestaged: imported before with the same content, then reset,
	// restored away or its rule removed; it is the pending version again.
	ImportRestaged = "re-staged"
	// ImportUnchanged: it is already the rule's pending or approved
	// version; nothing changed.
	ImportUnchanged = "unchanged"
)

// ImportedUpdate reports what an import did with one update.
type ImportedUpdate struct {
	RuleID  string  `json:"ruleId"`
	Key     RuleKey `json:"key"`
	Version Version `json:"version"`
	Status  string  `json:"status"`
	// RuleBefore is the rule as it was, when the import changed a rule
	// that existed; RuleAfter is the rule after the import.
	RuleBefore *Rule `json:"ruleBefore,omitempty"`
	RuleAfter  *Rule `json:"ruleAfter,omitempty"`
}

// ImportStatus says what importing an update whose content is already
// stored does to its rule r (nil when the rule was removed): nothing when
// it is the pending or the approved version; otherwise (it was reset,
// restored away, or is only the restore version) it becomes the pending
// version again, re-staged, as a new import would make it.
func ImportStatus(r *Rule, v Version) string {
	if r != nil && (r.PendingVersion == v || r.ApprovedVersion == v) {
		return ImportUnchanged
	}
	return ImportRestaged
}

// ImportResult reports an accepted package.
type ImportResult struct {
	PackageSHA256 string           `json:"packageSha256"`
	Updates       []ImportedUpdate `json:"updates"`
}

// PackageService imports update packages (SPEC §3).
type PackageService interface {
	// Import reads a package of size bytes (-1 when unknown) from src,
	// verifies it, and makes each of its updates the pending version of
	// its rule, re-staging a version imported before that is neither
	// pending nor approved (ImportStatus). name is the package's file
	// name, actor who imports it. Errors: EINVALID (not a valid package),
	// EFORBIDDEN (a signature that does not verify or an untrusted
	// publisher), ECONFLICT (a version already imported with other
	// content), ETOOLARGE.
	Import(ctx context.Context, src io.Reader, size int64, name, actor string) (*ImportResult, error)
}

// ClearedUpdate is a stored version that files clear deleted.
type ClearedUpdate struct {
	Key     RuleKey `json:"key"`
	Version Version `json:"version"`
	Bytes   int64   `json:"bytes"`
}

// ClearResult reports what files clear freed.
type ClearResult struct {
	Removed []ClearedUpdate `json:"removed"`
	Bytes   int64           `json:"bytes"`
}

// FileService manages the stored update files.
type FileService interface {
	// ClearFiles deletes every stored version that no rule references as
	// approved, pending or restore version (Lync's Clear-CsDeviceUpdateFile).
	ClearFiles(ctx context.Context, actor string) (*ClearResult, error)
}
