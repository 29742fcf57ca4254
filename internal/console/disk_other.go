//go:build !linux

package console

import "errors"

func freeSpace(string) (uint64, uint64, error) {
	return 0, 0, errors.New("not measured on this system")
}
