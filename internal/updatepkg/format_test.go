package updatepkg

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

// The description of docs/package-format.md, which pack has written
// since its first version.
const documentedDescription = `<?xml version="1.0" encoding="utf-8"?>
<Update DeviceType="UCPhone" Brand="Polycom" Model="CX600" Revision="A" Locale="ENU" UpdateType="CPE" Version="4.0.7577.4366">
  <File Name="CPE.nbt"/>
</Update>
`

const documentedUpdateInfo = `<?xml version="1.0" encoding="utf-8"?>
<Updates><Updates><Update DeviceType="UCPhone" Brand="Polycom" Model="CX600" Revision="A" Locale="ENU" UpdateType="CPE" Version="4.0.7577.4366"/></Updates></Updates>
`

// TestDescriptionReadsBack: ParseDescription reads what formatDescription
// writes as the same update, for identities and file names at the edges
// of what is valid; and the bytes are those documented.
func TestDescriptionReadsBack(t *testing.T) {
	cx600 := deviceupdate.Update{
		RuleKey: deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"},
		Version: deviceupdate.MustParseVersion("4.0.7577.4366"),
		Files:   []string{"CPE.nbt"},
	}
	long := strings.Repeat("x", deviceupdate.MaxIdentifierLen)
	many := make([]string, deviceupdate.MaxUpdateFiles)
	for i := range many {
		many[i] = fmt.Sprintf("part-%03d.nbt", i)
	}
	tests := []struct {
		name string
		u    deviceupdate.Update
	}{
		{"the documented update", cx600},
		{"every character an identifier may hold", deviceupdate.Update{
			RuleKey: deviceupdate.RuleKey{DeviceType: "a-b_c.d", Brand: "Z9", Model: "...x", Revision: "-", Locale: "_", UpdateType: "C.P.E"},
			Version: deviceupdate.MustParseVersion("0.0.0.1"), Files: []string{"a-b_c.d.nbt", "..."},
		}},
		{"longest identifiers and file name", deviceupdate.Update{
			RuleKey: deviceupdate.RuleKey{DeviceType: long, Brand: long, Model: long, Revision: long, Locale: long, UpdateType: long},
			Version: deviceupdate.MustParseVersion("65535.65535.65535.65535"), Files: []string{strings.Repeat("f", deviceupdate.MaxFileNameLen)},
		}},
		{"most files", func() deviceupdate.Update { u := cx600; u.Files = many; return u }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.u.Validate(); err != nil {
				t.Fatalf("the case is not a valid update: %v", err)
			}
			got, err := ParseDescription(formatDescription(tt.u))
			if err != nil {
				t.Fatal(err)
			}
			if got.RuleKey != tt.u.RuleKey || got.Version != tt.u.Version || !slices.Equal(got.Files, tt.u.Files) {
				t.Errorf("read back %+v, want %+v", got, tt.u)
			}
		})
	}
	if got := string(formatDescription(cx600)); got != documentedDescription {
		t.Errorf("description:\n%s\nwant the documented\n%s", got, documentedDescription)
	}
	if got := string(formatUpdateInfo(cx600)); got != documentedUpdateInfo {
		t.Errorf("updateInfo.xml:\n%s\nwant\n%s", got, documentedUpdateInfo)
	}
}
