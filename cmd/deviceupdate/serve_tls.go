package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
)

// tlsVersions are the versions --tls-min names.
var tlsVersions = map[string]uint16{
	"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13,
}

// aeadSuites are the TLS 1.2 suites served by default: ECDHE key exchange
// with AES-GCM or ChaCha20-Poly1305. TLS 1.3's suites are all AEAD and
// Go chooses them itself.
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// legacySuites are added when --tls-min is below 1.2: TLS 1.0 and 1.1 have
// no AEAD suite, and Lync Phone Edition offers AES in CBC mode, with RSA
// key exchange. Go applies the list to every version up to 1.2, so these
// are then accepted in TLS 1.2 too.
var legacySuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// tlsMinVersion reads --tls-min.
func (c *Config) tlsMinVersion() (uint16, error) {
	v, ok := tlsVersions[c.TLSMin]
	if !ok {
		return 0, fmt.Errorf("--tls-min %q: want 1.2 (the default), 1.3, or 1.0 or 1.1 for Lync Phone Edition phones", c.TLSMin)
	}
	return v, nil
}

// newTLSConfig returns the HTTPS listeners' TLS settings for the oldest
// version min: TLS 1.2 with AEAD suites and TLS 1.3, or, below 1.2, the
// legacy suites too.
func newTLSConfig(min uint16) *tls.Config {
	suites := aeadSuites
	if min < tls.VersionTLS12 {
		suites = append(slices.Clone(aeadSuites), legacySuites...)
	}
	return &tls.Config{MinVersion: min, CipherSuites: suites}
}

// validateListeners checks --external, --metrics and --tls-min, and that
// no two listeners are given one address.
func (c *Config) validateListeners() error {
	listeners := []struct{ flag, addr string }{{"https", c.HTTPS}, {"http", c.HTTP}, {"external", c.External}, {"metrics", c.Metrics}}
	seen := map[string]string{}
	for _, l := range listeners {
		if l.addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(l.addr)
		if err != nil || port == "" {
			return fmt.Errorf("--%s %q is not a listen address; write host:port, :port or [ipv6]:port, e.g. :8443", l.flag, l.addr)
		}
		if other, ok := seen[l.addr]; ok && port != "0" {
			return fmt.Errorf("--%s and --%s are both %s; give them different ports", other, l.flag, l.addr)
		}
		seen[l.addr] = l.flag
	}
	_, err := c.tlsMinVersion()
	return err
}
