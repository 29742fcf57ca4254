package deviceupdate_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func mustPrefixes(t *testing.T, s ...string) []netip.Prefix {
	t.Helper()
	p, err := deviceupdate.ParseSubnets(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSiteNormalize(t *testing.T) {
	tests := []struct {
		name    string
		site    deviceupdate.Site
		want    []string // normalised subnets; nil when refused
		wantErr bool
	}{
		{"masks, sorts and dedupes", deviceupdate.Site{Name: "Redmond", Subnets: mustPrefixes(t, "10.1.2.3/16", "10.0.0.0/8", "10.1.0.0/16")}, []string{"10.0.0.0/8", "10.1.0.0/16"}, false},
		{"bare address is a host prefix", deviceupdate.Site{Name: "a", Subnets: mustPrefixes(t, "192.0.2.7")}, []string{"192.0.2.7/32"}, false},
		{"ipv4-mapped becomes ipv4", deviceupdate.Site{Name: "a", Subnets: mustPrefixes(t, "::ffff:10.0.0.0/104")}, []string{"10.0.0.0/8"}, false},
		{"ipv6", deviceupdate.Site{Name: "a", Subnets: mustPrefixes(t, "2001:db8:1::5/48")}, []string{"2001:db8:1::/48"}, false},
		{"no subnets", deviceupdate.Site{Name: "a"}, nil, true},
		{"bad name", deviceupdate.Site{Name: "a/b", Subnets: mustPrefixes(t, "10.0.0.0/8")}, nil, true},
		{"dot dot", deviceupdate.Site{Name: "..", Subnets: mustPrefixes(t, "10.0.0.0/8")}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.site.Normalize()
			if tt.wantErr {
				if deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
					t.Fatalf("err = %v, want EINVALID", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Subnets) != len(tt.want) {
				t.Fatalf("subnets = %v, want %v", got.Subnets, tt.want)
			}
			for i, p := range got.Subnets {
				if p.String() != tt.want[i] {
					t.Errorf("subnet %d = %s, want %s", i, p, tt.want[i])
				}
			}
		})
	}
	if _, err := deviceupdate.ParseSubnets([]string{"10.0.0.0/33"}); deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
		t.Errorf("10.0.0.0/33: %v", err)
	}
}

func TestSiteMap(t *testing.T) {
	norm := func(name string, subnets ...string) deviceupdate.Site {
		s, err := deviceupdate.Site{Name: name, Subnets: mustPrefixes(t, subnets...)}.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	m, err := deviceupdate.NewSiteMap([]deviceupdate.Site{
		norm("Campus", "10.0.0.0/8"), norm("Lab", "10.1.2.0/24", "2001:db8:1::/48"),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ addr, want string }{
		{"10.1.2.3", "Lab"},            // the longest prefix wins
		{"10.1.3.3", "Campus"},         // only the /8 holds it
		{"10.1.2.3:5060", "Lab"},       // with a port
		{"::ffff:10.1.2.9", "Lab"},     // IPv4-mapped
		{"2001:db8:1:2::9", "Lab"},     // IPv6
		{"fe80::1%eth0", ""},           // zone, no site
		{"192.0.2.1", ""},              // no site
		{"not an address", ""},         // garbage
		{"[2001:db8:1::1]:443", "Lab"}, // bracketed with a port
	}
	for _, tt := range tests {
		if got := m.Site(tt.addr); got != tt.want {
			t.Errorf("Site(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	var nilMap *deviceupdate.SiteMap
	if nilMap.Site("10.1.2.3") != "" {
		t.Error("a nil map places an address")
	}
	_, err = deviceupdate.NewSiteMap([]deviceupdate.Site{norm("A", "10.0.0.0/8"), norm("B", "10.0.0.0/8")})
	var e *deviceupdate.Error
	if !errors.As(err, &e) || e.Code != deviceupdate.ECONFLICT {
		t.Errorf("two sites on one subnet: %v, want ECONFLICT", err)
	}
}
