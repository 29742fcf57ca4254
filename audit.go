package deviceupdate

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// AuditEntry is one admin action in the audit trail.
type AuditEntry struct {
	Seq    uint64          `json:"seq"`
	Time   time.Time       `json:"time"`
	Actor  string          `json:"actor"`  // who: the credential and the remote address
	Action string          `json:"action"` // what: import, rule.approve, ...
	Target string          `json:"target"` // on what: a file, a rule ID
	Result string          `json:"result"` // "ok", or why the action was refused
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	Prev   string          `json:"prev"` // hash of the previous entry ("" for the first)
	Hash   string          `json:"hash"` // SHA-256 of this entry with Hash empty
}

// AuditFilter selects audit entries; zero fields select everything.
type AuditFilter struct {
	Since, Until time.Time
	Action       string // exact, or a prefix ending in "." such as "rule."
	Target       string
	Page         // the entries after the cursor, by sequence number
}

// Match reports whether e passes the filter.
func (f AuditFilter) Match(e AuditEntry) bool {
	switch {
	case !f.Since.IsZero() && e.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && e.Time.After(f.Until):
		return false
	case f.Target != "" && e.Target != f.Target:
		return false
	case f.Action != "" && e.Action != f.Action && !(f.Action[len(f.Action)-1] == '.' && len(e.Action) > len(f.Action) && e.Action[:len(f.Action)] == f.Action):
		return false
	}
	return true
}

// AuditRecord is an entry as read back from the trail.
type AuditRecord struct {
	AuditEntry
	// Unverified marks an entry after the chain's break: it reads as an
	// entry, but the chain no longer vouches for it.
	Unverified bool `json:"unverified,omitempty"`
}

// AuditBreak is where the audit trail's hash chain breaks.
type AuditBreak struct {
	Line   int    `json:"line"`          // the first bad line
	Seq    uint64 `json:"seq,omitempty"` // its entry's sequence number, or the one expected there
	Reason string `json:"reason"`        // what is wrong with it
}

// AuditList is what the trail holds that matches a filter, oldest first.
type AuditList struct {
	Entries []AuditRecord `json:"entries"`
	// Broken is where the chain breaks, nil while it is intact. The
	// entries before it are verified; those after it are Unverified.
	Broken *AuditBreak `json:"broken,omitempty"`
	// Next is the cursor of the next page, "" at the end.
	Next string `json:"next,omitempty"`
}

// AuditCursor is the cursor that follows the entry seq.
func AuditCursor(seq uint64) string { return EncodeCursor(strconv.FormatUint(seq, 10)) }

// ParseAuditCursor returns the sequence number an AuditCursor holds; ""
// is 0, before the first entry. Errors: EINVALID.
func ParseAuditCursor(c string) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	pos, err := DecodeCursor(c)
	if err != nil {
		return 0, err
	}
	seq, err := strconv.ParseUint(pos, 10, 64)
	if err != nil {
		return 0, badCursor(c)
	}
	return seq, nil
}

// AuditVerification is the outcome of checking the audit trail's chain.
type AuditVerification struct {
	Intact  bool   `json:"intact"`
	Entries int    `json:"entries"`          // entries checked and found intact
	Line    int    `json:"line,omitempty"`   // the first bad line, when not intact
	Seq     uint64 `json:"seq,omitempty"`    // its entry's sequence number
	Reason  string `json:"reason,omitempty"` // what is wrong with it
}

// AuditService reads the admin audit trail.
type AuditService interface {
	// AuditEntries returns the entries that match f, oldest first (in
	// the file's order, which is by sequence number while the chain
	// holds), with the cursor of the next page when more follow. A
	// broken trail is listed too: the entries before the break, where it
	// breaks, and the entries after it that can still be read, unverified.
	AuditEntries(ctx context.Context, f AuditFilter) (*AuditList, error)
	// VerifyAudit checks every entry's hash and its link to the one before.
	VerifyAudit(ctx context.Context) (*AuditVerification, error)
}
