// Package upx reads and writes the phone protocol of SPEC §5: the
// <Request> a phone POSTs to ucdevice.upx and the <Response> it gets.
//
// Real phones' exact XML is not public, so the reader is permissive:
// element and attribute names match case-insensitively, unknown elements
// are ignored, <Vendor> stands for <Brand>, and modules come either as
// <Module> elements or as Lync's audit form "Filename;Version;Timestamp"
// joined by '#'. It is also bounded: size, depth and module count.
package upx

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/xmlsafe"
)

// Limits of a request.
const (
	MaxRequestSize = 64 << 10
	MaxModules     = 32
	maxDepth       = 8
	maxTextLen     = 256
)

// ParseRequest reads a poll. Every error is an EINVALID *deviceupdate.Error
// whose message says what is wrong; the raw body is the caller's to log.
func ParseRequest(data []byte) (deviceupdate.PollRequest, error) {
	var req deviceupdate.PollRequest
	if len(data) > MaxRequestSize {
		return req, deviceupdate.Errorf(deviceupdate.ETOOLARGE, "request is %d bytes, more than %d", len(data), MaxRequestSize)
	}
	fields := map[string]*string{
		"devicetype": &req.DeviceType, "macaddress": &req.MAC, "serialnumber": &req.Serial,
		"brand": &req.Brand, "vendor": &req.Brand, "model": &req.Model, "revision": &req.Revision,
		"locale": &req.Locale, "userid": &req.UserID, "trigger": &req.Trigger,
	}
	dec := xmlsafe.NewDecoder(data)
	var path []string // lower-case element names from the root
	var text strings.Builder
	sawRequest := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return req, deviceupdate.Errorf(deviceupdate.EINVALID, "request is not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := strings.ToLower(t.Name.Local)
			path = append(path, name)
			text.Reset()
			switch {
			case len(path) > maxDepth:
				return req, deviceupdate.Errorf(deviceupdate.EINVALID, "request nests deeper than %d elements", maxDepth)
			case len(path) == 1 && name != "request":
				return req, deviceupdate.Errorf(deviceupdate.EINVALID, "root element is <%s>, want <Request>", t.Name.Local)
			case len(path) == 1:
				sawRequest = true
			case len(path) == 3 && path[1] == "modules" && name == "module":
				m, err := moduleFromAttrs(t.Attr)
				if err != nil {
					return req, err
				}
				if err := addModule(&req, m); err != nil {
					return req, err
				}
			}
		case xml.CharData:
			if text.Len()+len(t) > MaxRequestSize {
				return req, deviceupdate.Errorf(deviceupdate.EINVALID, "request text too long")
			}
			text.Write(t)
		case xml.EndElement:
			if len(path) == 2 {
				v := strings.TrimSpace(text.String())
				if dst, ok := fields[path[1]]; ok {
					*dst = v
				} else if path[1] == "modules" && v != "" {
					if err := parseAuditModules(&req, v); err != nil {
						return req, err
					}
				}
			}
			path = path[:len(path)-1]
			text.Reset()
		case xml.Directive:
			return req, deviceupdate.Errorf(deviceupdate.EINVALID, "request has a <!...> directive; DTDs are not allowed")
		}
	}
	if !sawRequest {
		return req, deviceupdate.Errorf(deviceupdate.EINVALID, "request has no <Request> element")
	}
	return req, validate(&req)
}

// validate checks the identity and normalises the MAC.
func validate(req *deviceupdate.PollRequest) error {
	for _, f := range []struct{ name, v string }{
		{"DeviceType", req.DeviceType}, {"Brand", req.Brand}, {"Model", req.Model}, {"Revision", req.Revision}, {"Locale", req.Locale},
	} {
		if f.v == "" {
			return deviceupdate.Errorf(deviceupdate.EINVALID, "request has no <%s>", f.name)
		}
		if !deviceupdate.ValidIdentifier(f.v) {
			return deviceupdate.Errorf(deviceupdate.EINVALID, "<%s> %q is not an identifier", f.name, clip(f.v))
		}
	}
	if req.MAC == "" && req.Serial == "" {
		return deviceupdate.Errorf(deviceupdate.EINVALID, "request has neither <MacAddress> nor <SerialNumber>")
	}
	if req.MAC != "" {
		mac, err := deviceupdate.NormalizeMAC(req.MAC)
		if err != nil {
			return err
		}
		req.MAC = mac
	}
	if req.Serial != "" && !deviceupdate.ValidSerial(req.Serial) {
		return deviceupdate.Errorf(deviceupdate.EINVALID, "<SerialNumber> %q: want letters, digits, '-' or '_'", clip(req.Serial))
	}
	if len(req.UserID) > maxTextLen {
		return deviceupdate.Errorf(deviceupdate.EINVALID, "<UserId> is longer than %d bytes", maxTextLen)
	}
	switch t := strings.ToLower(req.Trigger); t {
	case "", "boot", "signin", "periodic":
		req.Trigger = t
	default:
		req.Trigger = "" // an unknown trigger is not worth refusing a poll
	}
	return nil
}

func moduleFromAttrs(attrs []xml.Attr) (deviceupdate.Module, error) {
	get := func(name string) string {
		for _, a := range attrs {
			if strings.EqualFold(a.Name.Local, name) {
				return strings.TrimSpace(a.Value)
			}
		}
		return ""
	}
	return makeModule(get("UpdateType"), get("Filename"), get("Version"), get("Timestamp"))
}

// parseAuditModules reads Lync's audit form: Filename;Version;Timestamp
// joined by '#'.
func parseAuditModules(req *deviceupdate.PollRequest, s string) error {
	for _, item := range strings.Split(s, "#") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		p := strings.Split(item, ";")
		if len(p) < 2 || len(p) > 3 {
			return deviceupdate.Errorf(deviceupdate.EINVALID, "module %q: want Filename;Version;Timestamp", clip(item))
		}
		ts := ""
		if len(p) == 3 {
			ts = p[2]
		}
		m, err := makeModule("", p[0], p[1], ts)
		if err != nil {
			return err
		}
		if err := addModule(req, m); err != nil {
			return err
		}
	}
	return nil
}

func makeModule(updateType, filename, version, timestamp string) (deviceupdate.Module, error) {
	if updateType == "" {
		updateType = deviceupdate.DefaultUpdateType
	}
	m := deviceupdate.Module{UpdateType: updateType, Filename: strings.TrimSpace(filename), Timestamp: strings.TrimSpace(timestamp)}
	if !deviceupdate.ValidIdentifier(updateType) {
		return m, deviceupdate.Errorf(deviceupdate.EINVALID, "module UpdateType %q is not an identifier", clip(updateType))
	}
	if m.Filename != "" && !deviceupdate.ValidFileName(m.Filename) {
		return m, deviceupdate.Errorf(deviceupdate.EINVALID, "module Filename %q is not a plain file name", clip(m.Filename))
	}
	if len(m.Timestamp) > maxTextLen {
		return m, deviceupdate.Errorf(deviceupdate.EINVALID, "module Timestamp is longer than %d bytes", maxTextLen)
	}
	v, err := deviceupdate.ParseVersion(strings.TrimSpace(version))
	if err != nil {
		return m, deviceupdate.Errorf(deviceupdate.EINVALID, "module %s: %s", m.Filename, deviceupdate.ErrorMessage(err))
	}
	m.Version = v
	return m, nil
}

func addModule(req *deviceupdate.PollRequest, m deviceupdate.Module) error {
	if len(req.Modules) >= MaxModules {
		return deviceupdate.Errorf(deviceupdate.EINVALID, "request lists more than %d modules", MaxModules)
	}
	req.Modules = append(req.Modules, m)
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
