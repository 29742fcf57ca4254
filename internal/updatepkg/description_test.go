package updatepkg_test

import (
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/updatepkg"
)

const specExample = `<Update DeviceType="UCPhone" Brand="Polycom" Model="CX600" Revision="A" Locale="ENU" UpdateType="CPE" Version="4.0.7577.4366"><File Name="CPE.nbt"/></Update>`

func TestParseDescription(t *testing.T) {
	want := deviceupdate.Update{
		RuleKey: deviceupdate.RuleKey{DeviceType: "UCPhone", Brand: "Polycom", Model: "CX600", Revision: "A", Locale: "ENU", UpdateType: "CPE"},
		Version: deviceupdate.MustParseVersion("4.0.7577.4366"),
		Files:   []string{"CPE.nbt"},
	}
	tests := []struct {
		name string
		xml  string
		want deviceupdate.Update
	}{
		{"SPEC example", specExample, want},
		{"declaration, case and extras", `<?xml version="1.0" encoding="utf-8"?>
<!-- made by a vendor tool -->
<update devicetype="UCPhone" BRAND="Polycom" model="CX600" Revision="A" locale="ENU" updatetype="CPE" version="4.0.7577.4366" Vendor="x">
  <Notes>ignored</Notes>
  <file name="CPE.nbt" Size="1"/>
</update>`, want},
		{"two images", strings.Replace(specExample, `<File Name="CPE.nbt"/>`, `<File Name="CPE.nbt"/><File Name="CPE2.nbt"/>`, 1),
			func() deviceupdate.Update { w := want; w.Files = []string{"CPE.nbt", "CPE2.nbt"}; return w }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := updatepkg.ParseDescription([]byte(tt.xml))
			if err != nil {
				t.Fatal(err)
			}
			if got.RuleKey != tt.want.RuleKey || got.Version != tt.want.Version || strings.Join(got.Files, ",") != strings.Join(tt.want.Files, ",") {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseDescriptionRejects(t *testing.T) {
	tests := []struct {
		name    string
		xml     string
		wantErr string
	}{
		{"empty", "", "no <Update> element"},
		{"not XML", "hello", "no <Update> element"},
		{"unclosed", `<Update DeviceType="UCPhone"`, "not well-formed"},
		{"wrong root", `<Package/>`, "root element is <Package>"},
		{"missing model", strings.Replace(specExample, `Model="CX600" `, "", 1), "no Model attribute"},
		{"missing version", strings.Replace(specExample, ` Version="4.0.7577.4366"`, "", 1), "no Version attribute"},
		{"three-part version", strings.Replace(specExample, "4.0.7577.4366", "4.0.7577", 1), `version "4.0.7577"`},
		{"traversal in identifier", strings.Replace(specExample, `Locale="ENU"`, `Locale=".."`, 1), `Locale ".."`},
		{"traversal in file name", strings.Replace(specExample, `Name="CPE.nbt"`, `Name="..\..\x.nbt"`, 1), "file name"},
		{"no files", strings.Replace(specExample, `<File Name="CPE.nbt"/>`, "", 1), "names no <File>"},
		{"file without name", strings.Replace(specExample, `Name="CPE.nbt"`, `Nom="CPE.nbt"`, 1), "no Name attribute"},
		{"DTD with entities", `<!DOCTYPE Update [<!ENTITY x "y">]>` + specExample, "DTDs are not allowed"},
		{"undefined entity", strings.Replace(specExample, "CX600", "&x;", 1), "not well-formed"},
		{"foreign encoding", `<?xml version="1.0" encoding="UTF-16"?>` + specExample, "UTF-16"},
		{"deep nesting", strings.Replace(specExample, "<File", strings.Repeat("<a>", 20)+strings.Repeat("</a>", 20)+"<File", 1), "nests deeper"},
		{"two roots", specExample + strings.Replace(specExample, "CX600", "CX700", 1), "more than one root element"},
		{"attribute twice in two cases", strings.Replace(specExample, `Model="CX600"`, `Model="CX600" model="CX700"`, 1), "Model attribute twice"},
		{"file name twice in two cases", strings.Replace(specExample, `Name="CPE.nbt"`, `Name="CPE.nbt" NAME="x.nbt"`, 1), "Name attribute twice"},
		{"too large", "<Update>" + strings.Repeat(" ", updatepkg.MaxDescriptionSize) + "</Update>", "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := updatepkg.ParseDescription([]byte(tt.xml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
				t.Errorf("code = %s, want invalid", deviceupdate.ErrorCode(err))
			}
		})
	}
}

func FuzzParseDescription(f *testing.F) {
	f.Add([]byte(specExample))
	f.Add([]byte(`<update devicetype="a" brand="b" model="c" revision="d" locale="e" updatetype="f" version="1.2.3.4"><file name="x"/></update>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := updatepkg.ParseDescription(data)
		if err != nil {
			if deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if err := u.Validate(); err != nil {
			t.Fatalf("accepted an invalid update: %v", err)
		}
	})
}
