//go:build deps

// This file pins the modules of the design that no code imports yet, so
// that go.mod records the versions they were checked against and
// `go mod tidy` keeps them. It is never built (the deps tag is never set).
package deviceupdate

import (
	_ "github.com/miekg/dns" // the ucupdates-r2 discovery responder (SPEC §8)
)
