package pgstore

import (
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/store"
)

// ConfigOverrides returns the settings stored at the global scope and at
// scope (the same map twice when scope is global).
func (db *DB) ConfigOverrides(scope string) (global, site map[string]string, err error) {
	err = db.view(func(tx pgx.Tx) error {
		global, site, err = db.readOverrides(tx, scope)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read configuration: %w", err)
	}
	return global, site, nil
}

func (db *DB) readOverrides(tx pgx.Tx, scope string) (global, site map[string]string, err error) {
	if global, err = db.scopeOverrides(tx, deviceupdate.ScopeGlobal); err != nil {
		return nil, nil, err
	}
	if scope == deviceupdate.ScopeGlobal {
		return global, global, nil
	}
	if site, err = db.scopeOverrides(tx, scope); err != nil {
		return nil, nil, err
	}
	return global, site, nil
}

// scopeOverrides returns the overrides stored under scope (empty when
// none).
func (db *DB) scopeOverrides(tx pgx.Tx, scope string) (map[string]string, error) {
	m := map[string]string{}
	if _, err := getJSON(db.context(), tx, &m, "SELECT data FROM config WHERE scope = $1", scope); err != nil {
		return nil, err
	}
	return m, nil
}

// ScopeConfig returns the overrides at scope; a site that does not exist
// is ENOTFOUND.
func (db *DB) ScopeConfig(scope string) (store.ScopeConfig, error) {
	var sc store.ScopeConfig
	err := db.view(func(tx pgx.Tx) (err error) {
		sc, err = db.readScope(tx, scope)
		return err
	})
	if err != nil {
		return sc, fmt.Errorf("read configuration: %w", err)
	}
	return sc, nil
}

func (db *DB) readScope(tx pgx.Tx, scope string) (store.ScopeConfig, error) {
	canon, err := db.siteScope(tx, scope)
	if err != nil {
		return store.ScopeConfig{}, err
	}
	global, site, err := db.readOverrides(tx, canon)
	return store.ScopeConfig{Scope: canon, Global: global, Site: site}, err
}

// SetConfig applies checked settings at scope in one transaction: a value
// sets the override, an empty value removes it. A site that does not
// exist is ENOTFOUND, checked in the same transaction. It returns the
// overrides at the scope before, and the overrides in force after.
func (db *DB) SetConfig(scope string, settings map[string]string) (before map[string]string, after store.ScopeConfig, err error) {
	err = db.write("config", func(tx pgx.Tx) error {
		canon, err := db.siteScope(tx, scope)
		if err != nil {
			return err
		}
		cur, err := db.scopeOverrides(tx, canon)
		if err != nil {
			return err
		}
		before = applyOverrides(cur, settings)
		data, err := jsonb(cur)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(db.context(), "INSERT INTO config (scope, data) VALUES ($1, $2) ON CONFLICT (scope) DO UPDATE SET data = excluded.data", canon, data); err != nil {
			return err
		}
		after, err = db.readScope(tx, canon)
		return err
	})
	if err != nil {
		return nil, store.ScopeConfig{}, fmt.Errorf("set configuration: %w", err)
	}
	return before, after, nil
}

// applyOverrides applies settings to cur (an empty value removes the
// override) and returns a copy of cur from before.
func applyOverrides(cur, settings map[string]string) (before map[string]string) {
	before = maps.Clone(cur)
	for k, v := range settings {
		if v == "" {
			delete(cur, k)
			continue
		}
		cur[k] = v
	}
	return before
}
