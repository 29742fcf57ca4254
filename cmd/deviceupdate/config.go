package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/blobstore"
	"github.com/deviceupdate/deviceupdate/internal/pool"
)

//go:embed deviceupdate.yaml
var defaultConfigYAML []byte

// Config is what `serve` runs with: the embedded defaults, overridden by
// the --config file, overridden by flags. Each field's yaml key is also
// its flag name.
type Config struct {
	Data     string `yaml:"data"`
	Certs    string `yaml:"certs"`
	HTTPS    string `yaml:"https"`
	HTTP     string `yaml:"http"`
	Domain   string `yaml:"domain"`
	LogLevel string `yaml:"log-level"`
	// DNS and DNSAnswer configure the discovery responder (serve_dns.go).
	DNS       string `yaml:"dns"`
	DNSAnswer string `yaml:"dns-answer"`
	// Herd control and the device log quota (limits.go).
	MaxPolls     string `yaml:"max-polls"`
	MaxDownloads string `yaml:"max-downloads"`
	MaxUploads   string `yaml:"max-uploads"`
	LogQuota     string `yaml:"log-quota"`
	// The listener published to the internet, the private metrics
	// listener and the TLS floor (serve_tls.go); the inventory's cap.
	External   string `yaml:"external"`
	Metrics    string `yaml:"metrics"`
	TLSMin     string `yaml:"tls-min"`
	MaxDevices string `yaml:"max-devices"`

	// Herd control of the external phones, a pool of their own (limits.go).
	MaxExternalPolls     string `yaml:"max-external-polls"`
	MaxExternalDownloads string `yaml:"max-external-downloads"`
	MaxExternalUploads   string `yaml:"max-external-uploads"`

	// The pool's file store and this front end's cache of it (SPEC §11).
	Files      string `yaml:"files"`
	FilesCache string `yaml:"files-cache"`
	// The pool's store: a PostgreSQL URL, or "" for bbolt under Data.
	Store string `yaml:"store"`
}

// flagHelp documents each setting for --help.
var flagHelp = map[string]string{
	"data":      "data folder: store, update files, device and audit logs",
	"certs":     "folder for ca.crt, ca.key, server.crt, server.key, admin.token and trusted/",
	"https":     "HTTPS listen address (phones, admin API, metrics with the admin token)",
	"http":      `internal plain-HTTP listen address ("" disables it)`,
	"domain":    "DNS domain; the certificate carries UCUpdates-R2.<domain>",
	"log-level": "log level: debug, info, warn or error",

	// herd control and the device log quota
	"max-polls":     "polls answered at once; past it phones get 503 with Retry-After",
	"max-downloads": "update file downloads served at once; past it 503 with Retry-After",
	"max-uploads":   "device log uploads received at once; past it 503 with Retry-After",
	"log-quota":     "disk space all device logs may take (e.g. 2GiB, 500MiB); the oldest are deleted past it; 0 for no quota",

	// herd control of the external phones
	"max-external-polls":     "external phones' polls answered at once, apart from --max-polls; past it 503",
	"max-external-downloads": "external phones' downloads served at once, apart from --max-downloads; past it 503",
	"max-external-uploads":   "external phones' log uploads received at once, apart from --max-uploads; past it 503",

	// the discovery responder
	"dns":        `discovery responder listen address for ucupdates-r2.<domain>, UDP and TCP, e.g. 10.0.0.5:53 ("" disables it)`,
	"dns-answer": "addresses the responder answers with, comma-separated (default: the --https address, else this host's addresses)",

	// the listener published to the internet, metrics, TLS, the inventory
	"external":    `HTTPS listen address to publish to the internet: external phones' endpoints and /healthz only ("" disables it)`,
	"metrics":     `plain-HTTP listen address of /metrics without a token, for a private network ("" disables it)`,
	"tls-min":     "oldest TLS version accepted: 1.2 (AEAD suites only), 1.3, or 1.0/1.1 for Lync Phone Edition phones (weaker: a warning at start)",
	"max-devices": "devices the inventory holds at most; past it new devices are answered but not recorded",

	// a pool's file store
	"files":       `update files of a pool: a shared folder or s3://BUCKET/PREFIX (credentials from AWS_*); "" keeps them under --data`,
	"files-cache": "disk space this server's local copies of --files update files may take (<data>/cache), e.g. 10GiB",
	"store":       `a pool's state: postgres://USER@HOST:PORT/DATABASE (password from PGPASSWORD or ~/.pgpass); needs --files; "" keeps it in <data>/deviceupdate.db`,
}

// DefaultConfig returns the embedded defaults.
func DefaultConfig() Config {
	var c Config
	if err := decodeConfig(defaultConfigYAML, &c); err != nil {
		panic("embedded deviceupdate.yaml: " + err.Error()) // a build defect; TestDefaultConfig guards it
	}
	return c
}

// fields returns the settings by key, as pointers into c.
func (c *Config) fields() map[string]*string {
	out := map[string]*string{}
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		out[v.Type().Field(i).Tag.Get("yaml")] = v.Field(i).Addr().Interface().(*string)
	}
	return out
}

// bindFlags registers one flag per setting, with the current values as
// defaults, into fs; apply copies the flags the user set back into c.
func (c *Config) bindFlags(fs *pflag.FlagSet) (apply func(dst *Config)) {
	vals := map[string]*string{}
	for key, p := range c.fields() {
		vals[key] = fs.String(key, *p, flagHelp[key])
	}
	return func(dst *Config) {
		for key, p := range dst.fields() {
			if fs.Changed(key) {
				*p = *vals[key]
			}
		}
	}
}

// LoadFile overrides c with the settings in a YAML file.
func (c *Config) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := decodeConfig(data, c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

var (
	unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
	wrongKind    = regexp.MustCompile("cannot unmarshal !!(\\w+) (?:`[^`]*` )?into (\\S+)")
)

// decodeConfig reads YAML settings into c. Its error is one line per
// problem, each starting "line N:", joined by "; ".
func decodeConfig(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(c)
	if errors.Is(err, io.EOF) || err == nil {
		return nil
	}
	known := make([]string, 0, len(flagHelp))
	for k := range c.fields() {
		known = append(known, k)
	}
	slices.Sort(known)
	problems := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		problems = te.Errors
	}
	for i, p := range problems {
		p = unknownField.ReplaceAllString(p, fmt.Sprintf(`unknown setting "$1" (settings: %s)`, strings.Join(known, ", ")))
		problems[i] = wrongKind.ReplaceAllStringFunc(p, func(m string) string {
			sub := wrongKind.FindStringSubmatch(m)
			if !strings.HasPrefix(sub[2], "string") {
				return "want settings as KEY: VALUE lines"
			}
			kind, ok := map[string]string{"seq": "list", "map": "mapping"}[sub[1]]
			if !ok {
				kind = "!!" + sub[1]
			}
			return "want one value, not a " + kind
		})
	}
	return errors.New(strings.Join(problems, "; "))
}

// Validate checks every setting and says how to fix the first bad one.
func (c *Config) Validate() error {
	if c.Data == "" {
		return errors.New("--data is empty; name the data folder")
	}
	if c.Certs == "" {
		return errors.New("--certs is empty; name the certificates folder")
	}
	if c.HTTPS == "" {
		return errors.New("--https is empty; the HTTPS listener cannot be disabled (the admin API and external phones need it)")
	}
	for name, addr := range map[string]string{"https": c.HTTPS, "http": c.HTTP} {
		if addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return fmt.Errorf("--%s %q is not a listen address; write host:port, :port or [ipv6]:port, e.g. :8443", name, addr)
		}
	}
	if _, port, _ := net.SplitHostPort(c.HTTP); c.HTTP == c.HTTPS && port != "0" {
		return fmt.Errorf("--http and --https are both %s; give them different ports", c.HTTP)
	}
	if c.Domain != "" {
		if err := checkDomainFlag(c.Domain); err != nil {
			return err
		}
	}
	if _, err := c.Limits(); err != nil {
		return err
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if err := c.validateDNS(); err != nil {
		return err
	}
	if err := c.validateListeners(); err != nil {
		return err
	}
	if _, _, err := c.filesLocation(); err != nil {
		return err
	}
	if c.Store != "" {
		if _, err := pool.CheckURL(c.Store); err != nil {
			return fmt.Errorf("--store: %w", err)
		}
		if c.Files == "" {
			return errors.New("--store postgres://... needs --files DIR or --files s3://BUCKET/PREFIX: every front end of a pool serves the same update files, so they must be in a file store all of them reach")
		}
	}
	return nil
}

// filesLocation reads --files and --files-cache; loc is the zero
// Location without --files.
func (c *Config) filesLocation() (loc blobstore.Location, cacheBytes int64, err error) {
	n, err := parseSize(c.FilesCache)
	if err != nil || n == 0 {
		return loc, 0, fmt.Errorf("--files-cache %q: want a size such as 10GiB or 500MiB", c.FilesCache)
	}
	if c.Files == "" {
		return loc, n, nil
	}
	loc, err = blobstore.ParseLocation(c.Files)
	if err != nil {
		return loc, 0, fmt.Errorf("--files: %w", err)
	}
	return loc, n, nil
}

// checkDomainFlag refuses a --domain that is not a DNS domain, saying
// why.
func checkDomainFlag(d string) error {
	if err := deviceupdate.ValidateDNSName(d); err != nil {
		return fmt.Errorf("--domain %q is not a DNS domain: %s; write e.g. contoso.com", d, deviceupdate.ErrorMessage(err))
	}
	return nil
}
