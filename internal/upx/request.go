// Package upx reads and writes the phone protocol of SPEC §5: the
// <Request> a phone POSTs to ucdevice.upx and the <Response> it gets.
//
// Real phones' exact XML is not public, so the reader is permissive:
// element and attribute names match case-insensitively, unknown elements
// are ignored, <Vendor> stands for <Brand>, and modules come either as
// <Module> elements or as Lync's audit form "Filename;Version;Timestamp"
// joined by '#'. It is also bounded: size, depth and module count.
//
// Polls are the service's hot path, so the XML is read by a small scanner
// of its own (scan.go) rather than encoding/xml, and the response is
// written without reflection. Tests hold both to encoding/xml's results.
package upx

import (
	"strings"

	"github.com/deviceupdate/deviceupdate"
)

// Limits of a request.
const (
	MaxRequestSize = 64 << 10
	MaxModules     = 32
	maxDepth       = 8
	maxTextLen     = 256
)

// ParseRequest reads a poll. Every error is an EINVALID *deviceupdate.Error
// (ETOOLARGE past MaxRequestSize) whose message says what is wrong; the raw
// body is the caller's to log. It does not keep data: the strings it
// returns are its own.
func ParseRequest(data []byte) (deviceupdate.PollRequest, error) {
	if len(data) > MaxRequestSize {
		return deviceupdate.PollRequest{}, deviceupdate.Errorf(deviceupdate.ETOOLARGE, "request is %d bytes, more than %d", len(data), MaxRequestSize)
	}
	p := scanner{s: string(data), share: len(data) <= shareLimit}
	if err := p.parse(); err != nil {
		return p.req, err
	}
	return p.req, validate(&p.req)
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

// parseAuditModules reads Lync's audit form: Filename;Version;Timestamp
// joined by '#'. It cuts rather than splits, so that a body of '#'s costs
// no allocation.
func parseAuditModules(req *deviceupdate.PollRequest, s string) error {
	for more := true; more; {
		var item string
		item, s, more = strings.Cut(s, "#")
		if strings.TrimSpace(item) == "" {
			continue
		}
		if n := strings.Count(item, ";"); n < 1 || n > 2 {
			return deviceupdate.Errorf(deviceupdate.EINVALID, "module %q: want Filename;Version;Timestamp", clip(item))
		}
		filename, rest, _ := strings.Cut(item, ";")
		version, ts, _ := strings.Cut(rest, ";")
		m, err := makeModule("", filename, version, ts)
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
