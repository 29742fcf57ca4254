-- What the front ends of a pool share of a staged rollout's offers, so
-- that the offer decision (deviceupdate.Decide) is the pool's and not each
-- node's: a node knows only the offers it made itself.

-- rollout_offers: every device a rollout newly offered its version to,
-- written when the offer is made (not by the inventory's flush a second
-- later), so that a device offered by one node keeps the version when it
-- polls another, whatever the window or the cap say then. Rows are
-- written once per device and rollout: at most the cap per hour, or a
-- wave's members once each.
CREATE TABLE rollout_offers (
	rollout_id text NOT NULL,
	device_id  text COLLATE "C" NOT NULL,
	offered_at timestamptz NOT NULL,
	PRIMARY KEY (rollout_id, device_id)
);

-- rollout_offer_counts: a rollout's new offers per period of its
-- --max-per-hour (Unix time / period, the node's --rollout-hour), counted
-- across the pool: a new offer increments its period's row only while it
-- is below the cap, so the pool makes at most the cap, not a node each.
CREATE TABLE rollout_offer_counts (
	rollout_id text NOT NULL,
	period     bigint NOT NULL,
	offers     integer NOT NULL,
	PRIMARY KEY (rollout_id, period)
);
