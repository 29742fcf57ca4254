package handler

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

type fakeAdmin struct {
	gotExpect *deviceupdate.Rule
	gotAction deviceupdate.RuleAction
	err       error
}

func (f *fakeAdmin) Rules(context.Context) ([]deviceupdate.Rule, error) { return nil, nil }
func (f *fakeAdmin) ChangeRule(_ context.Context, id string, a deviceupdate.RuleAction, expect *deviceupdate.Rule, _ string) (deviceupdate.Rule, *deviceupdate.Rule, error) {
	f.gotAction, f.gotExpect = a, expect
	r := deviceupdate.Rule{ID: id}
	return r, &r, f.err
}
func (f *fakeAdmin) AuditEntries(context.Context, deviceupdate.AuditFilter) (*deviceupdate.AuditList, error) {
	return &deviceupdate.AuditList{Entries: []deviceupdate.AuditRecord{}}, nil
}
func (f *fakeAdmin) VerifyAudit(context.Context) (*deviceupdate.AuditVerification, error) {
	return &deviceupdate.AuditVerification{Intact: true}, nil
}

func TestRuleAndAuditEndpoints(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		err        error
		wantStatus int
		wantBody   string
	}{
		{"empty rule list is an array", "GET", "/rules", "", nil, 200, "[]"},
		{"approve with expectation", "POST", "/rules/abc/approve", `{"expect":{"id":"abc","approvedVersion":"1.2.3.4"}}`, nil, 200, `"before":{"id":"abc"`},
		{"conflict", "POST", "/rules/abc/reset", "", deviceupdate.Errorf(deviceupdate.ECONFLICT, "nothing pending"), 409, `"code":"conflict"`},
		{"malformed body", "POST", "/rules/abc/approve", `{"expect":`, nil, 400, "not the JSON expected"},
		{"unknown field", "POST", "/rules/abc/approve", `{"force":true}`, nil, 400, "unknown field"},
		{"body too large", "POST", "/rules/abc/approve", `{"expect":{"id":"` + strings.Repeat("x", maxJSONBody) + `"}}`, nil, 413, "too_large"},
		{"bad since", "GET", "/audit?since=yesterday", "", nil, 400, "since="},
		{"verify", "GET", "/audit/verify", "", nil, 200, `"intact":true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa := &fakeAdmin{err: tt.err}
			s, err := New(Config{Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Store: &fakePinger{}, AdminToken: testToken, Rules: fa, Audit: fa})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(tt.method, AdminPrefix+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+testToken)
			rec := httptest.NewRecorder()
			s.Secure().ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("%s %s: %d %s; want %d containing %s", tt.method, tt.path, rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
			if tt.name == "approve with expectation" && (fa.gotAction != deviceupdate.RuleApprove || fa.gotExpect == nil || fa.gotExpect.ApprovedVersion.String() != "1.2.3.4") {
				t.Errorf("service got action %q expect %+v", fa.gotAction, fa.gotExpect)
			}
		})
	}
}
