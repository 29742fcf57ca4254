// Package doctor checks a deployment's dependencies, as Lync's list of
// them did (SPEC §8): the discovery name, the server certificate's names,
// trust and lifetime, the clock, the endpoints and the disk. Each check is
// a Result with a status and, when it fails, what to do.
//
// The checks on certificates, clocks and disks are plain functions of
// their inputs, table-tested; Run gathers the inputs over the network and
// runs them all.
package doctor

import (
	"fmt"
	"strings"
)

// Status is the outcome of one check.
type Status string

// Statuses. A skipped check could not be run (its input is missing, or a
// check it depends on failed); it does not fail the run by itself.
const (
	OK   Status = "ok"
	Fail Status = "FAIL"
	Skip Status = "skip"
)

// Names of the checks, in the order Run reports them.
const (
	CheckDNS          = "dns"
	CheckTLS          = "tls"
	CheckTLSMin       = "tls-min"
	CheckSANs         = "cert-sans"
	CheckChain        = "cert-chain"
	CheckValidity     = "cert-validity"
	CheckKey          = "cert-key"
	CheckClock        = "clock"
	CheckHTTPS        = "https"
	CheckPoll         = "poll"
	CheckPollExternal = "poll-external"
	CheckServer       = "server"
	CheckAudit        = "audit"
	CheckHTTP         = "http"
	CheckExternal     = "external"
	CheckDisk         = "disk"
)

// Result is the outcome of one check.
type Result struct {
	Check   string `json:"check"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"` // what to do, when the check failed
}

// String formats r as one line: the status in a column of six, the check,
// what was found and, after a failure, what to do.
func (r Result) String() string {
	s := fmt.Sprintf("%-6s%s: %s", r.Status, r.Check, r.Message)
	if r.Fix != "" {
		s += "; " + r.Fix
	}
	return s
}

// Failed returns the number of failed checks.
func Failed(results []Result) int {
	n := 0
	for _, r := range results {
		if r.Status == Fail {
			n++
		}
	}
	return n
}

func ok(check, format string, args ...any) Result {
	return Result{Check: check, Status: OK, Message: fmt.Sprintf(format, args...)}
}

func fail(check, fix, format string, args ...any) Result {
	return Result{Check: check, Status: Fail, Message: fmt.Sprintf(format, args...), Fix: fix}
}

func skip(check, format string, args ...any) Result {
	return Result{Check: check, Status: Skip, Message: fmt.Sprintf(format, args...)}
}

// joinAnd joins words as "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
