package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// ConfigOverrides returns the settings stored at the global scope and at
// scope (the same map twice when scope is global).
func (db *DB) ConfigOverrides(scope string) (global, site map[string]string, err error) {
	err = db.bolt.View(func(tx *bolt.Tx) error {
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

// SetConfig applies checked settings at scope in one transaction: a value
// sets the override, an empty value removes it. It returns the overrides
// at the scope before, and the global and scope overrides after.
func (db *DB) SetConfig(scope string, settings map[string]string) (before, global, site map[string]string, err error) {
	err = db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketConfig)
		cur := map[string]string{}
		if _, err := getJSON(b, []byte(scope), &cur); err != nil {
			return err
		}
		before = applyOverrides(cur, settings)
		if err := putJSON(b, []byte(scope), cur); err != nil {
			return err
		}
		global, site, err = readOverrides(tx, scope)
		return err
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("set configuration: %w", err)
	}
	return before, global, site, nil
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
