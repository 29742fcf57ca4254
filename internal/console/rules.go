package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

// ruleActions are the console's buttons, with the labels SPEC §7 gives
// them (Reject is Lync's reset).
var ruleActions = []struct {
	Action deviceupdate.RuleAction
	Label  string
	Done   string
}{
	{deviceupdate.RuleApprove, "Approve", "Approved"},
	{deviceupdate.RuleReset, "Reject", "Rejected"},
	{deviceupdate.RuleRestore, "Restore", "Restored"},
	{deviceupdate.RuleRemove, "Remove", "Removed"},
}

// maxBulk bounds the rules one confirmation may change.
const maxBulk = 200

func actionLabel(a deviceupdate.RuleAction) (label, done string, ok bool) {
	for _, x := range ruleActions {
		if x.Action == a {
			return x.Label, x.Done, true
		}
	}
	return "", "", false
}

type rulesData struct {
	Rules   []ruleRow
	Confirm *confirmData
	Failed  []string
	// Staged says the confirmation of an approve may start a staged
	// rollout instead (SPEC §10).
	Staged bool
}

// ruleRow is a rule with the actions its state allows.
type ruleRow struct {
	deviceupdate.Rule
	Actions []string     // the actions offered, by name
	Rollout *rolloutView // the rule's latest staged rollout, nil when none
}

// Label names an action on the button.
func (ruleRow) Label(action string) string {
	l, _, _ := actionLabel(deviceupdate.RuleAction(action))
	return l
}

// confirmData is what an action will do, shown before it is done.
type confirmData struct {
	Action  string
	Label   string
	Changes []ruleChange
}

type ruleChange struct {
	deviceupdate.Rule
	Effect string
	// Expect holds the versions shown, which the rule must still have
	// when the change is confirmed.
	Expect string
}

func (c *Console) handleRules(ec echo.Context, s *deviceupdate.Session) error {
	var p page
	if n, err := strconv.Atoi(ec.QueryParam("n")); err == nil && n > 0 {
		if _, done, ok := actionLabel(deviceupdate.RuleAction(ec.QueryParam("done"))); ok {
			p.Notice = fmt.Sprintf("%s %d %s.", done, n, plural(n, "rule"))
		} else if ec.QueryParam("done") == "rollout" {
			p.Notice = fmt.Sprintf("Started a staged rollout of %d %s.", n, plural(n, "rule"))
		}
	}
	if n := rolloutNotice(ec.QueryParams()); n != "" {
		p.Notice = n
	}
	return c.renderRules(ec, s, http.StatusOK, p, nil, nil)
}

func plural(n int, what string) string {
	if n == 1 {
		return what
	}
	return what + "s"
}

func (c *Console) renderRules(ec echo.Context, s *deviceupdate.Session, status int, p page, confirm *confirmData, failed []string) error {
	rules, err := c.cfg.Rules.Rules(ec.Request().Context())
	if err != nil {
		return c.fail(ec, s, err)
	}
	rollouts, err := c.rollouts(ec.Request().Context(), rules)
	if err != nil {
		return c.fail(ec, s, err)
	}
	rows := make([]ruleRow, len(rules))
	for i, r := range rules {
		rows[i] = ruleRow{Rule: r, Rollout: rollouts[r.ID]}
		if v := rows[i].Rollout; v != nil {
			v.Operator, v.CSRF = s.Admin.Role.Allows(deviceupdate.RoleOperator), s.CSRF
		}
		for _, a := range ruleActions {
			// While a rollout runs or is paused, the rule's versions are
			// its own: only Reject (which aborts it) and Remove apply.
			inRollout := rows[i].Rollout != nil && rows[i].Rollout.Active()
			if inRollout && (a.Action == deviceupdate.RuleApprove || a.Action == deviceupdate.RuleRestore) {
				continue
			}
			if _, err := r.Apply(a.Action); err == nil {
				rows[i].Actions = append(rows[i].Actions, string(a.Action))
			}
		}
	}
	p.Title, p.Nav, p.Session = "Rules", "rules", s
	p.Data = rulesData{Rules: rows, Confirm: confirm, Failed: failed, Staged: c.cfg.Rollouts != nil}
	return c.render(ec, status, "rules", p)
}

// handleRuleConfirm shows what an action on the selected rules will do
// and a Confirm button; nothing changes yet.
func (c *Console) handleRuleConfirm(ec echo.Context, s *deviceupdate.Session) error {
	action := deviceupdate.RuleAction(ec.QueryParam("action"))
	label, _, ok := actionLabel(action)
	if !ok {
		return c.fail(ec, s, deviceupdate.Errorf(deviceupdate.EINVALID, "unknown action %q", truncate(string(action), 32)))
	}
	ids := ec.QueryParams()["id"]
	if len(ids) == 0 {
		return c.renderRules(ec, s, http.StatusBadRequest, page{Error: "Select the rules to " + strings.ToLower(label) + " first."}, nil, nil)
	}
	if len(ids) > maxBulk {
		return c.fail(ec, s, deviceupdate.Errorf(deviceupdate.EINVALID, "at most %d rules at once", maxBulk))
	}
	rules, err := c.cfg.Rules.Rules(ec.Request().Context())
	if err != nil {
		return c.fail(ec, s, err)
	}
	byID := map[string]deviceupdate.Rule{}
	for _, r := range rules {
		byID[r.ID] = r
	}
	cd := &confirmData{Action: string(action), Label: label}
	var refused []string
	for _, id := range ids {
		r, ok := byID[id]
		if !ok {
			refused = append(refused, fmt.Sprintf("rule %q: no such rule", truncate(id, 32)))
			continue
		}
		effect, err := describe(r, action)
		if err == nil && action == deviceupdate.RuleReset && c.cfg.Rollouts != nil {
			if ro, _, rerr := c.cfg.Rollouts.Rollout(ec.Request().Context(), id); rerr == nil && ro.Active() {
				prev := "nothing"
				if !ro.Previous.IsZero() {
					prev = ro.Previous.String()
				}
				effect = fmt.Sprintf("The staged rollout of %s is aborted: the phones it reached are offered %s again.", ro.Version, prev)
			}
		}
		if err != nil {
			refused = append(refused, deviceupdate.ErrorMessage(err))
			continue
		}
		cd.Changes = append(cd.Changes, ruleChange{Rule: r, Effect: effect, Expect: expectOf(r)})
	}
	if len(cd.Changes) == 0 {
		cd = nil
	}
	status := http.StatusOK
	if len(refused) > 0 {
		status = http.StatusConflict
	}
	return c.renderRules(ec, s, status, page{}, cd, refused)
}

// describe says what phones will get after action on r.
func describe(r deviceupdate.Rule, action deviceupdate.RuleAction) (string, error) {
	after, err := r.Apply(action)
	if err != nil {
		return "", err
	}
	offer := func(v deviceupdate.Version) string {
		if v.IsZero() {
			return "nothing"
		}
		return v.String()
	}
	switch action {
	case deviceupdate.RuleApprove:
		return fmt.Sprintf("Every phone of this rule will be offered %s (today: %s).", offer(after.ApprovedVersion), offer(r.ApprovedVersion)), nil
	case deviceupdate.RuleReset:
		return fmt.Sprintf("Pending %s is dropped; test devices go back to %s, other phones keep %s.", r.PendingVersion, offer(r.ApprovedVersion), offer(r.ApprovedVersion)), nil
	case deviceupdate.RuleRestore:
		return fmt.Sprintf("Every phone of this rule will be offered %s instead of %s.", offer(after.ApprovedVersion), offer(r.ApprovedVersion)), nil
	default:
		return fmt.Sprintf("The rule is deleted: its phones will be offered nothing (today: %s).", offer(r.ApprovedVersion)), nil
	}
}

// expectOf writes the versions of a rule as the Confirm form carries
// them: approved/pending/restore.
func expectOf(r deviceupdate.Rule) string {
	return r.ApprovedVersion.String() + "/" + r.PendingVersion.String() + "/" + r.RestoreVersion.String()
}

func parseExpect(s string) (*deviceupdate.Rule, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return nil, deviceupdate.Errorf(deviceupdate.EINVALID, "the confirmation is malformed; start again from the rules page")
	}
	var vs [3]deviceupdate.Version
	for i, p := range parts {
		v, err := deviceupdate.ParseVersion(p)
		if err != nil {
			return nil, err
		}
		vs[i] = v
	}
	return &deviceupdate.Rule{ApprovedVersion: vs[0], PendingVersion: vs[1], RestoreVersion: vs[2]}, nil
}

// handleRuleApply does a confirmed action on each rule, provided it
// still has the versions the confirmation showed.
func (c *Console) handleRuleApply(ec echo.Context, s *deviceupdate.Session) error {
	action := deviceupdate.RuleAction(ec.FormValue("action"))
	if _, _, ok := actionLabel(action); !ok {
		return c.fail(ec, s, deviceupdate.Errorf(deviceupdate.EINVALID, "unknown action %q", truncate(string(action), 32)))
	}
	form, err := ec.FormParams()
	if err != nil {
		return c.fail(ec, s, deviceupdate.Errorf(deviceupdate.EINVALID, "unreadable form"))
	}
	ids := form["id"]
	if len(ids) == 0 || len(ids) > maxBulk {
		return c.fail(ec, s, deviceupdate.Errorf(deviceupdate.EINVALID, "select 1 to %d rules", maxBulk))
	}
	if action == deviceupdate.RuleApprove && form.Get("staged") != "" && c.cfg.Rollouts != nil {
		done, failed, err := c.startRollouts(ec.Request().Context(), s, form, ids)
		if deviceupdate.ErrorCode(err) == deviceupdate.EINVALID {
			return c.renderRules(ec, s, http.StatusBadRequest, page{}, nil, []string{deviceupdate.ErrorMessage(err)})
		}
		if err != nil {
			return c.fail(ec, s, err)
		}
		if len(failed) > 0 {
			return c.renderRules(ec, s, http.StatusConflict, page{Notice: noticeIf(done > 0, fmt.Sprintf("Started a staged rollout of %d %s.", done, plural(done, "rule")))}, nil, failed)
		}
		return ec.Redirect(http.StatusSeeOther, fmt.Sprintf("/rules?done=rollout&n=%d", done))
	}
	done := 0
	var failed []string
	for _, id := range ids {
		expect, err := parseExpect(form.Get("expect-" + id))
		if err == nil {
			_, _, err = c.cfg.Rules.ChangeRule(ec.Request().Context(), id, action, expect, s.Admin.Name)
		}
		if err != nil {
			if deviceupdate.ErrorCode(err) == deviceupdate.EINTERNAL {
				return c.fail(ec, s, err)
			}
			failed = append(failed, deviceupdate.ErrorMessage(err))
			continue
		}
		done++
	}
	if len(failed) > 0 {
		_, verb, _ := actionLabel(action)
		return c.renderRules(ec, s, http.StatusConflict, page{Notice: noticeIf(done > 0, fmt.Sprintf("%s %d %s.", verb, done, plural(done, "rule")))}, nil, failed)
	}
	return ec.Redirect(http.StatusSeeOther, fmt.Sprintf("/rules?done=%s&n=%d", action, done))
}

func noticeIf(ok bool, s string) string {
	if ok {
		return s
	}
	return ""
}
