package deviceupdate

import (
	"context"
	"net/netip"
	"sort"
	"strings"
)

// Site is a group of phones known by the subnets they poll from, such as
// a branch office. A site may override settings (scope "site:<name>"),
// and test devices may be limited to it. Subnets are what place a phone
// in a site: the longest prefix that holds its address wins.
type Site struct {
	Name    string         `json:"name"`
	Subnets []netip.Prefix `json:"subnets"`
}

// MaxSubnets bounds the subnets of one site.
const MaxSubnets = 256

// Normalize validates s and returns it with its subnets masked, sorted and
// without duplicates. Errors: EINVALID.
func (s Site) Normalize() (Site, error) {
	if !ValidIdentifier(s.Name) {
		return s, Errorf(EINVALID, "site %q: want 1-64 letters, digits, '-', '_' or '.'", truncateForMessage(s.Name))
	}
	if len(s.Subnets) == 0 {
		return s, Errorf(EINVALID, "site %s: give at least one subnet, such as 10.1.0.0/16", s.Name)
	}
	if len(s.Subnets) > MaxSubnets {
		return s, Errorf(EINVALID, "site %s: more than %d subnets", s.Name, MaxSubnets)
	}
	seen := map[netip.Prefix]bool{}
	out := make([]netip.Prefix, 0, len(s.Subnets))
	for _, p := range s.Subnets {
		if !p.IsValid() {
			return s, Errorf(EINVALID, "site %s: a subnet is not valid", s.Name)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p)).Masked()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return comparePrefix(out[i], out[j]) < 0 })
	s.Subnets = out
	return s, nil
}

// unmapBits is what an IPv4-mapped IPv6 prefix loses when unmapped.
func unmapBits(p netip.Prefix) int {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return 96
	}
	return 0
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// ParseSubnets reads CIDR prefixes ("10.1.0.0/16", "2001:db8::/48"); a
// bare address is a prefix of its full length. Errors: EINVALID.
func ParseSubnets(in []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, Errorf(EINVALID, "subnet %q: want CIDR such as 10.1.0.0/16 or 2001:db8::/48", truncateForMessage(s))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}

// SiteMap places addresses in sites by longest-prefix match.
type SiteMap struct {
	entries []siteEntry // longest prefix first
}

type siteEntry struct {
	prefix netip.Prefix
	site   string
}

// NewSiteMap builds the map of normalised sites. Two sites claiming the
// same subnet is an ECONFLICT, which AddSite refuses before it is stored.
func NewSiteMap(sites []Site) (*SiteMap, error) {
	m := &SiteMap{}
	owner := map[netip.Prefix]string{}
	for _, s := range sites {
		for _, p := range s.Subnets {
			if o, ok := owner[p]; ok && o != s.Name {
				return nil, Errorf(ECONFLICT, "subnet %s belongs to site %s already", p, o)
			}
			owner[p] = s.Name
			m.entries = append(m.entries, siteEntry{p, s.Name})
		}
	}
	sort.SliceStable(m.entries, func(i, j int) bool { return m.entries[i].prefix.Bits() > m.entries[j].prefix.Bits() })
	return m, nil
}

// Site returns the name of the site whose longest subnet holds addr, or
// "" when none does. addr may carry a port ("10.1.2.3:5060").
func (m *SiteMap) Site(addr string) string {
	if m == nil || len(m.entries) == 0 {
		return ""
	}
	a, ok := remoteAddr(addr)
	if !ok {
		return ""
	}
	return m.siteOf(a)
}

// siteOf returns the site of an address remoteAddr read.
func (m *SiteMap) siteOf(a netip.Addr) string {
	for _, e := range m.entries {
		if e.prefix.Contains(a) {
			return e.site
		}
	}
	return ""
}

// remoteAddr reads an address that may carry a port, unmapped and
// without a zone.
func remoteAddr(addr string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		ap, perr := netip.ParseAddrPort(addr)
		if perr != nil {
			return a, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// inSite returns a test of whether an address is in the site name, which
// checks the site's own subnets before the whole map: a filter by site
// over a large inventory rejects most addresses at once.
func (m *SiteMap) inSite(name string) func(addr string) bool {
	var own []netip.Prefix
	if m != nil {
		for _, e := range m.entries {
			if strings.EqualFold(e.site, name) {
				own = append(own, e.prefix)
			}
		}
	}
	return func(addr string) bool {
		if len(own) == 0 {
			return false
		}
		a, ok := remoteAddr(addr)
		if !ok {
			return false
		}
		for _, p := range own {
			if p.Contains(a) {
				return strings.EqualFold(m.siteOf(a), name) // unless a longer subnet of another site holds it
			}
		}
		return false
	}
}

// SiteService manages sites; every change is audited.
type SiteService interface {
	// Sites returns every site, ordered by name.
	Sites(ctx context.Context) ([]Site, error)
	// PutSite validates and stores a site, replacing one of the same name.
	// Errors: EINVALID, ECONFLICT (a subnet belongs to another site).
	PutSite(ctx context.Context, s Site, actor string) (Site, error)
	// RemoveSite deletes a site and its setting overrides. Errors:
	// ENOTFOUND, ECONFLICT (test devices are limited to it; the message
	// names them).
	RemoveSite(ctx context.Context, name, actor string) error
}
