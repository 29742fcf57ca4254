package deviceupdate_test

import (
	"encoding/json"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    deviceupdate.Version
		wantErr bool
	}{
		{"4.0.7577.4366", deviceupdate.Version{4, 0, 7577, 4366}, false},
		{"0.0.0.1", deviceupdate.Version{0, 0, 0, 1}, false},
		{"4294967295.0.0.0", deviceupdate.Version{4294967295, 0, 0, 0}, false},
		{"4294967296.0.0.0", deviceupdate.Version{}, true},
		{"4.0.7577", deviceupdate.Version{}, true},
		{"4.0.7577.4366.1", deviceupdate.Version{}, true},
		{"4.0.07577.4366", deviceupdate.Version{}, true},
		{"4.0.-1.0", deviceupdate.Version{}, true},
		{"4.0.+1.0", deviceupdate.Version{}, true},
		{"4. 0.1.0", deviceupdate.Version{}, true},
		{"4..1.0", deviceupdate.Version{}, true},
		{"", deviceupdate.Version{}, true},
		{"a.b.c.d", deviceupdate.Version{}, true},
		{"99999999999.0.0.0", deviceupdate.Version{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := deviceupdate.ParseVersion(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseVersion(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				if deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
					t.Errorf("error code = %s", deviceupdate.ErrorCode(err))
				}
				return
			}
			if got != tt.want || got.String() != tt.in {
				t.Errorf("ParseVersion(%q) = %v (%s)", tt.in, got, got)
			}
		})
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"4.0.7577.4366", "4.0.7577.4366", 0},
		{"4.0.7577.4100", "4.0.7577.4366", -1},
		{"4.0.10.0", "4.0.9.0", 1}, // numbers, not strings
		{"5.0.0.0", "4.9.9999.9999", 1},
		{"0.0.0.0", "0.0.0.1", -1},
	}
	for _, tt := range tests {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			a, b := deviceupdate.MustParseVersion(tt.a), deviceupdate.MustParseVersion(tt.b)
			if got := a.Compare(b); got != tt.want {
				t.Errorf("Compare = %d, want %d", got, tt.want)
			}
			if got := b.Compare(a); got != -tt.want {
				t.Errorf("reverse Compare = %d, want %d", got, -tt.want)
			}
		})
	}
}

func TestVersionJSON(t *testing.T) {
	type doc struct {
		Approved deviceupdate.Version `json:"approvedVersion"`
		Pending  deviceupdate.Version `json:"pendingVersion"`
	}
	in := doc{Approved: deviceupdate.MustParseVersion("4.0.7577.4366")}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"approvedVersion":"4.0.7577.4366","pendingVersion":""}` {
		t.Errorf("JSON = %s", b)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Errorf("round trip = %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"approvedVersion":"1.2"}`), &out); err == nil {
		t.Error("a bad version was accepted from JSON")
	}
}
