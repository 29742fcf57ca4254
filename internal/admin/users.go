package admin

import (
	"context"
	"encoding/json"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/audit"
	"github.com/deviceupdate/deviceupdate/internal/store"
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
	// The password is hashed before the audited change, which holds the
	// store's write lock: the inventory's writes would wait out the hash.
	err := deviceupdate.ValidateUserName(name)
	if err == nil {
		err = deviceupdate.ValidatePassword(name, password)
	}
	if err == nil {
		err = s.DB.CheckUserFree(name)
	}
	var hash store.PasswordHash
	if err == nil {
		hash, err = store.HashPassword(password)
	}
	refused := err
	err = s.change(audit.Entry{Actor: actor, Action: "user.add", Target: name}, func(tx store.Store, e *audit.Entry) error {
		if refused != nil {
			return refused
		}
		if err := tx.AddUser(u, hash); err != nil {
			return err
		}
		e.After, _ = json.Marshal(u)
		return nil
	})
	if err != nil {
		return deviceupdate.User{}, err
	}
	return u, nil
}

// RemoveUser deletes and audits a user; its credentials stop working at
// once.
func (s *Service) RemoveUser(_ context.Context, name, actor string) error {
	return s.change(audit.Entry{Actor: actor, Action: "user.remove", Target: name}, func(tx store.Store, e *audit.Entry) error {
		u, err := tx.RemoveUser(name)
		if err != nil {
			return err
		}
		e.Before, _ = json.Marshal(u)
		return nil
	})
}

// Remembered returns the user whose credentials Authenticate verified
// lately, without checking them again.
func (s *Service) Remembered(name, password string) (deviceupdate.User, bool) {
	return s.DB.Remembered(name, password)
}

// Authenticate checks a user's credentials; it is not audited (phones
// authenticate on every poll).
func (s *Service) Authenticate(ctx context.Context, name, password string) (deviceupdate.User, error) {
	return s.DB.Authenticate(ctx, name, password)
}
