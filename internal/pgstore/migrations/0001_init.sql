-- The state of a pool: everything the embedded store (internal/store)
-- keeps in its bbolt buckets, one table per bucket.
--
-- A record is kept as the JSON the embedded store writes (column data),
-- so that both stores encode the domain types one way, `deviceupdate
-- migrate` copies records as they are, and a field added to a domain type
-- needs no migration, as it needs none in bbolt. Columns beside it hold
-- what SQL must find, order, constrain or lock by: keys, the lower-cased
-- names that make names unique in any letter case, and what a query
-- filters on. Go code keeps those columns equal to the record's fields.
--
-- Applied by pgstore.Open inside one transaction, under an advisory lock,
-- and recorded in schema_version (which Open creates).

-- meta: what bucket "meta" held besides the schema version: "created",
-- the time the pool's state was created (RFC 3339).
CREATE TABLE meta (
	key   text PRIMARY KEY,
	value text NOT NULL
);

-- rules: bucket "rules", rule ID (deviceupdate.RuleID, a hash of the
-- lower-cased rule key) → deviceupdate.Rule.
CREATE TABLE rules (
	id   text PRIMARY KEY,
	data jsonb NOT NULL
);

-- updates: bucket "updates", the packages' records: lower(rule key) "@"
-- version → deviceupdate.StoredUpdate. rule_id finds a rule's updates.
CREATE TABLE updates (
	key     text PRIMARY KEY,
	rule_id text NOT NULL,
	version text NOT NULL,
	data    jsonb NOT NULL
);
CREATE INDEX updates_rule_id ON updates (rule_id);

-- in_progress: bucket "inprogress", update folders being changed outside
-- a transaction (an import moving files in, a clear deleting them):
-- lower(rule key) "@" version → updatestore.Change.
CREATE TABLE in_progress (
	key  text PRIMARY KEY,
	data jsonb NOT NULL
);

-- test_devices: bucket "testdevices", lower(name) → deviceupdate.TestDevice.
-- identifier is lower(its MAC or serial number): one test device each.
CREATE TABLE test_devices (
	name       text PRIMARY KEY,
	identifier text NOT NULL UNIQUE,
	data       jsonb NOT NULL
);

-- config: bucket "config", the setting overrides of a scope: "global" or
-- "site:<name>" (the site spelled as it was created) → map of setting →
-- value.
CREATE TABLE config (
	scope text PRIMARY KEY,
	data  jsonb NOT NULL
);

-- sites: bucket "sites", lower(name) → deviceupdate.Site.
CREATE TABLE sites (
	name text PRIMARY KEY,
	data jsonb NOT NULL
);

-- device_configs: bucket "deviceconfig", device ID → map of setting →
-- value (a device's own overrides; no row when it has none).
CREATE TABLE device_configs (
	device_id text PRIMARY KEY,
	data      jsonb NOT NULL
);

-- users: bucket "users", lower(name) → the user and its password hash
-- (store's userRecord: deviceupdate.User, scheme, passwordHash).
CREATE TABLE users (
	name text PRIMARY KEY,
	data jsonb NOT NULL
);

-- admins: bucket "admins", lower(name) → the admin and their password
-- hash, if any (store's adminRecord).
CREATE TABLE admins (
	name text PRIMARY KEY,
	data jsonb NOT NULL
);

-- admin_tokens: bucket "admintokens", SHA-256(secret) →
-- deviceupdate.AdminToken. admin is lower(its admin's name), id its public
-- ID.
CREATE TABLE admin_tokens (
	hash  bytea PRIMARY KEY,
	admin text NOT NULL,
	id    text NOT NULL,
	data  jsonb NOT NULL,
	UNIQUE (admin, id)
);

-- sessions: bucket "sessions", SHA-256(secret) → a console session
-- (store's sessionRecord). admin is lower(its admin's name).
CREATE TABLE sessions (
	hash  bytea PRIMARY KEY,
	admin text NOT NULL,
	data  jsonb NOT NULL
);
CREATE INDEX sessions_admin ON sessions (admin);

-- devices: bucket "devices", the inventory: device ID → deviceupdate.Device.
-- The inventory's flush upserts a batch at once (COPY into a temporary
-- table and one upsert from it), keyed by the device ID. last_active is
-- Device.LastActive(), for pruning. IDs collate as bytes ("C"), as bbolt
-- orders its keys, whatever the database's locale: pages of the inventory
-- walk the primary key in order. Every poll rewrites its device's row, so
-- the table keeps room in its pages (fillfactor) and last_active has no
-- index: the new row version then goes in the same page with no index
-- entry (a HOT update), a third faster for a flush of known devices; a
-- prune, rare, reads the whole table instead.
CREATE TABLE devices (
	id          text COLLATE "C" PRIMARY KEY,
	last_active timestamptz NOT NULL,
	data        jsonb NOT NULL
) WITH (fillfactor = 70);

-- rollouts: bucket "rollouts", rule ID → deviceupdate.Rollout, the rule's
-- latest. id is the rollout's random ID; active is Rollout.Active()
-- (running or paused), which the inventory's flush looks for.
CREATE TABLE rollouts (
	rule_id text PRIMARY KEY,
	id      text NOT NULL UNIQUE,
	active  boolean NOT NULL,
	data    jsonb NOT NULL
);
CREATE INDEX rollouts_active ON rollouts (rule_id) WHERE active;

-- rollout_devices: bucket "rolloutdevices", rollout ID → device ID →
-- deviceupdate.RolloutDevice. A rollout's rows outlive it, as the bucket
-- does (the rule's next rollout has another ID).
CREATE TABLE rollout_devices (
	rollout_id text NOT NULL,
	device_id  text COLLATE "C" NOT NULL, -- listed in byte order, as devices
	data       jsonb NOT NULL,
	PRIMARY KEY (rollout_id, device_id)
);

-- audit_entries: the admin audit trail, which a single server keeps in a
-- file (internal/audit). entry is the entry's JSON line exactly as hashed:
-- type json, not jsonb, because jsonb reorders the keys of an entry's
-- before and after, and the hash chain is over the bytes.
CREATE TABLE audit_entries (
	seq   bigint PRIMARY KEY CHECK (seq > 0),
	at    timestamptz NOT NULL,
	entry json NOT NULL,
	hash  text NOT NULL
);

-- audit_head: the trail's last entry, as bucket "meta" key "auditHead"
-- held it. Its one row is locked (SELECT ... FOR UPDATE) by every append,
-- which orders the appends of all the pool's nodes into one chain, and it
-- shows entries cut off the trail's end.
CREATE TABLE audit_head (
	one  boolean PRIMARY KEY DEFAULT true CHECK (one),
	seq  bigint NOT NULL,
	hash text NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, '');
