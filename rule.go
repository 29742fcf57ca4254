package deviceupdate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
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

// Rule lifecycle (SPEC §4, Lync semantics). Each method returns the rule
// after the action, or an ECONFLICT error when the rule's state does not
// allow it; the receiver is not changed.

// Approve makes the pending version the approved one; the approved version
// before it becomes the restore version, and nothing is pending afterwards.
func (r Rule) Approve() (Rule, error) {
	if r.PendingVersion.IsZero() {
		return r, Errorf(ECONFLICT, "rule %s (%s) has no pending version to approve; import a package first", r.ID, r.RuleKey)
	}
	if !r.ApprovedVersion.IsZero() {
		r.RestoreVersion = r.ApprovedVersion
	}
	r.ApprovedVersion, r.PendingVersion = r.PendingVersion, Version{}
	return r, nil
}

// Reset drops the pending version: test devices go back to the approved one.
func (r Rule) Reset() (Rule, error) {
	if r.PendingVersion.IsZero() {
		return r, Errorf(ECONFLICT, "rule %s (%s) has no pending version to reset", r.ID, r.RuleKey)
	}
	r.PendingVersion = Version{}
	return r, nil
}

// Restore returns the approved version to the restore version; with no
// restore version the rule is left with no approved version, and devices
// are offered nothing. The restore version is used up.
func (r Rule) Restore() (Rule, error) {
	if r.RestoreVersion.IsZero() && r.ApprovedVersion.IsZero() {
		return r, Errorf(ECONFLICT, "rule %s (%s) has neither a restore nor an approved version; there is nothing to restore", r.ID, r.RuleKey)
	}
	r.ApprovedVersion, r.RestoreVersion = r.RestoreVersion, Version{}
	return r, nil
}

// RuleAction names a lifecycle action.
type RuleAction string

// The lifecycle actions.
const (
	RuleApprove RuleAction = "approve"
	RuleReset   RuleAction = "reset"
	RuleRestore RuleAction = "restore"
	RuleRemove  RuleAction = "remove"
)

// Apply performs action on r. Remove is the store's to do; here it only
// checks that the action is known.
func (r Rule) Apply(action RuleAction) (Rule, error) {
	switch action {
	case RuleApprove:
		return r.Approve()
	case RuleReset:
		return r.Reset()
	case RuleRestore:
		return r.Restore()
	case RuleRemove:
		return r, nil
	default:
		return r, Errorf(EINVALID, "unknown rule action %q; want approve, reset, restore or remove", action)
	}
}

// RuleService manages device update rules; every change is audited.
type RuleService interface {
	// Rules returns every rule, ordered by key.
	Rules(ctx context.Context) ([]Rule, error)
	// ChangeRule performs action on the rule with the given ID and returns
	// it before and after (after is nil for a removal). With expect set,
	// the rule must still have the versions the caller read. Errors:
	// ENOTFOUND, ECONFLICT (the state does not allow it, or it changed).
	ChangeRule(ctx context.Context, id string, action RuleAction, expect *Rule, actor string) (Rule, *Rule, error)
}
