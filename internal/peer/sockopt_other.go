//go:build !unix && !windows

package peer

import "syscall"

// setSockopts does nothing where socket options are not available.
func setSockopts(network, address string, c syscall.RawConn) error { return nil }
