package deviceupdate

import (
	"regexp"
	"runtime/debug"
	"strings"
)

// BuildVersion names the build this binary is: for `go install
// ...@v1.2.3`, the module version; for a build from a git clone, the
// commit's revision (12 digits), "-dirty" when the work tree had changes,
// and the commit's time, after the version tag when the commit has one;
// "devel" when the binary carries neither (`go run`, a test binary, a
// build outside a clone or with -buildvcs=false). `--version` and the
// admin API's /server report it.
func BuildVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return buildVersion(bi)
}

// pseudoVersion matches the versions the go command makes up for an
// untagged commit (v0.0.0-20261205160645-6569279c2a91), which say less
// than the revision and time.
var pseudoVersion = regexp.MustCompile(`-(\d+\.)?\d{14}-[0-9a-f]{12}$`)

func buildVersion(bi *debug.BuildInfo) string {
	if bi == nil {
		return "devel"
	}
	var revision, at string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	tag := strings.TrimSuffix(bi.Main.Version, "+dirty")
	if tag == "(devel)" || pseudoVersion.MatchString(tag) {
		tag = ""
	}
	if revision == "" {
		if tag == "" {
			return "devel"
		}
		return tag
	}
	v := revision[:min(len(revision), 12)]
	if dirty {
		v += "-dirty"
	}
	if at != "" {
		v += " (" + at + ")"
	}
	if tag != "" {
		v = tag + " " + v
	}
	return v
}
