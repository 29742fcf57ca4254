package console

import (
	"context"
	"fmt"
	"net/http"
	"sort"
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
	Chart     chartData
	Off       []offDevice
	OffCount  int
	Pending   []deviceupdate.Rule
	Health    []healthLine
	Devices   int
	Truncated bool
}

// chartData is what console.js draws: a bar per model, stacked by
// version, with each model's approved version marked.
type chartData struct {
	Models   []string       `json:"models"`
	Approved []string       `json:"approved"` // per model, "" when none
	Versions []chartVersion `json:"versions"`
}

type chartVersion struct {
	Version string `json:"version"`
	Counts  []int  `json:"counts"` // per model
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
	var d dashboardData
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
		if err := c.fleet(ctx, rules, &d); err != nil {
			return c.fail(ec, s, err)
		}
	}
	d.Health = c.health(ctx)
	return c.render(ec, http.StatusOK, "dashboard", page{Title: "Dashboard", Nav: "dashboard", Session: s, Data: d, Chart: true})
}

// moduleVersion returns the version of the device's main module (the
// default update type's), else its first.
func moduleVersion(d deviceupdate.Device) deviceupdate.Version {
	for _, m := range d.Modules {
		if strings.EqualFold(m.UpdateType, deviceupdate.DefaultUpdateType) {
			return m.Version
		}
	}
	if len(d.Modules) > 0 {
		return d.Modules[0].Version
	}
	return deviceupdate.Version{}
}

// fleet counts the devices by model and version and finds those not on
// their rule's approved version.
func (c *Console) fleet(ctx context.Context, rules []deviceupdate.Rule, d *dashboardData) error {
	byID := make(map[string]deviceupdate.Rule, len(rules))
	approved := map[string]deviceupdate.Version{} // lower-case model → approved main version
	for _, r := range rules {
		byID[r.ID] = r
		if strings.EqualFold(r.UpdateType, deviceupdate.DefaultUpdateType) && !r.ApprovedVersion.IsZero() {
			approved[strings.ToLower(r.Model)] = r.ApprovedVersion
		}
	}
	counts := map[string]map[deviceupdate.Version]int{}
	models := map[string]string{} // lower-case → as first seen
	cursor := ""
	for {
		list, err := c.cfg.Devices.Devices(ctx, deviceupdate.DeviceFilter{Page: deviceupdate.Page{Cursor: cursor, Limit: scanPage}})
		if err != nil {
			return err
		}
		for _, dev := range list.Devices {
			d.Devices++
			m := strings.ToLower(dev.Model)
			if _, ok := models[m]; !ok {
				models[m] = dev.Model
				counts[m] = map[deviceupdate.Version]int{}
			}
			counts[m][moduleVersion(dev)]++
			for _, mod := range dev.Modules {
				ut := mod.UpdateType
				if ut == "" {
					ut = deviceupdate.DefaultUpdateType
				}
				key := deviceupdate.RuleKey{DeviceType: dev.DeviceType, Brand: dev.Brand, Model: dev.Model, Revision: dev.Revision, Locale: dev.Locale, UpdateType: ut}
				r, ok := byID[deviceupdate.RuleID(key)]
				if !ok || r.ApprovedVersion.IsZero() || mod.Version == r.ApprovedVersion {
					continue
				}
				d.OffCount++
				if len(d.Off) < maxOffRows {
					d.Off = append(d.Off, offDevice{ID: dev.ID, Model: dev.Model, Module: ut, Running: mod.Version, Approved: r.ApprovedVersion, LastSeen: dev.LastSeen})
				}
			}
		}
		if list.Next == "" {
			break
		}
		cursor = list.Next
	}
	d.Chart = buildChart(models, counts, approved)
	return nil
}

func buildChart(models map[string]string, counts map[string]map[deviceupdate.Version]int, approved map[string]deviceupdate.Version) chartData {
	keys := sorted(models)
	versions := map[deviceupdate.Version]bool{}
	for _, m := range keys {
		for v := range counts[m] {
			versions[v] = true
		}
	}
	vs := make([]deviceupdate.Version, 0, len(versions))
	for v := range versions {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Compare(vs[j]) < 0 })
	ch := chartData{Models: []string{}, Approved: []string{}, Versions: []chartVersion{}}
	for _, m := range keys {
		ch.Models = append(ch.Models, models[m])
		a := ""
		if v, ok := approved[m]; ok {
			a = v.String()
		}
		ch.Approved = append(ch.Approved, a)
	}
	for _, v := range vs {
		cv := chartVersion{Version: formatVersion(v), Counts: make([]int, len(keys))}
		for i, m := range keys {
			cv.Counts[i] = counts[m][v]
		}
		ch.Versions = append(ch.Versions, cv)
	}
	return ch
}

// health reads the panel's lines; a line that cannot be read says so.
func (c *Console) health(ctx context.Context) []healthLine {
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
	if h.Metrics != nil {
		n, err := pollsAnswered(h.Metrics)
		if err != nil {
			out = append(out, healthLine{Name: "Polls per minute", Value: "unknown", Bad: true})
		} else {
			out = append(out, healthLine{Name: "Polls per minute", Value: c.polls.perMinute(c.now(), n)})
		}
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
