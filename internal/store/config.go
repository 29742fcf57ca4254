package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// ConfigOverrides returns the settings stored at the global scope and at
// scope (the same map twice when scope is global).
func (db *DB) ConfigOverrides(scope string) (global, site map[string]string, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		global, site, err = readOverrides(tx, scope)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read configuration: %w", err)
	}
	return global, site, nil
}

func readOverrides(tx *bolt.Tx, scope string) (global, site map[string]string, err error) {
	b := tx.Bucket(bucketConfig)
	global, site = map[string]string{}, map[string]string{}
	if _, err := getJSON(b, []byte(deviceupdate.ScopeGlobal), &global); err != nil {
		return nil, nil, err
	}
	if scope == deviceupdate.ScopeGlobal {
		return global, global, nil
	}
	if _, err := getJSON(b, []byte(scope), &site); err != nil {
		return nil, nil, err
	}
	return global, site, nil
}

// ScopeConfig is the overrides in force at one scope.
type ScopeConfig struct {
	Scope  string            // "global", or "site:<name>" with the site spelled as it was created
	Global map[string]string // the global overrides
	Site   map[string]string // the scope's own (the global ones again for the global scope)
}

// ScopeConfig returns the overrides at scope; a site that does not exist
// is ENOTFOUND.
func (db *DB) ScopeConfig(scope string) (ScopeConfig, error) {
	var sc ScopeConfig
	err := db.view(func(tx *bolt.Tx) (err error) {
		sc, err = readScope(tx, scope)
		return err
	})
	if err != nil {
		return sc, fmt.Errorf("read configuration: %w", err)
	}
	return sc, nil
}

func readScope(tx *bolt.Tx, scope string) (ScopeConfig, error) {
	canon, err := siteScope(tx, scope)
	if err != nil {
		return ScopeConfig{}, err
	}
	global, site, err := readOverrides(tx, canon)
	return ScopeConfig{Scope: canon, Global: global, Site: site}, err
}

// SetConfig applies checked settings at scope in one transaction: a value
// sets the override, an empty value removes it. A site that does not
// exist is ENOTFOUND, checked in the same transaction. It returns the
// overrides at the scope before, and the overrides in force after.
func (db *DB) SetConfig(scope string, settings map[string]string) (before map[string]string, after ScopeConfig, err error) {
	err = db.update(func(tx *bolt.Tx) error {
		canon, err := siteScope(tx, scope)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketConfig)
		cur := map[string]string{}
		if _, err := getJSON(b, []byte(canon), &cur); err != nil {
			return err
		}
		before = applyOverrides(cur, settings)
		if err := putJSON(b, []byte(canon), cur); err != nil {
			return err
		}
		after, err = readScope(tx, canon)
		return err
	})
	if err != nil {
		return nil, ScopeConfig{}, fmt.Errorf("set configuration: %w", err)
	}
	return before, after, nil
}

// applyOverrides applies settings to cur (an empty value removes the
// override) and returns a copy of cur from before.
func applyOverrides(cur, settings map[string]string) (before map[string]string) {
	before = make(map[string]string, len(cur))
	for k, v := range cur {
		before[k] = v
	}
	for k, v := range settings {
		if v == "" {
			delete(cur, k)
		} else {
			cur[k] = v
		}
	}
	return before
}
