package main

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits are the numeric settings of serve, parsed.
type Limits struct {
	Polls, Downloads, Uploads                         int
	ExternalPolls, ExternalDownloads, ExternalUploads int
	LogQuota                                          int64
	// MaxDevices caps the inventory (--max-devices).
	MaxDevices int
}

// maxMaxDevices bounds --max-devices far beyond any fleet.
const maxMaxDevices = 1_000_000_000

// Limits parses the herd-control limits and the log quota.
func (c *Config) Limits() (Limits, error) {
	var l Limits
	for _, f := range []struct {
		flag, v string
		dst     *int
	}{
		{"max-polls", c.MaxPolls, &l.Polls}, {"max-downloads", c.MaxDownloads, &l.Downloads}, {"max-uploads", c.MaxUploads, &l.Uploads},
		{"max-external-polls", c.MaxExternalPolls, &l.ExternalPolls}, {"max-external-downloads", c.MaxExternalDownloads, &l.ExternalDownloads},
		{"max-external-uploads", c.MaxExternalUploads, &l.ExternalUploads},
	} {
		n, err := strconv.Atoi(strings.TrimSpace(f.v))
		if err != nil || n < 1 || n > 1<<20 {
			return l, fmt.Errorf("--%s %q: want a whole number from 1 to 1048576", f.flag, f.v)
		}
		*f.dst = n
	}
	q, err := parseSize(c.LogQuota)
	if err != nil {
		return l, fmt.Errorf("--log-quota %q: want a size such as 2GiB, 500MiB or 1073741824 (0 for no quota)", c.LogQuota)
	}
	l.LogQuota = q
	n, err := strconv.Atoi(strings.TrimSpace(c.MaxDevices))
	if err != nil || n < 1 || n > maxMaxDevices {
		return l, fmt.Errorf("--max-devices %q: want a whole number from 1 to %d", c.MaxDevices, maxMaxDevices)
	}
	l.MaxDevices = n
	return l, nil
}

// parseSize reads a byte count with an optional KiB, MiB, GiB or TiB
// suffix (KB, MB, GB and TB are read as the same powers of two).
func parseSize(s string) (int64, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for i, prefix := range "KMGT" {
		for _, suffix := range []string{"IB", "B", ""} {
			if rest, ok := strings.CutSuffix(u, string(prefix)+suffix); ok && rest != "" && mult == 1 {
				u, mult = strings.TrimSpace(rest), int64(1)<<(10*(i+1))
			}
		}
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("not a size")
	}
	return n * mult, nil
}
