package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The kinds of record Export hands out: the store's buckets, named as
// they are in the file. pgstore's tables carry the same records, one
// table per kind (internal/pgstore/migrations).
const (
	KindMeta           = "meta"
	KindUpdates        = "updates"
	KindRules          = "rules"
	KindInProgress     = "inprogress"
	KindTestDevices    = "testdevices"
	KindConfig         = "config"
	KindSites          = "sites"
	KindDeviceConfigs  = "deviceconfig"
	KindUsers          = "users"
	KindAdmins         = "admins"
	KindTokens         = "admintokens"
	KindSessions       = "sessions"
	KindDevices        = "devices"
	KindRollouts       = "rollouts"
	KindRolloutDevices = "rolloutdevices"
)

// Meta keys Export hands out with KindMeta.
const (
	MetaCreated   = "created"   // when the store was made, RFC 3339
	MetaAuditHead = "auditHead" // the audit trail's head, an audit.Head in JSON
)

// Record is one record of the store as it is kept: its kind (bucket),
// key and value bytes, the JSON the store wrote. Sub is the inner key of
// the one kind kept two levels deep, KindRolloutDevices: Key is then the
// rollout's ID and Sub the device's.
type Record struct {
	Kind  string
	Key   []byte
	Sub   []byte
	Value []byte
}

// exported lists the kinds Export walks, in order: what a record refers
// to (a rule, an admin) comes before what refers to it.
var exported = [][]byte{bucketMeta, bucketRules, bucketUpdates, bucketInProgress, bucketTestDev, bucketConfig,
	bucketSites, bucketDevConf, bucketUsers, bucketAdmins, bucketTokens, bucketSessions, bucketDevices,
	bucketRollouts, bucketRolloutDevices}

// Export hands every record of the store to fn, as stored, in one read
// transaction, so that the records are those of one moment. Meta records
// are handed but for the schema version (a reader of Records knows the
// layout of SchemaVersion). The slices are valid only during the call to
// fn. An error of fn stops the walk and is returned.
//
// `deviceupdate migrate` copies a stopped server's state into a pool with
// it, so that the records move as they are rather than re-derived.
func (db *DB) Export(fn func(Record) error) error {
	err := db.view(func(tx *bolt.Tx) error {
		for _, name := range exported {
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			kind := string(name)
			err := b.ForEach(func(k, v []byte) error {
				switch {
				case kind == KindMeta && string(k) == string(keySchema):
					return nil
				case v != nil:
					return fn(Record{Kind: kind, Key: k, Value: v})
				case kind != KindRolloutDevices:
					return fmt.Errorf("bucket %s holds a bucket %q where records belong", kind, k)
				}
				return b.Bucket(k).ForEach(func(sub, v []byte) error {
					if v == nil {
						return fmt.Errorf("bucket %s/%s holds a bucket %q where records belong", kind, k, sub)
					}
					return fn(Record{Kind: kind, Key: k, Sub: sub, Value: v})
				})
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("export store %s: %w", db.path, err)
	}
	return nil
}
