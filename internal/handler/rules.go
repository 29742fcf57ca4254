package handler

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

// maxJSONBody bounds the JSON bodies of admin requests.
const maxJSONBody = 64 << 10

// decodeJSON reads a small JSON body into dst; an empty body leaves dst
// as it is.
func decodeJSON(c echo.Context, dst any) error {
	body := http.MaxBytesReader(c.Response(), c.Request().Body, maxJSONBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &mbe):
		return deviceupdate.Errorf(deviceupdate.ETOOLARGE, "request body is larger than %d bytes", maxJSONBody)
	case err != nil:
		return deviceupdate.Errorf(deviceupdate.EINVALID, "request body is not the JSON expected: %v", err)
	}
	return nil
}

func (s *Server) handleRules(c echo.Context) error {
	rules, err := s.rules.Rules(c.Request().Context())
	if err != nil {
		return err
	}
	if rules == nil {
		rules = []deviceupdate.Rule{}
	}
	return c.JSON(http.StatusOK, rules)
}

// ruleChange is the body of POST /rules/:id/:action: the rule as the
// client last saw it, so that a change made meanwhile is a conflict.
type ruleChange struct {
	Expect *deviceupdate.Rule `json:"expect"`
}

type ruleChanged struct {
	Before deviceupdate.Rule  `json:"before"`
	After  *deviceupdate.Rule `json:"after"`
}

func (s *Server) handleRuleAction(c echo.Context) error {
	var req ruleChange
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	before, after, err := s.rules.ChangeRule(c.Request().Context(), c.Param("id"), deviceupdate.RuleAction(c.Param("action")), req.Expect, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ruleChanged{Before: before, After: after})
}

func (s *Server) handleAudit(c echo.Context) error {
	var f deviceupdate.AuditFilter
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := c.QueryParam(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return deviceupdate.Errorf(deviceupdate.EINVALID, "%s=%q: want a time such as 2026-11-21T08:00:00Z", p.name, v)
			}
			*p.dst = t
		}
	}
	f.Action, f.Target = c.QueryParam("action"), c.QueryParam("target")
	if err := pageOf(c, &f.Page); err != nil {
		return err
	}
	list, err := s.audit.AuditEntries(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (s *Server) handleAuditVerify(c echo.Context) error {
	v, err := s.audit.VerifyAudit(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}
