// Package deviceupdate holds the domain of the deviceupdate service: the
// types and rules that describe firmware updates for IP phones, independent
// of how they are stored (internal/store) or served (internal/handler).
//
// It imports neither the web framework nor the database. Packages that talk
// to the outside world implement or consume what is declared here, and the
// binary in cmd/deviceupdate wires them together.
package deviceupdate

import (
	"time"
)

// ServerInfo describes a running service. The admin API reports it so that
// a client can tell which server, and which build, it is talking to.
type ServerInfo struct {
	Version       string    `json:"version"`
	Domain        string    `json:"domain"`
	StartedAt     time.Time `json:"startedAt"`
	SchemaVersion int       `json:"schemaVersion"`
	// Listeners maps each listener (https, http, dns) to its bound
	// address; `deviceupdate doctor` reads it to find the internal one.
	Listeners map[string]string `json:"listeners,omitempty"`
	// TLSMin is the oldest TLS version the HTTPS listeners accept
	// (serve --tls-min): "1.2" unless lowered for Lync Phone Edition.
	TLSMin string `json:"tlsMin,omitempty"`
}
