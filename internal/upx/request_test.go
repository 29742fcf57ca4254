package upx_test

import (
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

const specRequest = `<Request>
  <DeviceType>UCPhone</DeviceType>
  <MacAddress>00-04-F2-AA-BB-CC</MacAddress>
  <SerialNumber>SN123</SerialNumber>
  <Brand>Polycom</Brand>
  <Model>CX600</Model>
  <Revision>A</Revision>
  <Locale>ENU</Locale>
  <UserId>sip:alice@contoso.com</UserId>
  <Trigger>boot</Trigger>
  <Modules>
    <Module UpdateType="CPE" Filename="CPE.nbt" Version="4.0.7577.4100" Timestamp="2026-01-01T00:00:00"/>
  </Modules>
</Request>`

// specWant is what specRequest reads as.
func specWant() deviceupdate.PollRequest {
	return deviceupdate.PollRequest{
		DeviceType: "UCPhone", MAC: "00-04-F2-AA-BB-CC", Serial: "SN123", Brand: "Polycom", Model: "CX600",
		Revision: "A", Locale: "ENU", UserID: "sip:alice@contoso.com", Trigger: "boot",
		Modules: []deviceupdate.Module{{UpdateType: "CPE", Filename: "CPE.nbt", Version: deviceupdate.MustParseVersion("4.0.7577.4100"), Timestamp: "2026-01-01T00:00:00"}},
	}
}

// parseCases are requests ParseRequest reads, as edits of specWant.
var parseCases = []struct {
	name string
	xml  string
	edit func(*deviceupdate.PollRequest)
}{
	{"SPEC example", specRequest, nil},
	{"case, Vendor, unknown elements, colons in the MAC", strings.NewReplacer(
		"<Brand>Polycom</Brand>", "<VENDOR>Polycom</VENDOR><Firmware><x/></Firmware>",
		"00-04-F2-AA-BB-CC", "00:04:f2:aa:bb:cc", "<Model>", "<model>", "</Model>", "</model>",
		`UpdateType="CPE"`, `updatetype="CPE"`).Replace(specRequest), nil},
	{"Lync's audit form of the modules", strings.Replace(specRequest,
		`<Module UpdateType="CPE" Filename="CPE.nbt" Version="4.0.7577.4100" Timestamp="2026-01-01T00:00:00"/>`,
		`CPE.nbt;4.0.7577.4100;2026-01-01T00:00:00#Lang.nbt;4.0.7577.4000;x`, 1),
		func(r *deviceupdate.PollRequest) {
			r.Modules = append(r.Modules, deviceupdate.Module{UpdateType: "CPE", Filename: "Lang.nbt", Version: deviceupdate.MustParseVersion("4.0.7577.4000"), Timestamp: "x"})
		}},
	{"serial only, no trigger", strings.NewReplacer("<MacAddress>00-04-F2-AA-BB-CC</MacAddress>", "", "<Trigger>boot</Trigger>", "").Replace(specRequest),
		func(r *deviceupdate.PollRequest) { r.MAC, r.Trigger = "", "" }},
}

func TestParseRequest(t *testing.T) {
	for _, tt := range parseCases {
		t.Run(tt.name, func(t *testing.T) {
			w := specWant()
			if tt.edit != nil {
				tt.edit(&w)
			}
			got, err := upx.ParseRequest([]byte(tt.xml))
			if err != nil {
				t.Fatal(err)
			}
			if got.DeviceType != w.DeviceType || got.MAC != w.MAC || got.Serial != w.Serial || got.Brand != w.Brand || got.Model != w.Model ||
				got.Revision != w.Revision || got.Locale != w.Locale || got.UserID != w.UserID || got.Trigger != w.Trigger || len(got.Modules) != len(w.Modules) {
				t.Fatalf("got %+v\nwant %+v", got, w)
			}
			for i := range w.Modules {
				if got.Modules[i] != w.Modules[i] {
					t.Errorf("module %d = %+v, want %+v", i, got.Modules[i], w.Modules[i])
				}
			}
		})
	}
}

// rejectCases are requests ParseRequest refuses.
var rejectCases = []struct {
	name    string
	xml     string
	wantErr string
}{
	{"empty", "", "no <Request> element"},
	{"garbage", "\x00\x01GET / HTTP/1.1", "not well-formed"},
	{"wrong root", "<Poll/>", "root element is <Poll>"},
	{"no model", strings.Replace(specRequest, "<Model>CX600</Model>", "", 1), "no <Model>"},
	{"no identity", strings.NewReplacer("<MacAddress>00-04-F2-AA-BB-CC</MacAddress>", "", "<SerialNumber>SN123</SerialNumber>", "").Replace(specRequest), "neither <MacAddress> nor <SerialNumber>"},
	{"malformed MAC", strings.Replace(specRequest, "00-04-F2-AA-BB-CC", "00-04-F2", 1), "MAC address"},
	{"traversal in the model", strings.Replace(specRequest, "CX600", "..", 1), `<Model> ".." is not an identifier`},
	{"absurd version", strings.Replace(specRequest, "4.0.7577.4100", "99999999999.0.0.0", 1), "module CPE.nbt: version"},
	{"three-part version", strings.Replace(specRequest, "4.0.7577.4100", "4.0.7577", 1), "module CPE.nbt: version"},
	{"bad audit module", strings.Replace(specRequest, `<Module UpdateType="CPE" Filename="CPE.nbt" Version="4.0.7577.4100" Timestamp="2026-01-01T00:00:00"/>`, "CPE.nbt", 1), "want Filename;Version;Timestamp"},
	{"too many modules", strings.Replace(specRequest, `<Module UpdateType="CPE" Filename="CPE.nbt" Version="4.0.7577.4100" Timestamp="2026-01-01T00:00:00"/>`,
		strings.Repeat(`<Module Filename="a.nbt" Version="1.2.3.4"/>`, upx.MaxModules+1), 1), "more than"},
	{"DTD", `<!DOCTYPE Request [<!ENTITY x "y">]>` + specRequest, "DTDs are not allowed"},
	{"deep", strings.Replace(specRequest, "<Modules>", "<Modules>"+strings.Repeat("<a>", 10)+strings.Repeat("</a>", 10), 1), "nests deeper"},
	{"too large", "<Request>" + strings.Repeat(" ", upx.MaxRequestSize) + "</Request>", "more than"},
}

func TestParseRequestRejects(t *testing.T) {
	for _, tt := range rejectCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := upx.ParseRequest([]byte(tt.xml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if c := deviceupdate.ErrorCode(err); c != deviceupdate.EINVALID && c != deviceupdate.ETOOLARGE {
				t.Errorf("code = %s", c)
			}
		})
	}
}

// FuzzParseRequest checks that ParseRequest neither panics nor accepts
// what the service cannot use, and that it reads every input as the
// encoding/xml reference does (see checkAgainstStd).
func FuzzParseRequest(f *testing.F) {
	for _, seed := range parseSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := upx.ParseRequest(data)
		if err != nil {
			if c := deviceupdate.ErrorCode(err); c != deviceupdate.EINVALID && c != deviceupdate.ETOOLARGE {
				t.Fatalf("error %v has code %s", err, c)
			}
		} else {
			if len(req.Modules) > upx.MaxModules {
				t.Fatalf("%d modules accepted", len(req.Modules))
			}
			for _, m := range req.Modules {
				if err := req.RuleKey(m).Validate(); err != nil {
					t.Fatalf("accepted a request whose rule key is invalid: %v", err)
				}
			}
		}
		checkAgainstStd(t, data)
	})
}
