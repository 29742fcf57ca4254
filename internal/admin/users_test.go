package admin_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestUsersAreAuditedWithoutSecrets(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	const password = "sesame sesame open"
	u, err := s.AddUser(ctx, "phone1@contoso.com", password, "admin@10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "phone1@contoso.com" || u.CreatedBy != "admin@10.0.0.1" || u.CreatedAt.IsZero() {
		t.Errorf("added %+v", u)
	}
	tests := []struct {
		name, user, password string
		want                 string
	}{
		{"short password", "phone2", "short", deviceupdate.EINVALID},
		{"bad name", "phone 2", password, deviceupdate.EINVALID},
		{"taken name", "PHONE1@contoso.com", password, deviceupdate.ECONFLICT},
	}
	for _, tt := range tests {
		if _, err := s.AddUser(ctx, tt.user, tt.password, "admin@10.0.0.2"); deviceupdate.ErrorCode(err) != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	if got, err := s.Authenticate(ctx, "phone1@contoso.com", password); err != nil || got.Name != u.Name {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	if err := s.RemoveUser(ctx, "phone1@contoso.com", "admin@10.0.0.3"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveUser(ctx, "phone1@contoso.com", "admin@10.0.0.3"); deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
		t.Errorf("second removal = %v", err)
	}

	list, err := s.AuditEntries(ctx, deviceupdate.AuditFilter{Action: "user."})
	if err != nil {
		t.Fatal(err)
	}
	entries := list.Entries
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action+" "+e.Result)
	}
	if len(entries) != 6 || entries[0].Action != "user.add" || entries[0].Result != "ok" || entries[4].Action != "user.remove" || entries[4].Result != "ok" ||
		!bytes.Contains(entries[0].After, []byte(`"name":"phone1@contoso.com"`)) || !bytes.Contains(entries[4].Before, []byte(`"createdBy":"admin@10.0.0.1"`)) {
		t.Errorf("audit entries: %q", actions)
	}
	trail, err := os.ReadFile(s.DB.AuditLocation())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{password, "$2a$", "passwordHash"} {
		if bytes.Contains(trail, []byte(secret)) {
			t.Errorf("the audit trail holds %q", secret)
		}
	}
}
