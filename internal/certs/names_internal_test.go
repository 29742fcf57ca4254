package certs

import (
	"slices"
	"testing"
)

func TestRenewedNames(t *testing.T) {
	tests := []struct {
		name   string
		old    []string
		domain string
		want   []string
	}{
		{"kept", []string{"UCUpdates-R2", "UCUpdates-R2.contoso.com", "fe01", "fe01.contoso.com"}, "",
			[]string{"UCUpdates-R2", "UCUpdates-R2.contoso.com", "fe01", "fe01.contoso.com"}},
		{"kept, with the discovery name it lacked", []string{"fe01.contoso.com"}, "",
			[]string{"UCUpdates-R2", "fe01.contoso.com"}},
		{"moved to the new domain", []string{"UCUpdates-R2", "UCUpdates-R2.contoso.com", "fe01", "fe01.contoso.com", "files.example.org"}, "fabrikam.com",
			[]string{"UCUpdates-R2", "UCUpdates-R2.fabrikam.com", "fe01", "fe01.fabrikam.com", "files.example.org"}},
		{"a first domain", []string{"UCUpdates-R2", "fe01"}, "fabrikam.com",
			[]string{"UCUpdates-R2", "UCUpdates-R2.fabrikam.com", "fe01", "fe01.fabrikam.com"}},
		{"any letter case", []string{"ucupdates-r2.CONTOSO.com", "FE01.Contoso.COM"}, "fabrikam.com",
			[]string{"UCUpdates-R2", "UCUpdates-R2.fabrikam.com", "FE01.fabrikam.com"}},
		{"from two domains", []string{"UCUpdates-R2.contoso.com", "UCUpdates-R2.corp.contoso.com", "fe01.corp.contoso.com"}, "fabrikam.com",
			[]string{"UCUpdates-R2", "UCUpdates-R2.fabrikam.com", "fe01.fabrikam.com"}},
		{"same domain", []string{"UCUpdates-R2", "UCUpdates-R2.contoso.com", "fe01"}, "contoso.com",
			[]string{"UCUpdates-R2", "UCUpdates-R2.contoso.com", "fe01", "fe01.contoso.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renewedNames(tt.old, tt.domain); !slices.Equal(got, tt.want) {
				t.Errorf("renewedNames(%v, %q) = %v, want %v", tt.old, tt.domain, got, tt.want)
			}
		})
	}
}
