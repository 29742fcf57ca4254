package phone

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// FailMode is how a simulated phone fails the update it is offered, so
// that a staged rollout's health checks can be watched at work (SPEC §10).
type FailMode int

// Failure modes.
const (
	FailNone FailMode = iota
	// FailRevert installs the update, reports the new version at its next
	// poll, then falls back to the old one and reports that from then on
	// (it does not take an update again).
	FailRevert
	// FailStuck fetches and verifies the update but never switches: it
	// goes on reporting the old version, however often it is offered.
	FailStuck
	// FailSilent takes the update and never polls again: a bricked phone.
	FailSilent
)

// ParseFailMode reads revert, stuck or silent.
func ParseFailMode(s string) (FailMode, error) {
	switch strings.ToLower(s) {
	case "revert":
		return FailRevert, nil
	case "stuck":
		return FailStuck, nil
	case "silent":
		return FailSilent, nil
	}
	return FailNone, deviceupdate.Errorf(deviceupdate.EINVALID, "fail mode %q: want revert, stuck or silent", s)
}

// String returns revert, stuck, silent, or none.
func (m FailMode) String() string {
	switch m {
	case FailRevert:
		return "revert"
	case FailStuck:
		return "stuck"
	case FailSilent:
		return "silent"
	}
	return "none"
}

// ParseFailRate reads the share of phones that fail: a fraction from 0
// to 1 (0.2) or a percentage (20%).
func ParseFailRate(s string) (float64, error) {
	t := strings.TrimSpace(s)
	percent := strings.HasSuffix(t, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(t, "%")), 64)
	if percent {
		f /= 100
	}
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return 0, deviceupdate.Errorf(deviceupdate.EINVALID, "fail rate %q: want a fraction from 0 to 1 (0.2) or a percentage (20%%)", s)
	}
	return f, nil
}

// failingPhones says which of the phones with these identities fail:
// the round(rate × n) whose SHA-256 of the seed and the identity is
// lowest. The same flags pick the same phones in every run, the share is
// exact, and a rollout's own hash of the identities (another input)
// does not line up with it.
func failingPhones(ids []string, rate float64, seed uint64) []bool {
	type ranked struct {
		key uint64
		i   int
	}
	rs := make([]ranked, len(ids))
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], seed)
	for i, id := range ids {
		sum := sha256.Sum256(append(append(buf[:], 0), id...))
		rs[i] = ranked{binary.BigEndian.Uint64(sum[:8]), i}
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		if a.key != b.key {
			if a.key < b.key {
				return -1
			}
			return 1
		}
		return a.i - b.i
	})
	out := make([]bool, len(ids))
	for _, r := range rs[:int(math.Round(rate*float64(len(ids))))] {
		out[r.i] = true
	}
	return out
}

// SimVersion is where a simulated fleet ended for one version.
type SimVersion struct {
	Version string `json:"version"`
	Phones  int    `json:"phones"`  // phones running it at the end (silent ones aside)
	Offered int    `json:"offered"` // phones offered it at least once: the exposure
	// FirstOfferedSeconds is when, after the boot, the first phone was
	// offered it; LastFirstOfferedSeconds when the last of those that
	// were was offered it for the first time. Absent when none was.
	FirstOfferedSeconds     *float64 `json:"firstOfferedSeconds,omitempty"`
	LastFirstOfferedSeconds *float64 `json:"lastFirstOfferedSeconds,omitempty"`
}

// simPhone is one phone of a simulation, with what it did.
type simPhone struct {
	a     *Agent
	index int
	fail  FailMode
	o     *SimOptions

	polls                  int // polls the server answered
	updated                bool
	serverBytes, peerBytes int64
	offered                map[string]time.Duration // by version: since the boot, when first offered
	firstOffer             string
	fileBytes              int64
	errs                   map[string]int

	failed    bool        // its simulated failure happened
	reverting bool        // FailRevert: reports the new version once more, then goes back to previous
	previous  ModuleState // what it ran before the update it fails
	silent    bool

	last    Result // the last poll's result and error, for a boot-only run
	lastErr error
}

func newSimPhone(a *Agent, index int, fail FailMode, o *SimOptions) *simPhone {
	if fail == FailStuck {
		a.stuck = true
	}
	return &simPhone{a: a, index: index, fail: fail, o: o, offered: map[string]time.Duration{}, errs: map[string]int{}}
}

// run polls once at boot when o.Duration is zero; else from a random
// point of the first o.PollEvery (phones do not boot all at once) every
// o.PollEvery ±10% until o.Duration after start, unless it falls silent.
// A poll under way at the end is finished.
func (p *simPhone) run(ctx context.Context, start time.Time) {
	if p.o.Duration <= 0 {
		p.poll(ctx, "boot", start)
		return
	}
	rng := rand.New(rand.NewPCG(p.o.Seed, uint64(p.index)))
	end := start.Add(p.o.Duration)
	every := int64(p.o.PollEvery)
	next := start.Add(time.Duration(rng.Int64N(every)))
	for trigger := "boot"; ; trigger = "periodic" {
		if !next.Before(end) || sleep(ctx, time.Until(next)) != nil {
			return
		}
		p.poll(ctx, trigger, start)
		if p.silent || ctx.Err() != nil {
			return
		}
		next = time.Now().Add(time.Duration(every*9/10 + rng.Int64N(every/5+1)))
	}
}

// poll polls once as the phone's failure mode says and records what
// happened.
func (p *simPhone) poll(ctx context.Context, trigger string, start time.Time) {
	if p.failed && p.fail == FailRevert {
		p.pollOnly(ctx, trigger, start)
		return
	}
	before, _ := p.a.State().Module(deviceupdate.DefaultUpdateType)
	at := time.Since(start) // an offer counts from the poll, not from the end of the update
	res, err := p.a.Poll(ctx, trigger)
	p.last, p.lastErr = res, err
	if res.answered {
		p.polls++
	}
	p.serverBytes += res.ServerBytes
	p.peerBytes += res.PeerBytes
	offered := res.Offered != "" && res.Offered != res.Previous
	if offered {
		p.offer(res.Offered, res.FileBytes, at)
	}
	if res.Updated {
		p.updated = true
	}
	switch {
	case p.fail == FailNone || !offered || p.failed:
	case p.fail == FailRevert && res.Updated:
		p.failed, p.reverting, p.previous = true, true, before
		p.crashDump(ctx)
	case p.fail == FailStuck && errors.Is(err, errStuck):
		p.failed = true
		p.crashDump(ctx)
	case p.fail == FailSilent:
		p.failed, p.silent = true, true
	}
	if err != nil && !errors.Is(err, errStuck) && ctx.Err() == nil {
		p.errs[err.Error()]++
	}
}

// pollOnly polls without acting on the answer: a reverted phone, which
// does not take an update again. The first such poll reports the version
// it failed; after it the phone goes back to the one it ran before.
func (p *simPhone) pollOnly(ctx context.Context, trigger string, start time.Time) {
	running := p.a.Running()
	at := time.Since(start)
	ans, err := p.a.postPoll(ctx, trigger)
	if err != nil {
		if ctx.Err() == nil {
			p.errs[err.Error()]++
		}
		return
	}
	p.polls++
	if ans.NumOfFiles > 0 && ans.Version != running {
		p.offer(ans.Version, 0, at)
	}
	if p.reverting {
		if err := p.a.setModule(p.previous); err != nil {
			p.errs[err.Error()]++
			return
		}
		p.reverting = false
		p.a.log.Info("simulated revert", zap.String("from", running), zap.String("to", p.previous.Version))
	}
}

// offer records that the poll made at (since the boot) was offered version.
func (p *simPhone) offer(version string, fileBytes int64, at time.Duration) {
	if _, ok := p.offered[version]; !ok {
		p.offered[version] = at
	}
	if p.firstOffer == "" {
		p.firstOffer, p.fileBytes = version, fileBytes
	}
}

// crashDump uploads a Watson minidump, as a failing phone does after
// updating, when o.CrashDump asks for it.
func (p *simPhone) crashDump(ctx context.Context) {
	if !p.o.CrashDump {
		return
	}
	// A minidump's header: the MDMP signature and version 0xA793; the
	// server stores the file, it does not read it.
	dump := make([]byte, 32)
	copy(dump, "MDMP\x93\xa7")
	name := "crash-" + p.a.cfg.Now().UTC().Format("20060102-150405") + ".dmp"
	if err := p.a.UploadLog(ctx, "Watson", name, dump); err != nil && ctx.Err() == nil {
		p.errs[fmt.Sprintf("crash dump: %v", err)]++
	}
}

// tally adds the phones' records up into res.
func tally(res *SimResult, phones []*simPhone, boot bool) {
	versions := map[string]*SimVersion{}
	get := func(v string) *SimVersion {
		if versions[v] == nil {
			versions[v] = &SimVersion{Version: v}
		}
		return versions[v]
	}
	first, last := map[string]time.Duration{}, map[string]time.Duration{}
	errs := map[string]int{}
	for _, p := range phones {
		res.Polls += p.polls
		res.ServerBytes += p.serverBytes
		res.PeerBytes += p.peerBytes
		if res.Offered == "" && p.firstOffer != "" {
			res.Offered, res.FileBytes = p.firstOffer, p.fileBytes
		}
		if p.updated {
			res.Updated++
		}
		if p.fail != FailNone {
			res.Failing++
		}
		if p.failed {
			res.Failed++
		}
		if p.silent {
			res.Silent++
		} else {
			get(p.a.Running()).Phones++
		}
		for v, at := range p.offered {
			get(v).Offered++
			if f, ok := first[v]; !ok || at < f {
				first[v] = at
			}
			last[v] = max(last[v], at)
		}
		for msg, n := range p.errs {
			errs[msg] += n
		}
		if boot && !p.updated && p.lastErr == nil { // a boot-only run wants every phone updated
			if p.last.Offered == "" {
				errs["nothing was offered"]++
			} else {
				errs["offered the version it runs"]++
			}
		}
	}
	for msg, n := range errs {
		res.Errors = append(res.Errors, fmt.Sprintf("%d phones: %s", n, msg))
	}
	slices.Sort(res.Errors)
	for _, v := range versions {
		if at, ok := first[v.Version]; ok {
			f, l := at.Seconds(), last[v.Version].Seconds()
			v.FirstOfferedSeconds, v.LastFirstOfferedSeconds = &f, &l
		}
		res.Versions = append(res.Versions, *v)
	}
	slices.SortFunc(res.Versions, func(a, b SimVersion) int { return compareVersions(a.Version, b.Version) })
}

// compareVersions orders versions as the service does, and strings that
// are not versions (a server's answer is hostile) after them by text.
func compareVersions(a, b string) int {
	va, erra := deviceupdate.ParseVersion(a)
	vb, errb := deviceupdate.ParseVersion(b)
	switch {
	case erra == nil && errb == nil:
		return va.Compare(vb)
	case erra == nil:
		return -1
	case errb == nil:
		return 1
	}
	return strings.Compare(a, b)
}
