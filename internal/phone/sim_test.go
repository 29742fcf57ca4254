package phone_test

import (
	"net/netip"
	"testing"

	"github.com/deviceupdate/deviceupdate/internal/phone"
)

func TestSimAddrs(t *testing.T) {
	tests := []struct {
		name      string
		first     string
		n         int
		want      []string // first and last
		wantError bool
	}{
		{"from .1", "127.0.1.1", 3, []string{"127.0.1.1", "127.0.1.3"}, false},
		{"over a .255 and a .0", "127.0.1.254", 3, []string{"127.0.1.254", "127.0.2.2"}, false},
		{"past 127/8", "127.255.255.253", 3, nil, true},
		{"not loopback", "10.0.0.1", 1, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := phone.SimAddrs(netip.MustParseAddr(tt.first), tt.n)
			if tt.wantError {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || len(got) != tt.n || got[0].String() != tt.want[0] || got[len(got)-1].String() != tt.want[1] {
				t.Fatalf("got %v, %v; want %d from %s to %s", got, err, tt.n, tt.want[0], tt.want[1])
			}
		})
	}
}
