package console

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

type configData struct {
	Scope  string
	Fields []configField
}

// configField is one setting in the form: its value (as entered, when
// the form came back with errors) and its error, shown next to it.
type configField struct {
	deviceupdate.ConfigValue
	Help  string
	Error string
}

func (c *Console) configFields(ec echo.Context, scope string) ([]configField, error) {
	values, err := c.cfg.Config.Config(ec.Request().Context(), scope)
	if err != nil {
		return nil, err
	}
	out := make([]configField, len(values))
	for i, v := range values {
		out[i] = configField{ConfigValue: v}
		if s, ok := deviceupdate.LookupSetting(v.Name); ok {
			out[i].Help = s.Help
		}
	}
	return out, nil
}

func (c *Console) handleConfig(ec echo.Context, s *deviceupdate.Session) error {
	fields, err := c.configFields(ec, deviceupdate.ScopeGlobal)
	if err != nil {
		return c.fail(ec, s, err)
	}
	return c.render(ec, http.StatusOK, "config", page{Title: "Configuration", Nav: "config", Session: s, Data: configData{Scope: deviceupdate.ScopeGlobal, Fields: fields}})
}

// handleSetConfig checks every field first and shows each error next to
// its field; only a form without errors changes the settings it changes.
func (c *Console) handleSetConfig(ec echo.Context, s *deviceupdate.Session) error {
	fields, err := c.configFields(ec, deviceupdate.ScopeGlobal)
	if err != nil {
		return c.fail(ec, s, err)
	}
	form, err := ec.FormParams()
	if err != nil {
		return c.fail(ec, s, deviceupdate.Errorf(deviceupdate.EINVALID, "unreadable form"))
	}
	changed := map[string]string{}
	bad := 0
	for i := range fields {
		f := &fields[i]
		v, ok := form[f.Name]
		if !ok || len(v) != 1 {
			continue
		}
		entered := strings.TrimSpace(v[0])
		if entered == f.Value {
			continue
		}
		set, _ := deviceupdate.LookupSetting(f.Name)
		norm, err := set.Check(entered)
		f.Value = entered
		if err != nil {
			f.Error = deviceupdate.ErrorMessage(err)
			bad++
			continue
		}
		changed[f.Name] = norm
	}
	d := configData{Scope: deviceupdate.ScopeGlobal, Fields: fields}
	p := page{Title: "Configuration", Nav: "config", Session: s, Data: d}
	switch {
	case bad > 0:
		p.Error = "Nothing was saved: correct the fields marked below."
		return c.render(ec, http.StatusBadRequest, "config", p)
	case len(changed) == 0:
		p.Notice = "Nothing changed."
		return c.render(ec, http.StatusOK, "config", p)
	}
	if _, err := c.cfg.Config.SetConfig(ec.Request().Context(), deviceupdate.ScopeGlobal, changed, s.Admin.Name); err != nil {
		if deviceupdate.ErrorCode(err) == deviceupdate.EINTERNAL {
			return c.fail(ec, s, err)
		}
		p.Error = deviceupdate.ErrorMessage(err)
		return c.render(ec, statusOf(deviceupdate.ErrorCode(err)), "config", p)
	}
	if d.Fields, err = c.configFields(ec, deviceupdate.ScopeGlobal); err != nil {
		return c.fail(ec, s, err)
	}
	p.Data, p.Notice = d, "Saved: "+strings.Join(sorted(changed), ", ")+"."
	return c.render(ec, http.StatusOK, "config", p)
}

// Audit trail.

const auditPage = 100

type auditData struct {
	Filter  auditQuery
	Entries []deviceupdate.AuditRecord
	Broken  *deviceupdate.AuditBreak
	Next    string
	Verify  *deviceupdate.AuditVerification
	Checked time.Time
}

type auditQuery struct {
	Action, Target, Since, Until, Cursor string
}

func (q auditQuery) url(cursor string) string {
	v := make([]string, 0, 5)
	for _, kv := range [][2]string{{"action", q.Action}, {"target", q.Target}, {"since", q.Since}, {"until", q.Until}, {"cursor", cursor}} {
		if kv[1] != "" {
			v = append(v, kv[0]+"="+urlQueryEscape(kv[1]))
		}
	}
	return "/audit?" + strings.Join(v, "&")
}

// parseDay reads a date of the audit filter: 2006-01-02, or a time in
// RFC 3339.
func parseDay(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, deviceupdate.Errorf(deviceupdate.EINVALID, "date %q: want a day such as 2026-01-31", truncate(s, 32))
	}
	if end {
		t = t.Add(24*time.Hour - time.Nanosecond)
	}
	return t, nil
}

func (c *Console) handleAudit(ec echo.Context, s *deviceupdate.Session) error {
	return c.renderAudit(ec, s, nil)
}

func (c *Console) renderAudit(ec echo.Context, s *deviceupdate.Session, verify *deviceupdate.AuditVerification) error {
	q := auditQuery{Action: ec.QueryParam("action"), Target: ec.QueryParam("target"), Since: ec.QueryParam("since"), Until: ec.QueryParam("until"), Cursor: ec.QueryParam("cursor")}
	d := auditData{Filter: q, Verify: verify}
	p := page{Title: "Audit trail", Nav: "audit", Session: s, Data: &d}
	if verify != nil {
		_, d.Checked = c.verified.get()
	}
	f := deviceupdate.AuditFilter{Action: q.Action, Target: q.Target, Page: deviceupdate.Page{Cursor: q.Cursor, Limit: auditPage}}
	var err error
	if f.Since, err = parseDay(q.Since, false); err == nil {
		f.Until, err = parseDay(q.Until, true)
	}
	var list *deviceupdate.AuditList
	if err == nil {
		list, err = c.cfg.Audit.AuditEntries(ec.Request().Context(), f)
	}
	if err != nil {
		if deviceupdate.ErrorCode(err) == deviceupdate.EINTERNAL {
			return c.fail(ec, s, err)
		}
		p.Error = deviceupdate.ErrorMessage(err)
		return c.render(ec, statusOf(deviceupdate.ErrorCode(err)), "audit", p)
	}
	d.Entries, d.Broken = list.Entries, list.Broken
	if list.Next != "" {
		d.Next = q.url(list.Next)
	}
	return c.render(ec, http.StatusOK, "audit", p)
}

// handleVerify checks the trail's hash chain and shows the outcome,
// which the dashboard's health panel shows too.
func (c *Console) handleVerify(ec echo.Context, s *deviceupdate.Session) error {
	v, err := c.cfg.Audit.VerifyAudit(ec.Request().Context())
	if err != nil {
		return c.fail(ec, s, err)
	}
	c.verified.set(v, c.now())
	return c.renderAudit(ec, s, v)
}
