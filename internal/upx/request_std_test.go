package upx

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/xmlsafe"
)

// parseRequestStd is ParseRequest as it was before the scanner: the same
// walk over encoding/xml's tokens. It stays as the reference the
// differential fuzz test and the benchmarks compare the scanner with, so
// apart from validate, makeModule and addModule it keeps its own copy of
// every helper (parseAuditModulesStd is the old strings.Split version).
func parseRequestStd(data []byte) (deviceupdate.PollRequest, error) {
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
				m, err := moduleFromAttrsStd(t.Attr)
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
					if err := parseAuditModulesStd(&req, v); err != nil {
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

func moduleFromAttrsStd(attrs []xml.Attr) (deviceupdate.Module, error) {
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

func parseAuditModulesStd(req *deviceupdate.PollRequest, s string) error {
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

// marshalStd is how the response was once rendered: encoding/xml plus the
// header.
func marshalStd(r *Response) ([]byte, error) {
	out, err := xml.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), out...), nil
}
