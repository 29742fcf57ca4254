package deviceupdate

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
