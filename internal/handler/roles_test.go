package handler

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate"
)

// fakeAdmins knows a token per admin; everything else is unused here.
type fakeAdmins struct {
	deviceupdate.AdminService
	byToken map[string]deviceupdate.Admin
}

func (f fakeAdmins) TokenAdmin(_ context.Context, secret string) (deviceupdate.Admin, error) {
	if a, ok := f.byToken[secret]; ok {
		return a, nil
	}
	return deviceupdate.Admin{}, deviceupdate.Errorf(deviceupdate.EUNAUTHORIZED, "missing or invalid admin token")
}

// roleTokens are the personal tokens of one admin of each role.
var roleTokens = map[deviceupdate.Role]string{
	deviceupdate.RoleViewer:   "du_viewer",
	deviceupdate.RoleOperator: "du_operator",
	deviceupdate.RoleAdmin:    "du_admin",
}

var roleNames = map[deviceupdate.Role]string{
	deviceupdate.RoleViewer: "vera", deviceupdate.RoleOperator: "olivia", deviceupdate.RoleAdmin: "adam",
}

// newRolesServer has every admin route: services that are never reached
// past the role check, and admins of each role.
func newRolesServer(t *testing.T) *Server {
	t.Helper()
	admins := fakeAdmins{byToken: map[string]deviceupdate.Admin{}}
	for role, tok := range roleTokens {
		admins.byToken[tok] = deviceupdate.Admin{Name: roleNames[role], Role: role}
	}
	s, err := New(Config{
		Logger: zap.NewNop(), Registry: prometheus.NewRegistry(), Store: &fakePinger{}, AdminToken: testToken,
		Packages: struct{ deviceupdate.PackageService }{}, MaxPackageSize: 1 << 20,
		Rules:       struct{ deviceupdate.RuleService }{},
		Rollouts:    struct{ deviceupdate.RolloutService }{},
		Audit:       struct{ deviceupdate.AuditService }{},
		TestDevices: struct{ deviceupdate.TestDeviceService }{},
		Config:      struct{ deviceupdate.ConfigService }{},
		Files:       struct{ deviceupdate.FileService }{},
		Polls:       struct{ deviceupdate.PollService }{},
		Devices:     struct{ deviceupdate.DeviceService }{},
		Sites:       struct{ deviceupdate.SiteService }{},
		DeviceConfig: struct {
			deviceupdate.DeviceConfigService
		}{},
		Logs:   struct{ deviceupdate.LogService }{},
		Users:  struct{ deviceupdate.UserService }{},
		Backup: struct{ deviceupdate.BackupService }{},
		Admins: admins,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAdminRoles walks every route of the HTTPS listener: each admin
// route must be in this table, with the role SPEC §7 gives it, and each
// role is let through or refused with 403 accordingly. A route added
// without a role fails here; one added to the server without a role at
// all is refused to everyone (TestRouteWithoutRoleFailsClosed).
func TestAdminRoles(t *testing.T) {
	const (
		viewer   = deviceupdate.RoleViewer
		operator = deviceupdate.RoleOperator
		admin    = deviceupdate.RoleAdmin
	)
	p := AdminPrefix
	want := map[string]deviceupdate.Role{
		"GET /metrics":                           viewer,
		"GET " + p + "/server":                   viewer,
		"POST " + p + "/packages":                admin,
		"GET " + p + "/rules":                    viewer,
		"POST " + p + "/rules/:id/:action":       operator,
		"GET " + p + "/rules/:id/rollout":        viewer,
		"POST " + p + "/rules/:id/pause":         operator,
		"POST " + p + "/rules/:id/resume":        operator,
		"GET " + p + "/audit":                    viewer,
		"GET " + p + "/audit/verify":             viewer,
		"GET " + p + "/testdevices":              viewer,
		"POST " + p + "/testdevices":             operator,
		"DELETE " + p + "/testdevices/:name":     operator,
		"GET " + p + "/config":                   viewer,
		"PUT " + p + "/config":                   admin,
		"POST " + p + "/files/clear":             admin,
		"GET " + p + "/devices":                  viewer,
		"GET " + p + "/devices/:id":              viewer,
		"DELETE " + p + "/devices/:id":           admin,
		"POST " + p + "/devices/prune":           admin,
		"GET " + p + "/sites":                    viewer,
		"PUT " + p + "/sites/:name":              admin,
		"DELETE " + p + "/sites/:name":           admin,
		"GET " + p + "/logs":                     viewer,
		"GET " + p + "/logs/:type/:device/:name": operator,
		"POST " + p + "/logs/clear":              operator,
		"GET " + p + "/devices/:id/config":       viewer,
		"PUT " + p + "/devices/:id/config":       operator,
		"GET " + p + "/users":                    viewer,
		"POST " + p + "/users":                   admin,
		"DELETE " + p + "/users/:name":           admin,
		"GET " + p + "/backup":                   admin,
		"GET " + p + "/admins":                   viewer,
		"POST " + p + "/admins":                  admin,
		"DELETE " + p + "/admins/:name":          admin,
		// Another admin's tokens (:name is someone else); one's own:
		// TestOwnTokens.
		"GET " + p + "/admins/:name/tokens":        admin,
		"POST " + p + "/admins/:name/tokens":       admin,
		"DELETE " + p + "/admins/:name/tokens/:id": admin,
	}
	s := newRolesServer(t)
	param := regexp.MustCompile(`:[a-z]+`)
	seen := map[string]bool{}
	for _, r := range s.secure.Routes() {
		if !strings.HasPrefix(r.Path, AdminPrefix) && r.Path != "/metrics" || r.Path == AdminPrefix || r.Path == AdminPrefix+"/*" {
			continue // not the admin API, or the group's no-such-endpoint routes
		}
		key := r.Method + " " + r.Path
		seen[key] = true
		need, ok := want[key]
		if !ok {
			t.Errorf("%s: no role in this test's table; give the route one (SPEC §7) and add it here and to the README", key)
			continue
		}
		path := param.ReplaceAllString(r.Path, "x1")
		for _, role := range deviceupdate.Roles {
			t.Run(key+" as "+string(role), func(t *testing.T) {
				rec := do(s.Secure(), r.Method, path, map[string]string{"Authorization": "Bearer " + roleTokens[role]})
				if role.Allows(need) {
					if rec.Code == 401 || rec.Code == 403 {
						t.Errorf("%s refused: %d %s", role, rec.Code, rec.Body)
					}
					return
				}
				body := rec.Body.String()
				if rec.Code != 403 || !strings.Contains(body, `"code":"forbidden"`) || !strings.Contains(body, string(need)+" role required") ||
					!strings.Contains(body, "; "+roleNames[role]+" is a") {
					t.Errorf("%s: %d %s, want 403 saying the role needed and %s's", role, rec.Code, body, roleNames[role])
				}
			})
		}
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("%s is in the table but not a route", key)
		}
	}
}

// TestOwnTokens: any admin lists, makes and revokes their own tokens; a
// viewer not another's.
func TestOwnTokens(t *testing.T) {
	s := newRolesServer(t)
	viewer := map[string]string{"Authorization": "Bearer " + roleTokens[deviceupdate.RoleViewer]}
	tests := []struct {
		name, method, path string
		refused            bool
	}{
		{"list own", "GET", "/admins/vera/tokens", false},
		{"make own, name in another case", "POST", "/admins/Vera/tokens", false},
		{"revoke own", "DELETE", "/admins/vera/tokens/abc", false},
		{"list another's", "GET", "/admins/olivia/tokens", true},
		{"make another's", "POST", "/admins/olivia/tokens", true},
		{"revoke another's", "DELETE", "/admins/olivia/tokens/abc", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(s.Secure(), tt.method, AdminPrefix+tt.path, viewer)
			if got := rec.Code == 403; got != tt.refused {
				t.Errorf("%d %s", rec.Code, rec.Body)
			}
			if tt.refused && !strings.Contains(rec.Body.String(), "admin role required to manage another admin's tokens; vera is a viewer") {
				t.Errorf("message: %s", rec.Body)
			}
		})
	}
}

// TestAdminTokens: the admin.token acts as bootstrap, a personal token as
// its admin; anything else is the same 401, and the request's log line
// names the admin.
func TestAdminTokens(t *testing.T) {
	s := newRolesServer(t)
	var got []string
	s.secure.GET("/whoami", func(c echo.Context) error {
		a, _ := CurrentAdmin(c)
		got = append(got, a.Name+" "+string(a.Role)+" "+actor(c))
		return c.NoContent(http.StatusNoContent)
	}, s.requireAdmin)
	s.access[routeKey("GET", "/whoami")] = canRead
	tests := []struct {
		name, header string
		status       int
	}{
		{"admin.token", "Bearer " + testToken, 204},
		{"personal token, scheme in lower case", "bearer du_operator", 204},
		{"revoked or unknown token", "Bearer du_revoked", 401},
		{"admin.token with a character more", "Bearer " + testToken + "x", 401},
		{"no token", "", 401},
		{"basic", "Basic " + testToken, 401},
	}
	for _, tt := range tests {
		rec := do(s.Secure(), "GET", "/whoami", map[string]string{"Authorization": tt.header})
		if rec.Code != tt.status || tt.status == 401 && !strings.Contains(rec.Body.String(), "missing or invalid admin token") {
			t.Errorf("%s: %d %s", tt.name, rec.Code, rec.Body)
		}
	}
	if strings.Join(got, ", ") != "bootstrap admin bootstrap, olivia operator olivia" {
		t.Errorf("acted as %q", got)
	}
}

// TestRouteWithoutRoleFailsClosed: an admin route registered without a
// role is refused to everyone, the bootstrap admin too.
func TestRouteWithoutRoleFailsClosed(t *testing.T) {
	s := newRolesServer(t)
	s.secure.Group(AdminPrefix, s.requireAdmin).GET("/forgotten", func(c echo.Context) error { return c.NoContent(204) })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", AdminPrefix+"/forgotten", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	s.Secure().ServeHTTP(rec, req)
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), "no role set") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
	if rec := do(s.Secure(), "GET", AdminPrefix+"/nope", map[string]string{"Authorization": "Bearer " + testToken}); rec.Code != 404 {
		t.Errorf("no such endpoint: %d %s", rec.Code, rec.Body)
	}
}
