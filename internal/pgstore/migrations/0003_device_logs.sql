-- device_logs: the index of a pool's device logs (SPEC §6, §11), which a
-- single server keeps as the files under Logs/Client. A log is named by
-- its path, <LogType>/<device>/<file> (unique: a re-upload replaces it),
-- and its bytes are in the pool's file store under their SHA-256, key
-- (two logs of the same bytes share one object, deleted after the last
-- row naming it).
--
-- path is the list's second order, byte order ("C") as on a single
-- server; modified is in Unix nanoseconds, so that a page's cursor, which
-- carries them, finds its place exactly.
CREATE TABLE device_logs (
	path     text COLLATE "C" PRIMARY KEY,
	log_type text NOT NULL,
	device   text NOT NULL,
	name     text NOT NULL,
	key      text NOT NULL,
	size     bigint NOT NULL,
	modified bigint NOT NULL
);

-- The list's order (newest first, then by path), a clean-up's and the
-- quota's (oldest first).
CREATE INDEX device_logs_order ON device_logs (modified DESC, path);
-- A device's logs.
CREATE INDEX device_logs_device ON device_logs (device);
-- Whether a row still names an object.
CREATE INDEX device_logs_key ON device_logs (key);
