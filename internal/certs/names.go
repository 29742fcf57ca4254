package certs

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// NamesError says which discovery names a server certificate lacks and
// how to get one that holds them.
type NamesError struct {
	Cert    string   // the certificate's file
	Missing []string // the discovery names it lacks (ServerNames)
	Held    []string // the DNS names it holds
	Fix     string   // what to run, or to ask of the CA that issued it
}

func (e *NamesError) Error() string {
	held := strings.Join(e.Held, ", ")
	if held == "" {
		held = "no DNS name"
	}
	return fmt.Sprintf("%s lacks %s (it holds %s); %s", e.Cert, strings.Join(e.Missing, " and "), held, e.Fix)
}

// CheckNames returns a *NamesError when leaf, the server certificate of
// the certs folder dir, lacks a discovery name of domain (ServerNames),
// as phones that find the service by DNS verify them; nil otherwise. The
// fix is `deviceupdate certs renew` when dir holds the CA key that can
// reissue the certificate, and otherwise to have its CA reissue it.
func CheckNames(leaf *x509.Certificate, dir, domain string) error {
	var missing []string
	for _, name := range ServerNames(domain) {
		if leaf.VerifyHostname(name) != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	e := &NamesError{Cert: filepath.Join(dir, ServerCertFile), Missing: missing, Held: leaf.DNSNames}
	if exists(filepath.Join(dir, CAKeyFile)) {
		e.Fix = "reissue it with: deviceupdate certs renew"
		if domain != "" {
			e.Fix += " --domain " + domain
		}
		e.Fix += " --certs " + dir
	} else {
		e.Fix = fmt.Sprintf("have the CA that issued it (%q) reissue it with %s, and put it in %s as server.crt and server.key",
			leaf.Issuer.CommonName, strings.Join(ServerNames(domain), " and "), dir)
	}
	return e
}

// renewedNames returns the DNS names of a certificate that replaces one
// holding old: the same names or, with domain set, the same names moved
// to that domain. A name under a domain old was issued for (the D of its
// UCUpdates-R2.D) moves under domain, and a name of one label (the host
// name) gains its twin under domain, as certs init adds it. The discovery
// names of the domain are always among them.
func renewedNames(old []string, domain string) []string {
	if domain == "" {
		return dedupeFold(append(ServerNames(""), old...))
	}
	var from []string // the domains old was issued for
	for _, n := range old {
		if hasPrefixFold(n, DiscoveryName+".") && len(n) > len(DiscoveryName)+1 {
			from = append(from, n[len(DiscoveryName)+1:])
		}
	}
	// The longest first: fe01.corp.contoso.com is under corp.contoso.com.
	sort.Slice(from, func(i, j int) bool { return len(from[i]) > len(from[j]) })
	names := ServerNames(domain)
	for _, n := range old {
		if !strings.Contains(n, ".") {
			names = append(names, n, n+"."+domain)
			continue
		}
		moved := n
		for _, d := range from {
			if hasSuffixFold(n, "."+d) {
				moved = n[:len(n)-len(d)] + domain
				break
			}
		}
		names = append(names, moved)
	}
	return dedupeFold(names)
}

// CertNames returns the DNS names and the addresses a certificate holds.
func CertNames(c *x509.Certificate) []string {
	all := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		all = append(all, ip.String())
	}
	return all
}
