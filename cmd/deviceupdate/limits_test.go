package main

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // -1 for an error
	}{
		{"0", 0}, {"1073741824", 1 << 30}, {"2GiB", 2 << 30}, {"2gb", 2 << 30}, {"500MiB", 500 << 20},
		{"64k", 64 << 10}, {" 1 TiB ", 1 << 40}, {"GiB", -1}, {"-1", -1}, {"1.5GiB", -1}, {"5TG", -1},
		{"99999999999TiB", -1}, {"", -1},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if tt.want < 0 {
			if err == nil {
				t.Errorf("parseSize(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}
