package deviceupdate

import "time"

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
