package deviceupdate_test

import (
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestValidateDNSName(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	longest := strings.Repeat(label63+".", 3) + strings.Repeat("b", 61) // 253 bytes
	tests := []struct {
		name    string
		in      string
		wantErr string // "" for a valid name
	}{
		{"a domain", "contoso.com", ""},
		{"one label", "localhost", ""},
		{"any case, digits, hyphens", "UCUpdates-R2.Fe01.contoso-2.COM", ""},
		{"a label of digits", "123.example", ""},
		{"63-byte label", label63 + ".com", ""},
		{"253 bytes", longest, ""},
		{"empty", "", "it is empty"},
		{"254 bytes", longest + "b", "254 bytes, more than the 253"},
		{"64-byte label", label63 + "a.com", "is 64 bytes, more than 63"},
		{"two dots", "contoso..com", "an empty label"},
		{"leading dot", ".contoso.com", "an empty label"},
		{"trailing dot", "contoso.com.", "an empty label"},
		{"leading hyphen", "-bad-.com", `label "-bad-" starts or ends with '-'`},
		{"trailing hyphen", "contoso-.com", `label "contoso-" starts or ends with '-'`},
		{"underscore", "con_toso.com", `label "con_toso" holds '_'; a label is letters, digits and '-'`},
		{"space", "bad host", `holds ' '`},
		{"port", "host:8443", `holds ':'`},
		{"non-ASCII", "bücher.de", `label "bücher" holds 'ü'`},
		{"invalid UTF-8", "a\xffb", `holds '�'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := deviceupdate.ValidateDNSName(tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr == "":
			case err == nil:
				t.Fatalf("accepted, want %q", tt.wantErr)
			case !strings.Contains(err.Error(), tt.wantErr) || deviceupdate.ErrorCode(err) != deviceupdate.EINVALID:
				t.Fatalf("error %q (%s), want EINVALID and %q", err, deviceupdate.ErrorCode(err), tt.wantErr)
			}
		})
	}
}
