package phone

import (
	"fmt"
	"testing"
)

func TestParseFailRate(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    float64
		wantErr bool
	}{
		{"fraction", "0.2", 0.2, false},
		{"percent", "20%", 0.2, false},
		{"percent with a space", " 5 %", 0.05, false},
		{"none", "0", 0, false},
		{"all", "100%", 1, false},
		{"a percent without its sign", "20", 0, true},
		{"over all", "101%", 0, true},
		{"negative", "-0.1", 0, true},
		{"not a number", "NaN", 0, true},
		{"words", "half", 0, true},
		{"empty", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFailRate(tt.in)
			if (err != nil) != tt.wantErr || !tt.wantErr && (got < tt.want-1e-12 || got > tt.want+1e-12) {
				t.Fatalf("ParseFailRate(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseFailMode(t *testing.T) {
	for in, want := range map[string]FailMode{"revert": FailRevert, "STUCK": FailStuck, "silent": FailSilent} {
		if got, err := ParseFailMode(in); err != nil || got != want {
			t.Errorf("ParseFailMode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "none", "crash"} {
		if got, err := ParseFailMode(in); err == nil {
			t.Errorf("ParseFailMode(%q) = %v; want an error", in, got)
		}
	}
}

// TestFailingPhones: exactly round(rate × n) phones fail, the same ones
// for the same seed, others for another seed.
func TestFailingPhones(t *testing.T) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("02-00-7F-00-%02X-%02X", i/250, i%250+1)
	}
	count := func(b []bool) (n int) {
		for _, f := range b {
			if f {
				n++
			}
		}
		return n
	}
	tests := []struct {
		name string
		n    int
		rate float64
		want int
	}{
		{"none", 1000, 0, 0},
		{"five percent", 1000, 0.05, 50},
		{"half of an odd number rounds up", 7, 0.5, 4},
		{"all", 10, 1, 10},
		{"a share too small for one phone", 10, 0.04, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := failingPhones(ids[:tt.n], tt.rate, 1)
			if n := count(got); n != tt.want {
				t.Fatalf("%d failing, want %d", n, tt.want)
			}
			if again := failingPhones(ids[:tt.n], tt.rate, 1); fmt.Sprint(again) != fmt.Sprint(got) {
				t.Fatalf("another run picked other phones")
			}
		})
	}
	a, b := failingPhones(ids, 0.5, 1), failingPhones(ids, 0.5, 2)
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	if same > 600 || same < 400 {
		t.Errorf("seeds 1 and 2 agree on %d of 1000 phones; want about half", same)
	}
}
