//go:build windows

package peer

import (
	"errors"
	"syscall"
)

// setSockopts sets SO_REUSEADDR and SO_BROADCAST on a discovery socket.
func setSockopts(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = errors.Join(
			syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1),
			syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1),
		)
	})
	return errors.Join(err, serr)
}
