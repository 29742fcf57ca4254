package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// Admins, their tokens and their console sessions (SPEC §7), kept as the
// embedded store keeps them: credentials as hashes only, every decision
// (which tokens and sessions end, every refusal and its message) made by
// internal/store's shared rules. Nothing of them is cached: a token or a
// session is read at each request, so a change on one node is in effect
// on every node when it commits.

// Admins returns every admin, ordered by name, without password hashes.
func (db *DB) Admins() ([]deviceupdate.Admin, error) {
	recs, err := list[store.AdminRecord](db, "admins", "SELECT data FROM admins")
	return store.AdminsOf(recs), err
}

// FindAdmin returns an admin by name, in any case; ENOTFOUND when there
// is none.
func (db *DB) FindAdmin(name string) (deviceupdate.Admin, error) {
	rec, found, err := db.findAdmin(name)
	return store.FoundAdmin(name, rec, found, err)
}

func (db *DB) findAdmin(name string) (rec store.AdminRecord, found bool, err error) {
	return find[store.AdminRecord](db, "find admin", "SELECT data FROM admins WHERE name = $1", strings.ToLower(name))
}

// CheckAdminFree returns ECONFLICT when an admin of that name, in any
// case, exists, or the name is the bootstrap admin's: a check before the
// costly hash; AddAdmin checks again.
func (db *DB) CheckAdminFree(name string) error {
	if store.IsBootstrap(name) {
		return store.AdminTaken(name)
	}
	_, found, err := db.findAdmin(name)
	if err == nil && found {
		err = store.AdminTaken(name)
	}
	return err
}

// AddAdmin stores an admin whose name, role and password the caller
// validated, with the password hashed by store.HashPassword ("" for
// none). A name taken in any case, or the bootstrap admin's, is an
// ECONFLICT, checked by the insert itself.
func (db *DB) AddAdmin(a deviceupdate.Admin, hash store.PasswordHash) error {
	data, err := jsonb(store.NewAdminRecord(a, hash))
	if err == nil {
		err = db.write("", func(tx pgx.Tx) error {
			if store.IsBootstrap(a.Name) {
				return store.AdminTaken(a.Name)
			}
			tag, err := tx.Exec(db.context(), "INSERT INTO admins (name, data) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", strings.ToLower(a.Name), data)
			if err == nil && tag.RowsAffected() == 0 {
				return store.AdminTaken(a.Name)
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("add admin: %w", err)
	}
	return nil
}

// RemoveAdmin deletes an admin by name, in any case, with their tokens
// and sessions, in one transaction: their credentials stop working, on
// every node, when it commits. ENOTFOUND when there is none.
func (db *DB) RemoveAdmin(name string) (store.RemovedAdmin, error) {
	var out store.RemovedAdmin
	key := strings.ToLower(name)
	err := db.write("", func(tx pgx.Tx) error {
		ctx := db.context()
		var rec store.AdminRecord
		found, err := getJSON(ctx, tx, &rec, "DELETE FROM admins WHERE name = $1 RETURNING data", key)
		switch {
		case err != nil:
			return err
		case !found:
			return store.NoAdmin(name)
		}
		out.Admin = rec.Admin
		tokens, err := tx.Exec(ctx, "DELETE FROM admin_tokens WHERE admin = $1", key)
		if err != nil {
			return err
		}
		sessions, err := tx.Exec(ctx, "DELETE FROM sessions WHERE admin = $1", key)
		out.Tokens, out.Sessions = int(tokens.RowsAffected()), int(sessions.RowsAffected())
		return err
	})
	if err != nil {
		return store.RemovedAdmin{}, fmt.Errorf("remove admin: %w", err)
	}
	return out, nil
}

// CheckAdminPassword checks an admin's name (any case) and password and
// returns the admin, as store.Passwords.CheckAdmin does: every failure
// the same EUNAUTHORIZED after the same bcrypt check.
func (db *DB) CheckAdminPassword(ctx context.Context, name, password string) (deviceupdate.Admin, error) {
	return db.passwords().CheckAdmin(ctx, name, password, db.findAdmin)
}

// adminExists reports whether the admin of name (any case) exists, in tx.
func (db *DB) adminExists(tx pgx.Tx, name string) (bool, error) {
	var ok bool
	err := tx.QueryRow(db.context(), "SELECT EXISTS (SELECT 1 FROM admins WHERE name = $1)", strings.ToLower(name)).Scan(&ok)
	return ok, err
}

// keyed reads the (key, record) rows a query returns, in its order.
func keyed[T any](tx pgx.Tx, ctx context.Context, sql string, args ...any) ([]store.Keyed[T], error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var out []store.Keyed[T]
	var key, raw []byte
	_, err = pgx.ForEachRow(rows, []any{&key, &raw}, func() error {
		k := store.Keyed[T]{Key: key}
		if err := jsonUnmarshal(raw, &k.Value); err != nil {
			return err
		}
		out = append(out, k)
		return nil
	})
	return out, err
}

// deleteHashes deletes the rows of table (admin_tokens or sessions) keyed
// by hashes; none, most of the time, costs no query.
func (db *DB) deleteHashes(tx pgx.Tx, table string, hashes [][]byte) error {
	if len(hashes) == 0 {
		return nil
	}
	_, err := tx.Exec(db.context(), "DELETE FROM "+table+" WHERE hash = ANY($1)", hashes)
	return err
}

// AddAdminToken stores a new token of an existing admin under the hash of
// its secret. The admin's expired tokens are deleted first; past limit live
// ones, the token is refused (ECONFLICT) with a message that says what to
// do. ENOTFOUND when the admin does not exist.
func (db *DB) AddAdminToken(t deviceupdate.AdminToken, hash store.SecretHash, now time.Time, limit int) (expired int, err error) {
	admin := strings.ToLower(t.Admin)
	err = db.write("", func(tx pgx.Tx) error {
		ctx := db.context()
		if ok, err := db.adminExists(tx, t.Admin); err != nil || !ok {
			return store.ErrorOr(err, store.NoAdmin(t.Admin))
		}
		mine, err := keyed[deviceupdate.AdminToken](tx, ctx, "SELECT hash, data FROM admin_tokens WHERE admin = $1 ORDER BY hash", admin)
		if err != nil {
			return err
		}
		old, err := store.AdmitToken(mine, t, now, limit)
		if err != nil {
			return err
		}
		if err := db.deleteHashes(tx, "admin_tokens", old); err != nil {
			return err
		}
		expired = len(old)
		data, err := jsonb(t)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "INSERT INTO admin_tokens (hash, admin, id, data) VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING", hash[:], admin, t.ID, data)
		if err == nil && tag.RowsAffected() == 0 {
			return store.ErrTokenSecretTaken
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("add admin token: %w", err)
	}
	return expired, nil
}

// AdminTokens returns the tokens of the named admin, expired ones too,
// oldest first. ENOTFOUND when the admin does not exist.
func (db *DB) AdminTokens(name string) ([]deviceupdate.AdminToken, error) {
	out := []deviceupdate.AdminToken{}
	err := db.view(func(tx pgx.Tx) error {
		if ok, err := db.adminExists(tx, name); err != nil || !ok {
			return store.ErrorOr(err, store.NoAdmin(name))
		}
		tokens, err := listJSON[deviceupdate.AdminToken](db.context(), tx, "SELECT data FROM admin_tokens WHERE admin = $1 ORDER BY hash", strings.ToLower(name))
		out = append(out, tokens...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list admin tokens: %w", err)
	}
	store.SortTokens(out)
	return out, nil
}

// RevokeAdminToken deletes one of the named admin's tokens by its ID and
// returns it; ENOTFOUND when the admin has no token of that ID.
func (db *DB) RevokeAdminToken(name, id string) (deviceupdate.AdminToken, error) {
	var out deviceupdate.AdminToken
	err := db.write("", func(tx pgx.Tx) error {
		found, err := getJSON(db.context(), tx, &out, "DELETE FROM admin_tokens WHERE admin = $1 AND id = $2 RETURNING data", strings.ToLower(name), id)
		if err == nil && !found {
			return store.NoToken(name, id)
		}
		return err
	})
	if err != nil {
		return deviceupdate.AdminToken{}, fmt.Errorf("revoke admin token: %w", err)
	}
	return out, nil
}

// withAdmin reads, in one query, the record of key in table (hash →
// data, admin) and the record of its admin as stored now (found false
// when there is none): what a request's token or session is checked
// against.
func withAdmin[T any](db *DB, table string, key store.SecretHash) (rec T, found bool, admin store.AdminRecord, adminFound bool, err error) {
	err = db.view(func(tx pgx.Tx) error {
		var raw, rawAdmin []byte
		err := tx.QueryRow(db.context(), "SELECT r.data, a.data FROM "+table+" r LEFT JOIN admins a ON a.name = r.admin WHERE r.hash = $1", key[:]).Scan(&raw, &rawAdmin)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		found = true
		if err := jsonUnmarshal(raw, &rec); err != nil {
			return err
		}
		if adminFound = rawAdmin != nil; adminFound {
			return jsonUnmarshal(rawAdmin, &admin)
		}
		return nil
	})
	return rec, found, admin, adminFound, err
}

// TokenAdmin returns the admin whose live token has the secret of hash,
// with their current role. Every refusal is the same EUNAUTHORIZED.
func (db *DB) TokenAdmin(hash store.SecretHash, now time.Time) (deviceupdate.Admin, deviceupdate.AdminToken, error) {
	t, found, admin, adminFound, err := withAdmin[deviceupdate.AdminToken](db, "admin_tokens", hash)
	if err != nil || !found || t.Expired(now) || !adminFound {
		return deviceupdate.Admin{}, deviceupdate.AdminToken{}, store.ErrorOr(err, store.ErrBadToken)
	}
	return admin.Admin, t, nil
}

// AddSession stores a session of an existing admin, with their role now.
// Expired sessions, of every admin, are deleted first; when the admin has
// limit live sessions, the oldest end (store.EndSessions). It returns how
// many sessions it ended. ENOTFOUND when the admin no longer exists.
func (db *DB) AddSession(s store.NewSession, now time.Time, limit int) (ended int, err error) {
	err = db.write("", func(tx pgx.Tx) error {
		ctx := db.context()
		var admin store.AdminRecord
		found, err := getJSON(ctx, tx, &admin, "SELECT data FROM admins WHERE name = $1", strings.ToLower(s.Admin.Name))
		switch {
		case err != nil:
			return err
		case !found:
			return store.NoAdmin(s.Admin.Name)
		}
		all, err := keyed[store.SessionRecord](tx, ctx, "SELECT hash, data FROM sessions ORDER BY hash")
		if err != nil {
			return err
		}
		old := store.EndSessions(all, s.Admin.Name, now, limit)
		if err := db.deleteHashes(tx, "sessions", old); err != nil {
			return err
		}
		ended = len(old)
		data, err := jsonb(store.NewSessionRecord(admin.Admin, s))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO sessions (hash, admin, data) VALUES ($1, $2, $3) ON CONFLICT (hash) DO UPDATE SET admin = excluded.admin, data = excluded.data",
			s.Hash[:], strings.ToLower(admin.Name), data)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("add session: %w", err)
	}
	return ended, nil
}

// Session returns the live session of hash. A session expired, or whose
// admin was removed or changed role, is deleted and refused with
// EUNAUTHORIZED. A live one is marked seen at now when it was last marked
// touchEvery ago or more: a write per request would be a commit per
// click, and idle expiry does not need finer.
func (db *DB) Session(hash store.SecretHash, now time.Time, touchEvery time.Duration) (deviceupdate.Session, error) {
	rec, found, admin, adminFound, err := withAdmin[store.SessionRecord](db, "sessions", hash)
	switch {
	case err != nil:
		return deviceupdate.Session{}, err
	case !found:
		return deviceupdate.Session{}, store.ErrNoSession
	case !rec.Live(admin.Admin, adminFound, now):
		_, err := db.EndSession(hash)
		return deviceupdate.Session{}, store.ErrorOr(err, store.ErrNoSession)
	}
	s := rec.Session(admin.Admin)
	if now.Sub(rec.SeenAt) < touchEvery {
		return s, nil
	}
	err = db.write("", func(tx pgx.Tx) error {
		ctx := db.context()
		var cur store.SessionRecord
		found, err := getJSON(ctx, tx, &cur, "SELECT data FROM sessions WHERE hash = $1", hash[:])
		if err != nil || !found { // signed out meanwhile
			return store.ErrorOr(err, store.ErrNoSession)
		}
		cur.SeenAt = now
		data, err := jsonb(cur)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE sessions SET data = $2 WHERE hash = $1", hash[:], data)
		return err
	})
	if err != nil {
		return deviceupdate.Session{}, err
	}
	s.SeenAt = now
	return s, nil
}

// EndSession deletes the session of hash and returns the name of its
// admin ("" when there was none).
func (db *DB) EndSession(hash store.SecretHash) (admin string, err error) {
	err = db.write("", func(tx pgx.Tx) error {
		var rec store.SessionRecord
		found, err := getJSON(db.context(), tx, &rec, "DELETE FROM sessions WHERE hash = $1 RETURNING data", hash[:])
		admin = ""
		if found {
			admin = rec.Admin
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("end session: %w", err)
	}
	return admin, nil
}
