package deviceupdate

import (
	"context"
	"io"
)

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
