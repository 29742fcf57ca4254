package upx_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/upx"
)

// specModule is the <Module> element of specRequest.
const specModule = `<Module UpdateType="CPE" Filename="CPE.nbt" Version="4.0.7577.4100" Timestamp="2026-01-01T00:00:00"/>`

// spec returns specRequest with each old string of the pairs replaced by
// the new one; every old string must be there.
func spec(pairs ...string) string {
	s := specRequest
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			panic("spec: no " + pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func nest(n int, inner string) string {
	return strings.Repeat("<a>", n) + inner + strings.Repeat("</a>", n)
}

// scanCases are the scanner's edge cases: requests it reads (wantErr ""),
// as edits of specWant, and requests it refuses, with part of the error.
var scanCases = []struct {
	name    string
	xml     string
	edit    func(*deviceupdate.PollRequest)
	wantErr string
}{
	// Prolog, processing instructions, comments.
	{name: "XML declaration", xml: `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + specRequest},
	{name: "declaration in single quotes, US-ASCII", xml: `<?xml version='1.0' encoding='us-ascii' standalone='yes'?>` + specRequest},
	{name: "byte-order mark", xml: "\uFEFF" + `<?xml version="1.0"?>` + specRequest},
	{name: "processing instructions anywhere", xml: `<?xml-stylesheet href="a.xsl"?>` + spec("<Model>", "<Model><?pi <Model>x</Model>?>") + `<?end?>`},
	{name: "comments anywhere", xml: "<!-- before -->" + spec("<Model>CX600", "<Model>CX<!-- <Model>x</Model> -->600", "<Locale>", "<!----><Locale>") + "<!-- after -->"},
	{name: "comment with dashes", xml: spec("<Locale>", "<!-- a - b -- -><Locale>"), wantErr: `"--" not allowed in comments`},
	{name: "unclosed comment", xml: spec("</Request>", "<!-- </Request>"), wantErr: "unexpected EOF"},
	{name: "PI without a target", xml: "<? x?>" + specRequest, wantErr: "expected processing instruction target name"},
	{name: "unclosed PI", xml: "<?xml version=\"1.0\"", wantErr: "unexpected EOF"},
	{name: "declaration read as encoding/xml reads it", xml: `<?xml version=version="1.1" encoding ="UTF-16" encoding='utf-8'?>` + specRequest},
	{name: "comments and PIs are not read", xml: "<!-- \x00\xff -->" + spec("<Model>", "<?pi \x01\xfe?><Model>")},
	{name: "byte-order mark after the start", xml: " \uFEFF" + specRequest, wantErr: "text outside the <Request> element"},
	{name: "XML 1.1", xml: `<?xml version="1.1"?>` + specRequest, wantErr: `XML version "1.1" is not supported`},
	{name: "UTF-16 declared", xml: `<?xml version="1.0" encoding="UTF-16"?>` + specRequest, wantErr: `encoding "UTF-16" is not supported`},
	{name: "Latin-1 declared late", xml: spec("<Model>", `<?xml encoding="ISO-8859-1"?><Model>`), wantErr: "is not supported"},

	// Directives.
	{name: "DOCTYPE", xml: `<!DOCTYPE Request SYSTEM "file:///etc/passwd">` + specRequest, wantErr: "DTDs are not allowed"},
	{name: "ENTITY inside the root", xml: spec("<Model>", `<!ENTITY x "y"><Model>`), wantErr: "DTDs are not allowed"},
	{name: "<!- that is not a comment", xml: spec("<Model>", "<!-x--><Model>"), wantErr: "invalid sequence <!-"},
	{name: "<![ that is not CDATA", xml: spec("<Model>", "<![IGNORE[x]]><Model>"), wantErr: "invalid <![ sequence"},

	// CDATA.
	{name: "CDATA", xml: spec("<Model>CX600", "<Model><![CDATA[CX600]]>"), edit: nil},
	{name: "CDATA with markup", xml: spec("sip:alice@contoso.com", "<![CDATA[<sip:a&amp;b>]]>"), edit: func(r *deviceupdate.PollRequest) { r.UserID = "<sip:a&amp;b>" }},
	{name: "CDATA joined to text", xml: spec("<Model>CX600", "<Model> CX<![CDATA[6]]>0<![CDATA[]]>0 "), edit: nil},
	{name: "CDATA audit modules", xml: spec(specModule, "<![CDATA[CPE.nbt;4.0.7577.4100;2026-01-01T00:00:00]]>")},
	{name: "unclosed CDATA", xml: spec("<Model>CX600", "<Model><![CDATA[CX600"), wantErr: "unexpected EOF"},
	{name: "CDATA outside the root", xml: "<![CDATA[x]]>" + specRequest, wantErr: "CDATA section outside the <Request> element"},

	// References.
	{name: "predefined entities", xml: spec("sip:alice@contoso.com", "&lt;&amp;&gt;&quot;&apos;"), edit: func(r *deviceupdate.PollRequest) { r.UserID = `<&>"'` }},
	{name: "&#X is not a reference", xml: spec("<Model>CX600", "<Model>&#67;&#x58;&#x36;&#X30;0"), wantErr: "invalid character reference"},
	{name: "references", xml: spec("<Model>CX600", "<Model>&#67;&#x58;&#x36;&#0048;&#x030;", "sip:alice", "&#x1F600;&#xe9;"),
		edit: func(r *deviceupdate.PollRequest) { r.UserID = "\U0001F600é@contoso.com" }},
	{name: "reference to white space is trimmed", xml: spec("<Model>CX600", "<Model>&#32;CX600&#x9;"), edit: nil},
	{name: "references in attributes", xml: spec(`Filename="CPE.nbt"`, `Filename="CPE&#46;nbt&#x20;"`), edit: nil},
	{name: "unknown entity", xml: spec("CX600", "&nbsp;CX600"), wantErr: `invalid character entity "&nbsp;"`},
	{name: "entity in upper case", xml: spec("CX600", "&AMP;"), wantErr: "invalid character entity"},
	{name: "entity without semicolon", xml: spec("CX600", "&amp CX600"), wantErr: "no semicolon"},
	{name: "bare ampersand", xml: spec("sip:alice", "sip:a & b"), wantErr: "no semicolon"},
	{name: "empty reference", xml: spec("CX600", "&#;"), wantErr: "invalid character reference"},
	{name: "reference to NUL", xml: spec("CX600", "&#0;"), wantErr: "is not an XML character"},
	{name: "reference to a control character", xml: spec("CX600", "&#x1b;"), wantErr: "is not an XML character"},
	{name: "reference to U+FFFE", xml: spec("CX600", "&#xFFFE;"), wantErr: "is not an XML character"},
	{name: "reference past U+10FFFF", xml: spec("CX600", "&#x110000;"), wantErr: "is not an XML character"},
	{name: "reference with many digits", xml: spec("CX600", "&#"+strings.Repeat("9", 40)+";"), wantErr: "is not an XML character"},
	{name: "reference to a surrogate", xml: spec("CX600", "&#xD800;"), wantErr: "is a surrogate"},
	{name: "reference outside the root", xml: "&#32;" + specRequest, wantErr: "text outside the <Request> element"},
	{name: "unterminated reference", xml: "<Request>&#x41", wantErr: "unexpected EOF"},

	// Characters.
	{name: "carriage returns become newlines", xml: spec("sip:alice", "sip:\r\nal\rice\r\r\n"), edit: func(r *deviceupdate.PollRequest) { r.UserID = "sip:\nal\nice\n\n@contoso.com" }},
	{name: "carriage return in an attribute", xml: spec(`Timestamp="2026-01-01T00:00:00"`, "Timestamp='a\r\nb\rc'"),
		edit: func(r *deviceupdate.PollRequest) { r.Modules[0].Timestamp = "a\nb\nc" }},
	{name: "Unicode white space trimmed", xml: spec("<Model>CX600", "<Model>\u00a0\u0085CX600\u2003")},
	{name: "tabs and newlines inside values are kept", xml: spec(`Timestamp="2026-01-01T00:00:00"`, "Timestamp=\"a\tb\nc\""), edit: func(r *deviceupdate.PollRequest) { r.Modules[0].Timestamp = "a\tb\nc" }},
	{name: "references in the audit form", xml: spec(specModule, "CPE.nbt&#59;4.0.7577.4100;2026-01-01T00:00:00&#35;Lang.nbt;4.0.7577.4000"),
		edit: func(r *deviceupdate.PollRequest) {
			r.Modules = append(r.Modules, deviceupdate.Module{UpdateType: "CPE", Filename: "Lang.nbt", Version: deviceupdate.MustParseVersion("4.0.7577.4000")})
		}},
	{name: "UTF-8 text", xml: spec("sip:alice", "sip:åsa"), edit: func(r *deviceupdate.PollRequest) { r.UserID = "sip:åsa@contoso.com" }},
	{name: "invalid UTF-8 in text", xml: spec("sip:alice", "sip:\xffalice"), wantErr: "invalid UTF-8"},
	{name: "invalid UTF-8 in an attribute", xml: spec(`Timestamp="2026`, "Timestamp=\"\xc3\x28"), wantErr: "invalid UTF-8"},
	{name: "invalid UTF-8 in CDATA", xml: spec("<Model>CX600", "<Model><![CDATA[\xed\xa0\x80]]>"), wantErr: "invalid UTF-8"},
	{name: "invalid UTF-8 in an unknown element", xml: spec("<Model>", "<x>\xc0\xaf</x><Model>"), wantErr: "invalid UTF-8"},
	{name: "control character", xml: spec("CX600", "CX\x01600"), wantErr: "illegal character code U+0001"},
	{name: "NUL", xml: spec("CX600", "CX\x00600"), wantErr: "illegal character code U+0000"},
	{name: "U+FFFF", xml: spec("CX600", "CX\uFFFF600"), wantErr: "illegal character code U+FFFF"},
	{name: "]]> in text", xml: spec("CX600", "CX]]>600"), wantErr: "unescaped ]]>"},
	{name: "]]> in an attribute", xml: spec(`Timestamp="2026-01-01T00:00:00"`, `Timestamp="]]>"`), edit: func(r *deviceupdate.PollRequest) { r.Modules[0].Timestamp = "]]>" }},

	// Names.
	{name: "case-insensitive names", xml: spec("<Request>", "<REQUEST>", "</Request>", "</REQUEST>", "<DeviceType>UCPhone</DeviceType>", "<devicetype>UCPhone</devicetype>",
		"<Locale>ENU</Locale>", "<lOcAlE>ENU</lOcAlE>", "<Modules>", "<MODULES>", "</Modules>", "</MODULES>", "<Module ", "<module ",
		"Filename=", "FILENAME=", "Timestamp=", "timeSTAMP=")},
	{name: "namespace prefixes", xml: spec("<Request>", `<u:Request xmlns:u="urn:x" xmlns="urn:y">`, "</Request>", "</u:Request>",
		"<Model>CX600</Model>", "<u:Model>CX600</u:Model>", `Filename=`, `u:Filename=`, "<Module ", "<x:Module xmlns:x='urn:z' ", `Version=`, `xmlns:Version=`)},
	{name: "a colon at either end is part of the local name", xml: spec("<Model>CX600</Model>", "<Model>CX600</Model><Model:>x</Model:><:Model>y</:Model>")},
	{name: "root with a prefix", xml: `<x:Poll xmlns:x="urn:x"/>`, wantErr: "root element is <Poll>"},
	{name: "two colons", xml: spec("<Model>", "<a:b:c/><Model>"), wantErr: "more than one colon"},
	{name: "name starting with a digit", xml: spec("<Model>", "<1a/><Model>"), wantErr: `invalid XML name "1a"`},
	{name: "name starting with a dot", xml: spec("<Model>", "<.a/><Model>"), wantErr: `invalid XML name ".a"`},
	{name: "space after <", xml: spec("<Model>", "< Model>"), wantErr: "expected element name"},
	{name: "non-ASCII element name", xml: spec("<DeviceType>UCPhone</DeviceType>", "<DEVİCETYPE>x</DEVİCETYPE><DeviceType>UCPhone</DeviceType>"), wantErr: "names must be ASCII"},
	{name: "non-ASCII attribute name", xml: spec("Timestamp=", "Timeſtamp="), wantErr: "names must be ASCII"},
	{name: "non-ASCII PI target", xml: "<?é?>" + specRequest, wantErr: "names must be ASCII"},

	// Elements and attributes.
	{name: "self-closing elements", xml: spec("<UserId>sip:alice@contoso.com</UserId>", "<UserId/><Extra a='1' />"), edit: func(r *deviceupdate.PollRequest) { r.UserID = "" }},
	{name: "nested unknown elements are skipped", xml: spec("<Model>", "<Firmware><Model>XX</Model><Modules><Module Filename='../x' Version='1'/></Modules><a><b>text</b></a></Firmware><Model>")},
	{name: "only text after a field's last child counts", xml: spec("<Model>CX600", "<Model>XX<b>YY</b>CX600")},
	{name: "last value wins", xml: spec("<Brand>Polycom</Brand>", "<Brand>X</Brand><Vendor>Y</Vendor><brand>Polycom</brand>")},
	{name: "white space trimmed", xml: spec("<Model>CX600", "<Model>\n\t  CX600 \r\n", `Filename="CPE.nbt"`, "Filename=' CPE.nbt\t'")},
	{name: "attributes: spaces around =, both quotes, no space between", xml: spec(specModule, `<Module UpdateType = 'CPE'Filename=`+"\n"+`"CPE.nbt" Version= '4.0.7577.4100'`+"\t"+`Timestamp ="2026-01-01T00:00:00" />`)},
	{name: "first of two same attributes wins", xml: spec(`Filename="CPE.nbt"`, `Filename="CPE.nbt" filename="Other.nbt"`)},
	{name: "module without UpdateType is CPE", xml: spec(`UpdateType="CPE" `, "")},
	{name: "modules and audit text together", xml: spec(specModule, "X.nbt;1.0.0.1"+specModule+" Lang.nbt;4.0.7577.4000;x "),
		edit: func(r *deviceupdate.PollRequest) {
			r.Modules = append(r.Modules, deviceupdate.Module{UpdateType: "CPE", Filename: "Lang.nbt", Version: deviceupdate.MustParseVersion("4.0.7577.4000"), Timestamp: "x"})
		}},
	{name: "audit form with blanks", xml: spec(specModule, "#  # CPE.nbt;4.0.7577.4100;2026-01-01T00:00:00 # #")},
	{name: "audit form without timestamp", xml: spec(specModule, "CPE.nbt;4.0.7577.4100"), edit: func(r *deviceupdate.PollRequest) { r.Modules[0].Timestamp = "" }},
	{name: "audit form with four parts", xml: spec(specModule, "CPE.nbt;4.0.7577.4100;x;y"), wantErr: "want Filename;Version;Timestamp"},
	{name: "<Module> deeper is not a module", xml: spec(specModule, "<x>"+specModule+"</x>"+specModule)},
	{name: "32 modules", xml: spec(specModule, strings.Repeat(specModule, upx.MaxModules)),
		edit: func(r *deviceupdate.PollRequest) {
			for range upx.MaxModules - 1 {
				r.Modules = append(r.Modules, r.Modules[0])
			}
		}},
	{name: "33 modules, half of them audit", xml: spec(specModule, strings.Repeat(specModule, upx.MaxModules/2)+strings.Repeat("CPE.nbt;4.0.7577.4100#", upx.MaxModules/2+1)),
		wantErr: "more than 32 modules"},
	{name: "depth 8", xml: spec("<Modules>", nest(7, "")+"<Modules>")},
	{name: "depth 9", xml: spec("<Modules>", nest(8, "")+"<Modules>"), wantErr: "nests deeper than 8"},
	{name: "depth 9, self-closing", xml: spec("<Modules>", nest(7, "<b/>")+"<Modules>"), wantErr: "nests deeper than 8"},
	{name: "mismatched end tag", xml: spec("</Model>", "</model>"), wantErr: "element <Model> closed by </model>"},
	{name: "end tag with another prefix", xml: spec("<Model>CX600</Model>", "<a:Model>CX600</b:Model>"), wantErr: "closed by"},
	{name: "end tag with spaces", xml: spec("</Model>", "</Model \n>")},
	{name: "end tag with an attribute", xml: spec("</Model>", "</Model a='1'>"), wantErr: "invalid characters between </Model and >"},
	{name: "unclosed element", xml: spec("</Model>", ""), wantErr: "element <Model> closed by </Request>"},
	{name: "unclosed root", xml: spec("</Request>", ""), wantErr: "unexpected EOF"},
	{name: "end tag without start", xml: "</Request>", wantErr: "unexpected end element"},
	{name: "empty end tag", xml: spec("</Model>", "</>"), wantErr: "expected element name"},
	{name: "second root element", xml: specRequest + specRequest, wantErr: "second root element <Request>"},
	{name: "second root of another name", xml: specRequest + "<x/>", wantErr: "second root element <x>"},
	{name: "text before the root", xml: "x" + specRequest, wantErr: "text outside the <Request> element"},
	{name: "text after the root", xml: specRequest + "\n x", wantErr: "text outside the <Request> element"},
	{name: "white space and comments around the root", xml: " \r\n\t<!-- a -->\n" + specRequest + "\n<!-- b -->\n\n"},
	{name: "'<' in an attribute value", xml: spec(`Timestamp="2026`, `Timestamp="<2026`), wantErr: "'<' in an attribute value"},
	{name: "unquoted attribute value", xml: spec(`"CPE.nbt"`, "CPE.nbt"), wantErr: "unquoted or missing attribute value"},
	{name: "attribute without value", xml: spec("<Module ", "<Module x "), wantErr: "attribute x has no value"},
	{name: "unclosed attribute value", xml: `<Request><Modules><Module Filename="a`, wantErr: "unexpected EOF"},
	{name: "slash without >", xml: spec("<Module ", "<Module/ "), wantErr: "expected /> in element"},
	{name: "lone <", xml: "<Request><", wantErr: "unexpected EOF"},
	{name: "body past the sharing limit", xml: spec("<Model>", "<!--"+strings.Repeat("x", 5000)+"--><Model>", "sip:alice", "sip:&#97;lice")},
	{name: "unclosed start tag", xml: "<Request", wantErr: "unexpected EOF"},
}

func TestScanner(t *testing.T) {
	for _, tt := range scanCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := upx.ParseRequest([]byte(tt.xml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if c := deviceupdate.ErrorCode(err); c != deviceupdate.EINVALID {
					t.Errorf("code = %s, want %s", c, deviceupdate.EINVALID)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				want := specWant()
				if tt.edit != nil {
					tt.edit(&want)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("got  %#v\nwant %#v", got, want)
				}
			}
			checkAgainstStd(t, []byte(tt.xml))
		})
	}
}
