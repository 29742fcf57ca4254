package deviceupdate

import (
	"testing"
	"time"
)

func TestRoleAllows(t *testing.T) {
	tests := []struct {
		name       string
		role, need Role
		want       bool
	}{
		{"viewer reads", RoleViewer, RoleViewer, true},
		{"viewer cannot operate", RoleViewer, RoleOperator, false},
		{"viewer cannot administer", RoleViewer, RoleAdmin, false},
		{"operator reads", RoleOperator, RoleViewer, true},
		{"operator operates", RoleOperator, RoleOperator, true},
		{"operator cannot administer", RoleOperator, RoleAdmin, false},
		{"admin does everything", RoleAdmin, RoleOperator, true},
		{"unknown role allows nothing", Role("root"), RoleViewer, false},
		{"empty role allows nothing", Role(""), RoleViewer, false},
		{"unknown need is allowed to nobody", RoleAdmin, Role("superuser"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.role.Allows(tt.need); got != tt.want {
				t.Errorf("%q.Allows(%q) = %v, want %v", tt.role, tt.need, got, tt.want)
			}
		})
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "Admin", "root", " viewer"} {
		if _, err := ParseRole(s); ErrorCode(err) != EINVALID {
			t.Errorf("ParseRole(%q): error %v, want EINVALID", s, err)
		}
	}
}

func TestSessionExpired(t *testing.T) {
	start := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		seen time.Time
		now  time.Time
		want bool
	}{
		{"fresh", start, start.Add(time.Minute), false},
		{"idle just under the limit", start, start.Add(SessionIdle - time.Second), false},
		{"idle at the limit", start, start.Add(SessionIdle), true},
		{"active but too old", start.Add(SessionMaxAge - time.Minute), start.Add(SessionMaxAge), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Session{CreatedAt: start, SeenAt: tt.seen}
			if got := s.Expired(tt.now); got != tt.want {
				t.Errorf("Expired(%v) = %v, want %v", tt.now, got, tt.want)
			}
		})
	}
}
