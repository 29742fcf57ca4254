// Package pool holds what serve needs to run as one front end of a pool
// (SPEC §11) beyond the store and the file store themselves: the check
// of --store, and the rounds of background work one node of the pool
// does at a time.
package pool

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CheckURL checks a --store value: a PostgreSQL URL naming a host and a
// database. It returns the URL with any password masked, for messages
// and logs; its errors never repeat a password.
func CheckURL(s string) (redacted string, err error) {
	const want = "want postgres://USER@HOST:PORT/DATABASE (the password from PGPASSWORD or ~/.pgpass), or nothing for the embedded store in --data"
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("not a PostgreSQL URL; " + want)
	}
	redacted = u.Redacted()
	if u.Host == "" && u.Query().Get("host") == "" {
		return "", fmt.Errorf("%s names no host; %s", redacted, want)
	}
	if strings.Trim(u.Path, "/") == "" {
		return "", fmt.Errorf("%s names no database; %s", redacted, want)
	}
	if _, err := pgxpool.ParseConfig(s); err != nil {
		// pgx masks the password of the string it quotes.
		return "", fmt.Errorf("%s: %w", redacted, unwrapParse(err))
	}
	return redacted, nil
}

// unwrapParse returns the innermost cause of a pgx parse error: the outer
// ones repeat the whole connection string.
func unwrapParse(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// Locks is what once-per-pool work needs of a pool's store
// (pgstore.DB.TryLock).
type Locks interface {
	// TryLock takes the pool-wide lock of name, or reports false when
	// another node holds it.
	TryLock(ctx context.Context, name string) (unlock func(), ok bool)
}

// Round runs one round of background work that one node of a pool does
// at a time: fn runs when this node takes the lock of name, and not
// when another node holds it (that node does the round). With locks nil,
// a single server, fn always runs. It reports whether fn ran.
func Round(ctx context.Context, locks Locks, name string, fn func()) bool {
	if locks == nil {
		fn()
		return true
	}
	unlock, ok := locks.TryLock(ctx, name)
	if !ok {
		return false
	}
	defer unlock()
	fn()
	return true
}
