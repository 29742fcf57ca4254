package console

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

// Bounds of the dashboard's reading of the inventory.
const (
	scanPage       = 1000
	maxOffRows     = 100 // devices listed as not on their approved version
	lowDiskPercent = 10
	certWarn       = 30 * 24 * time.Hour
)

type dashboardData struct {
	Chart    chartData
	Off      []offDevice
	OffCount int
	// OffModels links to each rule's devices not on its approved version.
	OffModels []offModel
	Pending   []deviceupdate.Rule
	Health    []healthLine
	Devices   int
	// PollsLastMinute is -1 without an inventory.
	PollsLastMinute int
}

// chartData is what console.js draws: a bar per model, stacked by
// version, with each model's approved version marked.
type chartData struct {
	Models   []string       `json:"models"`   // the bars' labels
	Keys     []string       `json:"keys"`     // per bar, its rule key, for the device list
	Approved []string       `json:"approved"` // per bar, "" when none
	Versions []chartVersion `json:"versions"`
}

type chartVersion struct {
	Version string `json:"version"`
	Counts  []int  `json:"counts"` // per model
}

// offModel links to every device of a rule not on its approved version.
type offModel struct {
	Label, Key, Approved string
	Count                int
}

type offDevice struct {
	ID, Model, Module string
	Running, Approved deviceupdate.Version
	LastSeen          time.Time
}

type healthLine struct {
	Name, Value string
	Bad         bool
}

func (c *Console) handleDashboard(ec echo.Context, s *deviceupdate.Session) error {
	ctx := ec.Request().Context()
	d := dashboardData{PollsLastMinute: -1}
	var rules []deviceupdate.Rule
	if c.cfg.Rules != nil {
		var err error
		if rules, err = c.cfg.Rules.Rules(ctx); err != nil {
			return c.fail(ec, s, err)
		}
		for _, r := range rules {
			if !r.PendingVersion.IsZero() {
				d.Pending = append(d.Pending, r)
			}
		}
	}
	if c.cfg.Devices != nil {
		if err := c.fleet(ctx, &d); err != nil {
			return c.fail(ec, s, err)
		}
	}
	d.Health = c.health(ctx, d.PollsLastMinute)
	return c.render(ec, http.StatusOK, "dashboard", page{Title: "Dashboard", Nav: "dashboard", Session: s, Data: d, Chart: true})
}

// fleet draws the chart from the fleet summary (counts kept as polls
// land, not a scan of the inventory) and lists the first devices not on
// their rule's approved version, a filtered page per version.
func (c *Console) fleet(ctx context.Context, d *dashboardData) error {
	sum, err := c.cfg.Devices.Summary(ctx)
	if err != nil {
		return err
	}
	d.Devices, d.OffCount, d.PollsLastMinute = sum.Devices, sum.NotOnApproved, sum.PollsLastMinute
	d.Chart = buildChart(sum)
	for _, m := range sum.Models {
		if m.NotOnApproved == 0 || m.ApprovedVersion.IsZero() {
			continue
		}
		d.OffModels = append(d.OffModels, offModel{Label: m.Model, Key: m.RuleKey.String(), Approved: m.ApprovedVersion.String(), Count: m.NotOnApproved})
		if len(d.Off) >= maxOffRows {
			continue
		}
		list, err := c.cfg.Devices.Devices(ctx, deviceupdate.DeviceFilter{Key: m.RuleKey, NotVersion: m.ApprovedVersion, Page: deviceupdate.Page{Limit: maxOffRows - len(d.Off)}})
		if err != nil {
			return err
		}
		for _, dev := range list.Devices {
			d.Off = append(d.Off, offDevice{ID: dev.ID, Model: dev.Model, Module: m.UpdateType, Running: moduleVersion(dev, m.UpdateType), Approved: m.ApprovedVersion, LastSeen: dev.LastSeen})
		}
	}
	return nil
}

// moduleVersion returns the version the device runs in the module of
// updateType.
func moduleVersion(d deviceupdate.Device, updateType string) deviceupdate.Version {
	for _, m := range d.Modules {
		if strings.EqualFold(m.UpdateType, updateType) || m.UpdateType == "" && strings.EqualFold(updateType, deviceupdate.DefaultUpdateType) {
			return m.Version
		}
	}
	return deviceupdate.Version{}
}

// buildChart makes a bar of each rule key the fleet runs, named by its
// model (with the rest of its key when two share a model), stacked by
// version.
func buildChart(sum deviceupdate.FleetSummary) chartData {
	ch := chartData{Models: []string{}, Keys: []string{}, Approved: []string{}, Versions: []chartVersion{}}
	perModel := map[string]int{}
	for _, m := range sum.Models {
		perModel[strings.ToLower(m.Model)]++
	}
	index := map[deviceupdate.Version]int{}
	for i, vc := range sum.Versions {
		index[vc.Version] = i
		ch.Versions = append(ch.Versions, chartVersion{Version: formatVersion(vc.Version), Counts: make([]int, len(sum.Models))})
	}
	// Oldest first, so the stacks grow toward the newest.
	slices.Reverse(ch.Versions)
	for i, m := range sum.Models {
		label := m.Model
		if perModel[strings.ToLower(m.Model)] > 1 {
			label += " " + m.Revision + "/" + m.Locale + "/" + m.UpdateType
		}
		ch.Models = append(ch.Models, label)
		ch.Keys = append(ch.Keys, m.RuleKey.String())
		a := ""
		if !m.ApprovedVersion.IsZero() {
			a = m.ApprovedVersion.String()
		}
		ch.Approved = append(ch.Approved, a)
		for _, vc := range m.Versions {
			if at, ok := index[vc.Version]; ok {
				ch.Versions[len(ch.Versions)-1-at].Counts[i] = vc.Devices
			}
		}
	}
	return ch
}

// health reads the panel's lines; a line that cannot be read says so.
func (c *Console) health(ctx context.Context, pollsLastMinute int) []healthLine {
	h := c.cfg.Health
	var out []healthLine
	if h.DataDir != "" {
		free, total, err := freeSpace(h.DataDir)
		switch {
		case err != nil:
			out = append(out, healthLine{Name: "Disk free", Value: "unknown: " + err.Error(), Bad: true})
		default:
			bad := total > 0 && free*100/total < lowDiskPercent
			out = append(out, healthLine{Name: "Disk free", Value: fmt.Sprintf("%s of %s", formatBytes(free), formatBytes(total)), Bad: bad})
		}
	}
	if h.CertExpiry != nil {
		t, err := h.CertExpiry()
		if err != nil {
			out = append(out, healthLine{Name: "Certificate", Value: "unreadable: " + err.Error(), Bad: true})
		} else {
			left := t.Sub(c.now())
			out = append(out, healthLine{Name: "Certificate expires", Value: fmt.Sprintf("%s (in %d days)", formatTime(t), int(left.Hours()/24)), Bad: left < certWarn})
		}
	}
	if c.cfg.Audit != nil {
		v, at := c.verified.get()
		switch {
		case v == nil && h.AuditBroken != nil && h.AuditBroken() != nil:
			out = append(out, healthLine{Name: "Audit trail", Value: "BROKEN when last read: " + h.AuditBroken().Error(), Bad: true})
		case v == nil && h.AuditBroken != nil:
			out = append(out, healthLine{Name: "Audit trail", Value: "intact when last read (at start or in a list); Verify on the Audit page checks it again"})
		case v == nil:
			out = append(out, healthLine{Name: "Audit trail", Value: "not verified since the start; use Verify on the Audit page"})
		case v.Intact:
			out = append(out, healthLine{Name: "Audit trail", Value: fmt.Sprintf("intact, %d entries (verified %s)", v.Entries, ago(c.now(), at))})
		default:
			out = append(out, healthLine{Name: "Audit trail", Value: fmt.Sprintf("BROKEN at line %d: %s (verified %s)", v.Line, v.Reason, ago(c.now(), at)), Bad: true})
		}
	}
	if h.LastImport != nil {
		t, err := h.LastImport(ctx)
		val := formatTime(t)
		if err != nil {
			val = "unknown: " + deviceupdate.ErrorMessage(err)
		} else if !t.IsZero() {
			val += " (" + ago(c.now(), t) + ")"
		} else {
			val = "none yet"
		}
		out = append(out, healthLine{Name: "Last import", Value: val, Bad: err != nil})
	}
	if pollsLastMinute >= 0 {
		out = append(out, healthLine{Name: "Polls in the last minute", Value: fmt.Sprint(pollsLastMinute)})
	}
	return out
}

// lastVerify is the outcome of the last audit verification.
type lastVerify struct {
	mu sync.Mutex
	v  *deviceupdate.AuditVerification
	at time.Time
}

func (l *lastVerify) set(v *deviceupdate.AuditVerification, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.v, l.at = v, at
}

func (l *lastVerify) get() (*deviceupdate.AuditVerification, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.v, l.at
}
