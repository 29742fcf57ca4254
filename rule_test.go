package deviceupdate_test

import (
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestRuleKey(t *testing.T) {
	k, err := deviceupdate.ParseRuleKey("UCPhone/Polycom/CX600/A/ENU/CPE")
	if err != nil {
		t.Fatal(err)
	}
	want := deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"}
	if k != want || k.String() != "UCPhone/Polycom/CX600/A/ENU/CPE" {
		t.Errorf("ParseRuleKey = %+v (%s)", k, k)
	}
	for _, bad := range []string{"UCPhone/Polycom/CX600/A/ENU", "UCPhone/Polycom/../A/ENU/CPE", "UCPhone/Polycom/CX600/A/ENU/CPE/x", "//////"} {
		if _, err := deviceupdate.ParseRuleKey(bad); err == nil {
			t.Errorf("ParseRuleKey(%q) succeeded", bad)
		}
	}
}

func TestRuleLifecycle(t *testing.T) {
	v := deviceupdate.MustParseVersion
	var z deviceupdate.Version
	rule := func(approved, pending, restore deviceupdate.Version) deviceupdate.Rule {
		return deviceupdate.Rule{ID: "r1", ApprovedVersion: approved, PendingVersion: pending, RestoreVersion: restore}
	}
	tests := []struct {
		name    string
		before  deviceupdate.Rule
		action  deviceupdate.RuleAction
		after   deviceupdate.Rule
		wantErr string
	}{
		{"approve the first version", rule(z, v("1.0.0.1"), z), deviceupdate.RuleApprove, rule(v("1.0.0.1"), z, z), ""},
		{"approve keeps the old as restore", rule(v("1.0.0.1"), v("1.0.0.2"), z), deviceupdate.RuleApprove, rule(v("1.0.0.2"), z, v("1.0.0.1")), ""},
		{"approve replaces an older restore", rule(v("1.0.0.2"), v("1.0.0.3"), v("1.0.0.1")), deviceupdate.RuleApprove, rule(v("1.0.0.3"), z, v("1.0.0.2")), ""},
		{"approve with nothing pending", rule(v("1.0.0.1"), z, z), deviceupdate.RuleApprove, deviceupdate.Rule{}, "no pending version to approve"},
		{"reset drops pending", rule(v("1.0.0.1"), v("1.0.0.2"), z), deviceupdate.RuleReset, rule(v("1.0.0.1"), z, z), ""},
		{"reset with nothing pending", rule(v("1.0.0.1"), z, z), deviceupdate.RuleReset, deviceupdate.Rule{}, "no pending version to reset"},
		{"restore rolls back", rule(v("1.0.0.2"), z, v("1.0.0.1")), deviceupdate.RuleRestore, rule(v("1.0.0.1"), z, z), ""},
		{"restore keeps pending", rule(v("1.0.0.2"), v("1.0.0.3"), v("1.0.0.1")), deviceupdate.RuleRestore, rule(v("1.0.0.1"), v("1.0.0.3"), z), ""},
		{"restore without a restore version clears approval", rule(v("1.0.0.1"), z, z), deviceupdate.RuleRestore, rule(z, z, z), ""},
		{"restore with nothing to restore", rule(z, v("1.0.0.1"), z), deviceupdate.RuleRestore, deviceupdate.Rule{}, "nothing to restore"},
		{"unknown action", rule(z, z, z), "promote", deviceupdate.Rule{}, "unknown rule action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.before
			got, err := tt.before.Apply(tt.action)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.after {
				t.Errorf("after %s: %+v, want %+v", tt.action, got, tt.after)
			}
			if tt.before != before {
				t.Error("the action changed its receiver")
			}
		})
	}
}
