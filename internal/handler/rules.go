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
	// Rollout, with approve, approves in stages (SPEC §10).
	Rollout *deviceupdate.RolloutFlags `json:"rollout"`
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
	if req.Rollout != nil {
		return s.startRollout(c, req)
	}
	before, after, err := s.rules.ChangeRule(c.Request().Context(), c.Param("id"), deviceupdate.RuleAction(c.Param("action")), req.Expect, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ruleChanged{Before: before, After: after})
}

// startRollout is POST /rules/:id/approve with rollout options: the
// rollout as GET /rules/:id/rollout shows it.
func (s *Server) startRollout(c echo.Context, req ruleChange) error {
	if s.rollouts == nil {
		return deviceupdate.Errorf(deviceupdate.ENOTIMPLEMENTED, "staged rollouts are not served here")
	}
	if c.Param("action") != string(deviceupdate.RuleApprove) {
		return deviceupdate.Errorf(deviceupdate.EINVALID, "rollout options go with approve, not %s", c.Param("action"))
	}
	o, err := req.Rollout.Parse()
	if err != nil {
		return err
	}
	if req.Expect != nil {
		if err := s.checkExpected(c, *req.Expect); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	if _, err := s.rollouts.StartRollout(ctx, c.Param("id"), o, actor(c)); err != nil {
		return err
	}
	return s.handleRollout(c)
}

// checkExpected refuses a rollout of a rule that changed since the client
// read it, as ChangeRule does for the other actions.
func (s *Server) checkExpected(c echo.Context, expect deviceupdate.Rule) error {
	rules, err := s.rules.Rules(c.Request().Context())
	if err != nil {
		return err
	}
	for _, r := range rules {
		if r.ID == c.Param("id") && (r.ApprovedVersion != expect.ApprovedVersion || r.PendingVersion != expect.PendingVersion || r.RestoreVersion != expect.RestoreVersion) {
			return deviceupdate.Errorf(deviceupdate.ECONFLICT, "rule %s changed since it was read; look again and retry", r.ID)
		}
	}
	return nil
}

func (s *Server) handleRollout(c echo.Context) error {
	r, stats, err := s.rollouts.Rollout(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r.Status(stats))
}

func (s *Server) handlePauseRollout(c echo.Context) error {
	if _, err := s.rollouts.PauseRollout(c.Request().Context(), c.Param("id"), actor(c)); err != nil {
		return err
	}
	return s.handleRollout(c)
}

func (s *Server) handleResumeRollout(c echo.Context) error {
	if _, err := s.rollouts.ResumeRollout(c.Request().Context(), c.Param("id"), actor(c)); err != nil {
		return err
	}
	return s.handleRollout(c)
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
