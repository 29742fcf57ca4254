package pgstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deviceupdate/deviceupdate/internal/store"
)

// A staged rollout's new offers, shared by the front ends of a pool
// (tables rollout_offers and rollout_offer_counts): see store.SharedOffers.

var _ store.SharedOffers = (*DB)(nil)

// errOfferedMeanwhile rolls back an offer another node recorded first.
var errOfferedMeanwhile = errors.New("offered meanwhile by another node")

// OfferRollout records a new offer of the rollout's version to device at
// at, counted in period against max (0: no cap). It reports false, and
// records nothing, when the pool's offers of period already reached max;
// true when it recorded the offer or the device had one already (which
// counts no second time).
//
// It runs READ COMMITTED: the period's row, incremented only while below
// max, is locked by the increment until commit, so of the nodes offering
// at once each sees the others' counts; of two offering the same device
// at once, the second's insert waits for the first's and, finding its
// row, rolls back its own count.
func (db *DB) OfferRollout(rolloutID, device string, at time.Time, period int64, max int) (offered bool, err error) {
	ctx := db.context()
	err = db.transact(pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		offered = false
		var known bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM rollout_offers WHERE rollout_id = $1 AND device_id = $2)", rolloutID, device).Scan(&known); err != nil {
			return err
		}
		if known {
			offered = true
			return nil
		}
		if max > 0 {
			var n int
			err := tx.QueryRow(ctx, `INSERT INTO rollout_offer_counts AS c (rollout_id, period, offers) VALUES ($1, $2, 1)
ON CONFLICT (rollout_id, period) DO UPDATE SET offers = c.offers + 1 WHERE c.offers < $3 RETURNING c.offers`, rolloutID, period, max).Scan(&n)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // the pool made its cap of new offers this period
			}
			if err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, "INSERT INTO rollout_offers (rollout_id, device_id, offered_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", rolloutID, device, at)
		if err != nil {
			return err
		}
		offered = true
		if tag.RowsAffected() == 0 {
			return errOfferedMeanwhile
		}
		return nil
	})
	if errors.Is(err, errOfferedMeanwhile) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("offer rollout %s to device %s: %w", rolloutID, device, err)
	}
	return offered, nil
}

// RolloutOffered reports whether the rollout offered its version to device
// on any node. One statement outside a transaction: one round trip.
func (db *DB) RolloutOffered(rolloutID, device string) (bool, error) {
	var found bool
	err := db.pool.QueryRow(db.context(), "SELECT EXISTS (SELECT 1 FROM rollout_offers WHERE rollout_id = $1 AND device_id = $2)", rolloutID, device).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("rollout %s offered device %s: %w", rolloutID, device, err)
	}
	return found, nil
}
