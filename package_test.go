package deviceupdate_test

import (
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestImportStatus(t *testing.T) {
	v := deviceupdate.MustParseVersion
	var z deviceupdate.Version
	rule := func(approved, pending, restore deviceupdate.Version) *deviceupdate.Rule {
		return &deviceupdate.Rule{ID: "r1", ApprovedVersion: approved, PendingVersion: pending, RestoreVersion: restore}
	}
	tests := []struct {
		name string
		rule *deviceupdate.Rule
		want string
	}{
		{"already pending", rule(v("1.0.0.1"), v("1.0.0.2"), z), deviceupdate.ImportUnchanged},
		{"already approved", rule(v("1.0.0.2"), z, v("1.0.0.1")), deviceupdate.ImportUnchanged},
		{"reset", rule(v("1.0.0.1"), z, z), deviceupdate.ImportRestaged},
		{"only the restore version", rule(v("1.0.0.3"), z, v("1.0.0.2")), deviceupdate.ImportRestaged},
		{"another version pending", rule(z, v("1.0.0.3"), z), deviceupdate.ImportRestaged},
		{"the rule was removed", nil, deviceupdate.ImportRestaged},
	}
	for _, tt := range tests {
		if got := deviceupdate.ImportStatus(tt.rule, v("1.0.0.2")); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
