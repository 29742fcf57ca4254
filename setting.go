package deviceupdate

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Setting is one configuration key (Get/Set-CsDeviceUpdateConfiguration,
// SPEC §6): its default and the rule that checks and normalises a value.
type Setting struct {
	Name    string
	Default string
	Help    string
	parse   func(string) (string, error)
}

// Settings lists every configuration key, in display order.
var Settings = []Setting{
	{"MaxLogFileSize", "1024000", "largest device log accepted, in bytes (1024 to 1073741824)", intRange(1024, 1<<30)},
	{"MaxLogCacheLimit", "512000", "device log bytes buffered in memory before a flush (0 to 1073741824)", intRange(0, 1<<30)},
	{"LogFlushInterval", "00:05:00", "how often buffered device logs are written (hh:mm:ss, 00:00:01 to 24:00:00)", timeSpan(time.Second, 24*time.Hour)},
	{"LogCleanUpInterval", "10", "days device logs are kept (1 to 365)", intRange(1, 365)},
	{"LogCleanUpTimeOfDay", "", "time of day the log cleaner runs (hh:mm, 24-hour), or empty to run it every hour", timeOfDay},
	{"ValidLogFileTypes", "Watson,Config,Diaglog,CELog", "log types phones may upload (comma-separated identifiers)", nameList(false)},
	{"ValidLogFileExtensions", ".dmp,.clg,.clg1,.clg2,.bak,.kdmp,.dat,.bin,.cat,.xml,.txt,.hex", "log file extensions accepted (comma-separated, each starting with '.')", nameList(true)},
	{"PeerFirmwareSharing", "false", "whether phones share firmware with their peers (true or false)", boolean},
	{"PollIntervalSeconds", "86400", "seconds between a phone's periodic polls (3600 to 604800)", intRange(3600, 604800)},
	{"InternalHostName", "", "host[:port] of BaseURL in poll answers, or empty for the host the phone asked", hostPort},
	{"ExternalHostName", "", "host[:port] of ExternalBaseURL in poll answers, or empty for the host the phone asked", hostPort},
	{"TimeZone", "", "IANA time zone of a staged rollout's --window (such as Europe/Berlin), or empty for the server's", timeZone},
}

// timeZone checks an IANA time zone name; "Local" is refused, as empty
// says the same.
func timeZone(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if v == "Local" || len(v) > 64 {
		return "", fmt.Errorf("not a time zone")
	}
	if _, err := time.LoadLocation(v); err != nil {
		return "", fmt.Errorf("not a time zone this server knows")
	}
	return v, nil
}

// LoadTimeZone returns the time zone a TimeZone setting names, the
// server's for "" (or a name it no longer knows).
func LoadTimeZone(v string) *time.Location {
	if v == "" {
		return time.Local
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		return time.Local
	}
	return loc
}

// LookupSetting finds a setting by name, case-insensitively.
func LookupSetting(name string) (Setting, bool) {
	for _, s := range Settings {
		if strings.EqualFold(s.Name, name) {
			return s, true
		}
	}
	return Setting{}, false
}

// Check validates a value and returns its normal form.
func (s Setting) Check(v string) (string, error) {
	n, err := s.parse(strings.TrimSpace(v))
	if err != nil {
		return "", Errorf(EINVALID, "%s=%s: %v; want %s", s.Name, truncateForMessage(v), err, s.Help)
	}
	return n, nil
}

func intRange(lo, hi int64) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("not a whole number")
		}
		if n < lo || n > hi {
			return "", fmt.Errorf("out of range")
		}
		return strconv.FormatInt(n, 10), nil
	}
}

func timeSpan(lo, hi time.Duration) func(string) (string, error) {
	return func(v string) (string, error) {
		d, err := parseTimeSpan(v)
		if err != nil {
			return "", err
		}
		if d < lo || d > hi {
			return "", fmt.Errorf("out of range")
		}
		return formatTimeSpan(d), nil
	}
}

// parseTimeSpan reads hh:mm:ss (Lync's TimeSpan) or a Go duration (5m).
func parseTimeSpan(v string) (time.Duration, error) {
	if p := strings.Split(v, ":"); len(p) == 3 {
		var n [3]int
		for i, s := range p {
			x, err := strconv.Atoi(s)
			if err != nil || x < 0 || i > 0 && x > 59 {
				return 0, fmt.Errorf("not hh:mm:ss")
			}
			n[i] = x
		}
		return time.Duration(n[0])*time.Hour + time.Duration(n[1])*time.Minute + time.Duration(n[2])*time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("not hh:mm:ss")
	}
	return d, nil
}

func formatTimeSpan(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}

func timeOfDay(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	t, err := time.Parse("15:04", v)
	if err != nil {
		return "", fmt.Errorf("not hh:mm")
	}
	return t.Format("15:04"), nil
}

func nameList(extensions bool) func(string) (string, error) {
	return func(v string) (string, error) {
		var out []string
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			name := item
			if extensions {
				if !strings.HasPrefix(item, ".") {
					return "", fmt.Errorf("%q does not start with '.'", item)
				}
				name = item[1:]
				item = strings.ToLower(item)
			}
			if !ValidIdentifier(name) || strings.Contains(name, ".") && extensions {
				return "", fmt.Errorf("%q is not a valid entry", item)
			}
			out = append(out, item)
		}
		return strings.Join(out, ","), nil
	}
}

// hostPort accepts a DNS name or an IP address, with an optional port:
// what goes between "://" and the path of a URL.
func hostPort(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	host, port := v, ""
	if h, p, err := net.SplitHostPort(v); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		host = v[1 : len(v)-1]
	} else if strings.Count(v, ":") > 1 {
		return "", fmt.Errorf("write an IPv6 address as [2001:db8::1] or [2001:db8::1]:8443")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("port %q is not 1 to 65535", port)
		}
		port = strconv.Itoa(n)
	}
	if strings.ContainsAny(host, "[]") {
		return "", fmt.Errorf("%q is not a host name", host)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("an address with a zone cannot be in a URL")
		}
		host = a.String()
		if a.Is6() {
			host = "[" + host + "]"
		}
	} else if err := ValidateDNSName(strings.TrimSuffix(host, ".")); err != nil {
		return "", fmt.Errorf("%q is not a host name: %s", host, ErrorMessage(err))
	} else {
		host = strings.ToLower(host)
	}
	if port != "" {
		return net.JoinHostPort(strings.Trim(host, "[]"), port), nil
	}
	return host, nil
}

func boolean(v string) (string, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return "", fmt.Errorf("not true or false")
	}
	return strconv.FormatBool(b), nil
}

// ConfigScope names where settings apply: "global" or "site:<name>".
func ConfigScope(site string) (string, error) {
	if site == "" {
		return ScopeGlobal, nil
	}
	if !ValidIdentifier(site) {
		return "", Errorf(EINVALID, "site %q: want 1-64 letters, digits, '-', '_' or '.'", truncateForMessage(site))
	}
	return "site:" + site, nil
}

// ConfigValue is a setting's effective value and where it comes from.
type ConfigValue struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"` // "default", "global" or "site:<name>"
}

// ResolveConfig returns every setting's effective value for a scope:
// the site's override, else the global one, else the default.
func ResolveConfig(global, site map[string]string, siteScope string) []ConfigValue {
	out := make([]ConfigValue, 0, len(Settings))
	for _, s := range Settings {
		v := ConfigValue{Name: s.Name, Value: s.Default, Source: "default"}
		if g, ok := global[s.Name]; ok {
			v.Value, v.Source = g, ScopeGlobal
		}
		if x, ok := site[s.Name]; ok {
			v.Value, v.Source = x, siteScope
		}
		out = append(out, v)
	}
	return out
}

// CheckSettings validates name=value pairs for Set: every name must be a
// setting and every non-empty value valid. It returns them keyed by the
// settings' canonical names, with normal values; an empty value removes
// the override.
func CheckSettings(in map[string]string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, Errorf(EINVALID, "no settings given; write KEY=VALUE")
	}
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	out := map[string]string{}
	for _, k := range names {
		s, ok := LookupSetting(k)
		if !ok {
			var all []string
			for _, s := range Settings {
				all = append(all, s.Name)
			}
			return nil, Errorf(EINVALID, "unknown setting %q; the settings are %s", truncateForMessage(k), strings.Join(all, ", "))
		}
		v := in[k]
		if v != "" {
			var err error
			if v, err = s.Check(v); err != nil {
				return nil, err
			}
		}
		out[s.Name] = v
	}
	return out, nil
}

// ConfigService reads and changes the configuration; changes are audited.
type ConfigService interface {
	// Config returns the effective settings for a scope. Errors:
	// ENOTFOUND (the scope's site does not exist).
	Config(ctx context.Context, scope string) ([]ConfigValue, error)
	// SetConfig validates and applies settings at a scope in one step
	// (EINVALID, or ENOTFOUND for a site that does not exist: nothing
	// changes) and returns the effective settings.
	SetConfig(ctx context.Context, scope string, settings map[string]string, actor string) ([]ConfigValue, error)
}
