package pgstore

import (
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate"
)

// Sites returns every site, ordered by name.
func (db *DB) Sites() ([]deviceupdate.Site, error) {
	out, err := list[deviceupdate.Site](db, "sites", "SELECT data FROM sites")
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, err
}

// PutSite stores a normalised site, replacing the one of the same name
// (whose previous value it returns, nil for a new site). A subnet another
// site holds is an ECONFLICT, checked in the same transaction.
func (db *DB) PutSite(s deviceupdate.Site) (*deviceupdate.Site, error) {
	var before *deviceupdate.Site
	asGiven := s.Name
	err := db.write("sites", func(tx pgx.Tx) error {
		before, s.Name = nil, asGiven
		all, err := listJSON[deviceupdate.Site](db.context(), tx, "SELECT data FROM sites")
		if err != nil {
			return err
		}
		others := all[:0]
		for _, other := range all {
			if strings.EqualFold(other.Name, s.Name) {
				before = &other
				s.Name = other.Name // a site keeps the spelling it was created with
				continue
			}
			others = append(others, other)
		}
		if _, err := deviceupdate.NewSiteMap(append(others, s)); err != nil {
			return err
		}
		data, err := jsonb(s)
		if err != nil {
			return err
		}
		_, err = tx.Exec(db.context(), "INSERT INTO sites (name, data) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET data = excluded.data", strings.ToLower(s.Name), data)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("put site: %w", err)
	}
	return before, nil
}

// errNoSite is the answer to a site that does not exist.
func errNoSite(name string) error {
	return deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no site named %q; `deviceupdate site list` shows the sites, `deviceupdate site set %s --subnet CIDR` creates it",
		name, name)
}

// findSite returns the site of that name (in any letter case), or nil.
func (db *DB) findSite(tx pgx.Tx, name string) (*deviceupdate.Site, error) {
	var s deviceupdate.Site
	found, err := getJSON(db.context(), tx, &s, "SELECT data FROM sites WHERE name = $1", strings.ToLower(name))
	if err != nil || !found {
		return nil, err
	}
	return &s, nil
}

// siteScope checks that the site a scope names exists, in the caller's
// transaction, and returns the scope with the site spelled as it was
// created: "site:redmond" becomes "site:Redmond". The global scope is
// returned as it is.
func (db *DB) siteScope(tx pgx.Tx, scope string) (string, error) {
	name, isSite := strings.CutPrefix(scope, "site:")
	if !isSite {
		return scope, nil
	}
	s, err := db.findSite(tx, name)
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", errNoSite(name)
	}
	return "site:" + s.Name, nil
}

// maxNamed bounds the names a refusal lists.
const maxNamed = 5

// RemoveSite deletes a site and its setting overrides in one transaction,
// and returns the site and the overrides it had. ENOTFOUND when there is
// none; ECONFLICT, naming them, while test devices are limited to it:
// removing the site would silently make them test devices nowhere.
func (db *DB) RemoveSite(name string) (deviceupdate.Site, map[string]string, error) {
	var s deviceupdate.Site
	var settings map[string]string
	err := db.write("sites", func(tx pgx.Tx) error {
		found, err := db.findSite(tx, name)
		if err != nil {
			return err
		}
		if found == nil {
			return errNoSite(name)
		}
		s = *found
		devices, err := listJSON[deviceupdate.TestDevice](db.context(), tx, "SELECT data FROM test_devices ORDER BY name")
		if err != nil {
			return err
		}
		var limited []string
		for _, d := range devices {
			if strings.EqualFold(d.Scope, "site:"+s.Name) {
				limited = append(limited, fmt.Sprintf("%q", d.Name))
			}
		}
		if len(limited) > 0 {
			shown := strings.Join(limited[:min(len(limited), maxNamed)], ", ")
			if len(limited) > maxNamed {
				shown += fmt.Sprintf(" and %d more", len(limited)-maxNamed)
			}
			who := "test device " + shown + " is"
			if len(limited) > 1 {
				who = "test devices " + shown + " are"
			}
			return deviceupdate.Errorf(deviceupdate.ECONFLICT, "site %s is in use: %s limited to it; remove them first (`deviceupdate testdevice remove NAME`), then the site",
				s.Name, who)
		}
		if settings, err = db.deleteScope(tx, s.Name); err != nil {
			return err
		}
		_, err = tx.Exec(db.context(), "DELETE FROM sites WHERE name = $1", strings.ToLower(s.Name))
		return err
	})
	if err != nil {
		return s, nil, fmt.Errorf("remove site: %w", err)
	}
	return s, settings, nil
}

// deleteScope removes the setting overrides of a site, whatever the case
// they were stored under, and returns them.
func (db *DB) deleteScope(tx pgx.Tx, site string) (map[string]string, error) {
	rows, err := tx.Query(db.context(), "DELETE FROM config WHERE lower(scope) = lower($1) RETURNING data", "site:"+site)
	if err != nil {
		return nil, err
	}
	removed := map[string]string{}
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&raw}, func() error { return jsonUnmarshal(raw, &removed) })
	return removed, err
}

// DeviceConfigs returns every device's setting overrides, by device ID.
func (db *DB) DeviceConfigs() (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	err := db.view(func(tx pgx.Tx) error {
		rows, err := tx.Query(db.context(), "SELECT device_id, data FROM device_configs")
		if err != nil {
			return err
		}
		var id string
		var raw []byte
		_, err = pgx.ForEachRow(rows, []any{&id, &raw}, func() error {
			m := map[string]string{}
			out[id] = m
			return jsonUnmarshal(raw, &m)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read device settings: %w", err)
	}
	return out, nil
}

// DeviceConfig returns one device's setting overrides (empty when none).
func (db *DB) DeviceConfig(id string) (map[string]string, error) {
	var m map[string]string
	err := db.view(func(tx pgx.Tx) (err error) {
		m, err = db.deviceConfig(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read device settings: %w", err)
	}
	return m, nil
}

func (db *DB) deviceConfig(tx pgx.Tx, id string) (map[string]string, error) {
	m := map[string]string{}
	if _, err := getJSON(db.context(), tx, &m, "SELECT data FROM device_configs WHERE device_id = $1", id); err != nil {
		return nil, err
	}
	return m, nil
}

// SetDeviceConfig applies checked overrides to one device in one
// transaction (an empty value removes one) and returns them before and
// after.
func (db *DB) SetDeviceConfig(id string, settings map[string]string) (before, after map[string]string, err error) {
	err = db.write("deviceconfig", func(tx pgx.Tx) error {
		cur, err := db.deviceConfig(tx, id)
		if err != nil {
			return err
		}
		before = applyOverrides(cur, settings)
		after = cur
		if len(cur) == 0 {
			_, err := tx.Exec(db.context(), "DELETE FROM device_configs WHERE device_id = $1", id)
			return err
		}
		data, err := jsonb(cur)
		if err != nil {
			return err
		}
		_, err = tx.Exec(db.context(), "INSERT INTO device_configs (device_id, data) VALUES ($1, $2) ON CONFLICT (device_id) DO UPDATE SET data = excluded.data", id, data)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("set device settings: %w", err)
	}
	return before, after, nil
}
