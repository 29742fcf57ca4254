package deviceupdate_test

import (
	"strings"
	"testing"

	"github.com/deviceupdate/deviceupdate"
)

func TestCheckSettings(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]string
		want    map[string]string
		wantErr string
	}{
		{"normalised", map[string]string{"maxlogfilesize": "2048000", "LogFlushInterval": "10m", "PeerFirmwareSharing": "TRUE",
			"ValidLogFileExtensions": ".TXT, .dmp", "LogCleanUpTimeOfDay": "3:30"},
			map[string]string{"MaxLogFileSize": "2048000", "LogFlushInterval": "00:10:00", "PeerFirmwareSharing": "true",
				"ValidLogFileExtensions": ".txt,.dmp", "LogCleanUpTimeOfDay": "03:30"}, ""},
		{"empty removes the override", map[string]string{"PollIntervalSeconds": ""}, map[string]string{"PollIntervalSeconds": ""}, ""},
		{"unknown key", map[string]string{"MaxLogSize": "1"}, nil, `unknown setting "MaxLogSize"`},
		{"out of range", map[string]string{"LogCleanUpInterval": "400"}, nil, "LogCleanUpInterval=400: out of range"},
		{"not a number", map[string]string{"MaxLogFileSize": "1MB"}, nil, "not a whole number"},
		{"bad time span", map[string]string{"LogFlushInterval": "00:61:00"}, nil, "not hh:mm:ss"},
		{"bad boolean", map[string]string{"PeerFirmwareSharing": "maybe"}, nil, "not true or false"},
		{"bad extension", map[string]string{"ValidLogFileExtensions": "txt"}, nil, `"txt" does not start with '.'`},
		{"nothing", map[string]string{}, nil, "no settings given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := deviceupdate.CheckSettings(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || deviceupdate.ErrorCode(err) != deviceupdate.EINVALID {
					t.Fatalf("CheckSettings = %v, want EINVALID containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestDefaultsAreValid(t *testing.T) {
	for _, s := range deviceupdate.Settings {
		if s.Default == "" {
			continue
		}
		if n, err := s.Check(s.Default); err != nil || n != s.Default {
			t.Errorf("%s default %q: %q, %v", s.Name, s.Default, n, err)
		}
	}
}

func TestResolveConfig(t *testing.T) {
	global := map[string]string{"MaxLogFileSize": "2048000", "PeerFirmwareSharing": "true"}
	site := map[string]string{"PeerFirmwareSharing": "false"}
	got := map[string]deviceupdate.ConfigValue{}
	for _, v := range deviceupdate.ResolveConfig(global, site, "site:Redmond") {
		got[v.Name] = v
	}
	for name, want := range map[string]deviceupdate.ConfigValue{
		"MaxLogFileSize":      {Name: "MaxLogFileSize", Value: "2048000", Source: "global"},
		"PeerFirmwareSharing": {Name: "PeerFirmwareSharing", Value: "false", Source: "site:Redmond"},
		"PollIntervalSeconds": {Name: "PollIntervalSeconds", Value: "86400", Source: "default"},
	} {
		if got[name] != want {
			t.Errorf("%s = %+v, want %+v", name, got[name], want)
		}
	}
}

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
