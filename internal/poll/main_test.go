package poll_test

import (
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/pgtest"
)

// TestMain lets BenchmarkPollStore make databases on one throwaway
// PostgreSQL server, started by the first of them and stopped at the end.
func TestMain(m *testing.M) { pgtest.Main(m) }
