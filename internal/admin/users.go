package admin

import (
	"context"
	"encoding/json"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
)

var _ deviceupdate.UserService = (*Service)(nil)

// Users returns every user of the external endpoints.
func (s *Service) Users(context.Context) ([]deviceupdate.User, error) {
	return s.DB.Users()
}

// AddUser validates, stores and audits a user. The audit entry holds the
// user as the API shows it: never the password, never its hash.
func (s *Service) AddUser(_ context.Context, name, password, actor string) (deviceupdate.User, error) {
	u := deviceupdate.User{Name: name, CreatedAt: time.Now().UTC().Truncate(time.Second), CreatedBy: actor}
	err := deviceupdate.ValidateUserName(name)
	if err == nil {
		err = deviceupdate.ValidatePassword(name, password)
	}
	if err == nil {
		err = s.DB.AddUser(u, password)
	}
	e := audit.Entry{Actor: actor, Action: "user.add", Target: name, Result: audit.ResultOK}
	if err != nil {
		e.Result = deviceupdate.ErrorMessage(err)
		u = deviceupdate.User{}
	} else {
		e.After, _ = json.Marshal(u)
	}
	return u, s.audited(e, err)
}

// RemoveUser deletes and audits a user; its credentials stop working at
// once.
func (s *Service) RemoveUser(_ context.Context, name, actor string) error {
	u, err := s.DB.RemoveUser(name)
	e := audit.Entry{Actor: actor, Action: "user.remove", Target: name, Result: audit.ResultOK}
	if err != nil {
		e.Result = deviceupdate.ErrorMessage(err)
	} else {
		e.Before, _ = json.Marshal(u)
	}
	return s.audited(e, err)
}

// Authenticate checks a user's credentials; it is not audited (phones
// authenticate on every poll).
func (s *Service) Authenticate(ctx context.Context, name, password string) (deviceupdate.User, error) {
	return s.DB.Authenticate(ctx, name, password)
}
