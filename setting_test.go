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
		{"time zone", map[string]string{"TimeZone": "Europe/Berlin"}, map[string]string{"TimeZone": "Europe/Berlin"}, ""},
		{"unknown time zone", map[string]string{"TimeZone": "Mars/Olympus"}, nil, "not a time zone this server knows"},
		{"Local time zone", map[string]string{"TimeZone": "Local"}, nil, "TimeZone=Local: not a time zone"},
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

func TestHostNameSettings(t *testing.T) {
	tests := []struct{ in, want string }{
		{"updates.contoso.com", "updates.contoso.com"},
		{"Updates.Contoso.COM:8443", "updates.contoso.com:8443"},
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:80", "192.0.2.1:80"},
		{"[2001:db8::1]", "[2001:db8::1]"},
		{"[2001:DB8::1]:8443", "[2001:db8::1]:8443"},
		{"", ""},
		{"2001:db8::1", "!"},
		{"bad host", "!"},
		{"host:0", "!"},
		{"host:99999", "!"},
		{"-bad.example", "!"},
		{"http://host", "!"},
		{"[fe80::1%eth0]", "!"},
	}
	for _, tt := range tests {
		got, err := deviceupdate.CheckSettings(map[string]string{"InternalHostName": tt.in})
		if tt.want == "!" {
			if err == nil {
				t.Errorf("InternalHostName=%q accepted as %q", tt.in, got["InternalHostName"])
			}
			continue
		}
		if err != nil || got["InternalHostName"] != tt.want {
			t.Errorf("InternalHostName=%q: %q, %v; want %q", tt.in, got["InternalHostName"], err, tt.want)
		}
	}
}
