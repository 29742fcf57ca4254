package deviceupdate

import (
	"runtime/debug"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "6569279c2a910da1204978e393df39d16d4107cc"},
			{Key: "vcs.time", Value: "2026-12-05T16:06:45Z"}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name     string
		version  string
		settings []debug.BuildSetting
		want     string
	}{
		{"go install of a release", "v1.2.3", nil, "v1.2.3"},
		{"go run or a test binary", "(devel)", nil, "devel"},
		{"no version at all", "", nil, "devel"},
		{"clone at an untagged commit", "v0.0.0-20261205160645-6569279c2a91", vcs("false"), "6569279c2a91 (2026-12-05T16:06:45Z)"},
		{"clone with changes", "v0.0.0-20261205160645-6569279c2a91+dirty", vcs("true"), "6569279c2a91-dirty (2026-12-05T16:06:45Z)"},
		{"clone after a tag", "v1.2.4-0.20261205160645-6569279c2a91", vcs("false"), "6569279c2a91 (2026-12-05T16:06:45Z)"},
		{"clone at a tag", "v1.2.3", vcs("false"), "v1.2.3 6569279c2a91 (2026-12-05T16:06:45Z)"},
		{"older go: devel with vcs", "(devel)", vcs("true"), "6569279c2a91-dirty (2026-12-05T16:06:45Z)"},
		{"short revision", "(devel)", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}}, "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/deviceupdate/deviceupdate", Version: tt.version}, Settings: tt.settings}
			if got := buildVersion(bi); got != tt.want {
				t.Errorf("buildVersion = %q, want %q", got, tt.want)
			}
		})
	}
	if got := buildVersion(nil); got != "devel" {
		t.Errorf("without build information: %q, want devel", got)
	}
}
