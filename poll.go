package deviceupdate

import (
	"context"
	"hash/fnv"
	"time"
)

// Module is one updatable component a phone reports in a poll: its update
// type (CPE when the phone names none), file, running version and time.
type Module struct {
	UpdateType string  `json:"updateType"`
	Filename   string  `json:"filename"`
	Version    Version `json:"version"`
	Timestamp  string  `json:"timestamp,omitempty"`
}

// DefaultUpdateType is the update type of a module that names none.
const DefaultUpdateType = "CPE"

// PollRequest is what a phone sends when it asks for updates (SPEC §5).
type PollRequest struct {
	DeviceType string   `json:"deviceType"`
	MAC        string   `json:"macAddress,omitempty"` // normalised, as test devices store it
	Serial     string   `json:"serialNumber,omitempty"`
	Brand      string   `json:"brand"`
	Model      string   `json:"model"`
	Revision   string   `json:"revision"`
	Locale     string   `json:"locale"`
	UserID     string   `json:"userId,omitempty"`
	Trigger    string   `json:"trigger,omitempty"` // boot, signin or periodic
	Modules    []Module `json:"modules"`
}

// ID returns the phone's device ID: its MAC, else its serial number.
func (p PollRequest) ID() string {
	if p.MAC != "" {
		return p.MAC
	}
	return p.Serial
}

// RuleKey returns the key of the rule that governs one of the phone's
// modules.
func (p PollRequest) RuleKey(m Module) RuleKey {
	return RuleKey{DeviceType: p.DeviceType, Brand: p.Brand, Model: p.Model, Revision: p.Revision, Locale: p.Locale, UpdateType: m.UpdateType}
}

// OfferReason says why a module is offered a version, or nothing.
type OfferReason string

// The reasons of Decide.
const (
	OfferNoRule    OfferReason = "no rule"    // no rule governs the module
	OfferNoVersion OfferReason = "no version" // the rule has no version for the device
	OfferCurrent   OfferReason = "current"    // the device runs the version it should
	OfferPending   OfferReason = "pending"    // a test device gets the pending version
	OfferApproved  OfferReason = "approved"   // the approved version, newer than the running one
	OfferRollback  OfferReason = "rollback"   // a version older than the running one (a restore)
	OfferRollout   OfferReason = "rollout"    // a staged rollout's version, to a device in its wave
)

// OfferInput is what the offer decision reads for one module of a
// polling device.
type OfferInput struct {
	Rule       *Rule   // the rule that governs the module; nil when none does
	Device     string  // the device's ID (PollRequest.ID), by which staged rollouts will place it
	Running    Version // the version the module runs
	TestDevice bool    // a test device matches the device (TestDevice.Matches)

	// Rollout is the rule's active staged rollout, nil when none is. The
	// rest serve it: whether it offered its version to the device before
	// (such a device keeps it, in or out of the window), the time and the
	// site's time zone (nil: the time's own) for the window, and how many
	// devices it newly offered its version to this hour.
	Rollout        *Rollout
	RolloutOffered bool
	Now            time.Time
	Location       *time.Location
	OffersThisHour int
}

// rolloutOffers reports whether the input's rollout offers its version to
// the device: one in the current wave that was offered it before or runs
// it already, or, while the rollout runs, within its window and under its
// hourly cap of new offers.
func (in *OfferInput) rolloutOffers() bool {
	r := in.Rollout
	if !r.Active() || !r.Member(in.Device) {
		return false
	}
	if in.RolloutOffered || in.Running == r.Version {
		return true
	}
	return r.State == RolloutRunning && r.Window.Open(in.Now, in.Location) &&
		(r.MaxPerHour == 0 || in.OffersThisHour < r.MaxPerHour)
}

// Offer is the decision for one module: the version to offer, zero for
// nothing, and why.
type Offer struct {
	Version Version
	Reason  OfferReason
}

// Offered reports whether the decision offers a version.
func (o Offer) Offered() bool { return !o.Version.IsZero() }

// Decide is the offer decision for one module (SPEC §5): a test device
// gets the rule's pending version when there is one; a device a staged
// rollout reaches, its version (SPEC §10); every other device the
// approved version (during a rollout, the previous one). The answer offers that version when it differs
// from the running one, older too (a rollback). No rule, no version to
// offer, or the same version: nothing is offered. It reads nothing but
// its input.
func Decide(in OfferInput) Offer {
	if in.Rule == nil {
		return Offer{Reason: OfferNoRule}
	}
	target, reason := in.Rule.ApprovedVersion, OfferApproved
	if in.TestDevice && !in.Rule.PendingVersion.IsZero() {
		target, reason = in.Rule.PendingVersion, OfferPending
	} else if in.Rollout != nil && in.rolloutOffers() {
		target, reason = in.Rollout.Version, OfferRollout
	}
	switch c := target.Compare(in.Running); {
	case target.IsZero():
		return Offer{Reason: OfferNoVersion}
	case c == 0:
		return Offer{Reason: OfferCurrent}
	case c < 0:
		reason = OfferRollback
	}
	return Offer{Version: target, Reason: reason}
}

// PollAnswer is the service's answer to a poll, whole: what to offer, if
// anything, with everything the phone is told of it, and how the phone
// should behave until its next poll. Rendering it takes nothing else but
// the request's host and the listeners' ports. Update and Files are
// shared between answers: read them, never change them.
type PollAnswer struct {
	// Update is the offered update, nil when nothing is offered.
	Update *StoredUpdate
	// Path is the offered update's folder below the download roots:
	// DeviceType/Brand/Model/Revision/Locale/Version/UpdateType.
	Path string
	// Files are what the phone downloads from Path, in the answer's
	// order (OfferFiles), with their chunk lists when PeerSharing.
	Files        []OfferedFile
	PollInterval int // seconds
	PeerSharing  bool
	// InternalHost and ExternalHost are the host[:port] of the download
	// URLs (settings InternalHostName and ExternalHostName for the phone's
	// site); empty means the host the phone asked.
	InternalHost, ExternalHost string
	Site                       string // the phone's site, "" when no subnet holds it
}

// OfferedFile is one file of an offer as the answer names it.
type OfferedFile struct {
	UpdateFile
	// SignatureFile names the catalog that lists the file's hash; empty
	// for the catalog itself.
	SignatureFile string
	// ChunkList is the file's chunk list, served as ChunkListName beside
	// it, when the phone shares files with its peers (SPEC §9); else nil.
	ChunkList     *ChunkList
	ChunkListName string
}

// OfferFiles lists the files of an offer of u, in the answer's order:
// the images, each vouched for by the catalog, then the catalog. It
// leaves their chunk lists out.
func OfferFiles(u *StoredUpdate) []OfferedFile {
	files := u.PhoneFiles()
	out := make([]OfferedFile, len(files))
	for i, f := range files {
		out[i] = OfferedFile{UpdateFile: f}
		if f.Name != u.Catalog.Name {
			out[i].SignatureFile = u.Catalog.Name
		}
	}
	return out
}

// WithChunkList returns f naming cl as its chunk list.
func (f OfferedFile) WithChunkList(cl *ChunkList) OfferedFile {
	f.ChunkList, f.ChunkListName = cl, f.Name+ChunkListSuffix
	return f
}

// PollService answers phones.
type PollService interface {
	// Poll answers a phone and records the poll in the inventory and the
	// request log; remote is the phone's address.
	Poll(ctx context.Context, req PollRequest, remote string) (*PollAnswer, error)
	// OpenFile opens the file at path
	// DeviceType/Brand/Model/Revision/Locale/Version/UpdateType/Name, an
	// image or the catalog of a stored update, for a phone to download;
	// the caller closes its Content. ENOTFOUND for any other path.
	OpenFile(ctx context.Context, path string) (*Download, error)
	// ChunkList returns the chunk list of the file OpenFile opens at
	// path, computed once per file content. ENOTFOUND for any other path.
	ChunkList(ctx context.Context, path string) (*ChunkList, error)
}

// JitteredInterval spreads a phone's periodic polls: base seconds, moved
// by up to a tenth either way by the FNV-1a hash of the phone's
// identifier, so a phone's interval is stable and a fleet's is spread.
// The hash must stay FNV-1a: another would move every phone's interval.
func JitteredInterval(base int, identifier string) int {
	if base < 10 {
		return base
	}
	h := fnv.New32a()
	h.Write([]byte(identifier)) // the conversion neither copies nor allocates: the bytes are only read
	span := base / 5
	return base - base/10 + int(h.Sum32()%uint32(span+1))
}
