package pgstore

import (
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/store"
	"github.com/deviceupdate/deviceupdate/internal/store/storetest"
)

// TestBehaviour runs the behaviour every backend keeps (storetest)
// against PostgreSQL, each case on a fresh database.
func TestBehaviour(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}
