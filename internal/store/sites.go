package store

import (
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/deviceupdate/deviceupdate"
)

// Sites returns every site, ordered by name.
func (db *DB) Sites() ([]deviceupdate.Site, error) {
	out, err := listJSON[deviceupdate.Site](db, bucketSites)
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, err
}

// PutSite stores a normalised site, replacing the one of the same name
// (whose previous value it returns, nil for a new site). A subnet another
// site holds is an ECONFLICT, checked in the same transaction.
func (db *DB) PutSite(s deviceupdate.Site) (*deviceupdate.Site, error) {
	var before *deviceupdate.Site
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSites)
		key := []byte(strings.ToLower(s.Name))
		var all []deviceupdate.Site
		err := b.ForEach(func(k, _ []byte) error {
			var other deviceupdate.Site
			if _, err := getJSON(b, k, &other); err != nil {
				return err
			}
			if string(k) == string(key) {
				before = &other
				s.Name = other.Name // a site keeps the spelling it was created with
				return nil
			}
			all = append(all, other)
			return nil
		})
		if err != nil {
			return err
		}
		if _, err := deviceupdate.NewSiteMap(append(all, s)); err != nil {
			return err
		}
		return putJSON(b, key, s)
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
func findSite(tx *bolt.Tx, name string) (*deviceupdate.Site, error) {
	var s deviceupdate.Site
	found, err := getJSON(tx.Bucket(bucketSites), []byte(strings.ToLower(name)), &s)
	if err != nil || !found {
		return nil, err
	}
	return &s, nil
}

// siteScope checks that the site a scope names exists, in the caller's
// transaction, and returns the scope with the site spelled as it was
// created: "site:redmond" becomes "site:Redmond". The global scope is
// returned as it is.
func siteScope(tx *bolt.Tx, scope string) (string, error) {
	name, isSite := strings.CutPrefix(scope, "site:")
	if !isSite {
		return scope, nil
	}
	s, err := findSite(tx, name)
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
	settings := map[string]string{}
	err := db.update(func(tx *bolt.Tx) error {
		found, err := findSite(tx, name)
		if err != nil {
			return err
		}
		if found == nil {
			return errNoSite(name)
		}
		s = *found
		var limited []string
		td := tx.Bucket(bucketTestDev)
		err = td.ForEach(func(k, _ []byte) error {
			var d deviceupdate.TestDevice
			if _, err := getJSON(td, k, &d); err != nil {
				return err
			}
			if strings.EqualFold(d.Scope, "site:"+s.Name) {
				limited = append(limited, fmt.Sprintf("%q", d.Name))
			}
			return nil
		})
		if err != nil {
			return err
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
		if settings, err = deleteScope(tx.Bucket(bucketConfig), s.Name); err != nil {
			return err
		}
		return tx.Bucket(bucketSites).Delete([]byte(strings.ToLower(s.Name)))
	})
	if err != nil {
		return s, nil, fmt.Errorf("remove site: %w", err)
	}
	return s, settings, nil
}

// deleteScope removes the setting overrides of a site, whatever the case
// they were stored under, and returns them.
func deleteScope(b *bolt.Bucket, site string) (map[string]string, error) {
	var keys [][]byte
	removed := map[string]string{}
	err := b.ForEach(func(k, _ []byte) error {
		if strings.EqualFold(string(k), "site:"+site) {
			keys = append(keys, append([]byte(nil), k...))
			_, err := getJSON(b, k, &removed)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return nil, err
		}
	}
	return removed, nil
}

// DeviceConfigs returns every device's setting overrides, by device ID.
func (db *DB) DeviceConfigs() (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevConf)
		return b.ForEach(func(k, _ []byte) error {
			m := map[string]string{}
			if _, err := getJSON(b, k, &m); err != nil {
				return err
			}
			out[string(k)] = m
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read device settings: %w", err)
	}
	return out, nil
}

// DeviceConfig returns one device's setting overrides (empty when none).
func (db *DB) DeviceConfig(id string) (map[string]string, error) {
	m := map[string]string{}
	err := db.view(func(tx *bolt.Tx) error {
		_, err := getJSON(tx.Bucket(bucketDevConf), []byte(id), &m)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read device settings: %w", err)
	}
	return m, nil
}

// SetDeviceConfig applies checked overrides to one device in one
// transaction (an empty value removes one) and returns them before and
// after.
func (db *DB) SetDeviceConfig(id string, settings map[string]string) (before, after map[string]string, err error) {
	err = db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevConf)
		cur := map[string]string{}
		if _, err := getJSON(b, []byte(id), &cur); err != nil {
			return err
		}
		before = applyOverrides(cur, settings)
		after = cur
		if len(cur) == 0 {
			return b.Delete([]byte(id))
		}
		return putJSON(b, []byte(id), cur)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("set device settings: %w", err)
	}
	return before, after, nil
}
