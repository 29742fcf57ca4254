// Package updatepkg owns the update package format (SPEC §3): a cabinet
// holding, per update, a description <base>.xml, its .nbt images and a
// security catalog <base>.cat listing the hashes of all of them. Build
// writes packages and Stage reads and verifies them; the description's
// writer and reader sit side by side in this file.
package updatepkg

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/xmlsafe"
)

// MaxDescriptionSize bounds a description file; a real one is a few
// hundred bytes.
const MaxDescriptionSize = 64 << 10

const maxDescriptionDepth = 8

// ParseDescription reads an update description:
//
//	<Update DeviceType="UCPhone" Brand="Polycom" Model="CX600" Revision="A"
//	        Locale="ENU" UpdateType="CPE" Version="4.0.7577.4366">
//	  <File Name="CPE.nbt"/>
//	</Update>
//
// Element and attribute names are matched case-insensitively; unknown
// attributes and elements are ignored. The result is validated
// (deviceupdate.Update.Validate). Errors are *deviceupdate.Error with
// code EINVALID.
func ParseDescription(data []byte) (deviceupdate.Update, error) {
	var u deviceupdate.Update
	if len(data) > MaxDescriptionSize {
		return u, deviceupdate.Errorf(deviceupdate.EINVALID, "description is %d bytes, more than %d", len(data), MaxDescriptionSize)
	}
	dec := xmlsafe.NewDecoder(data)
	depth := 0
	sawUpdate, inUpdate := false, false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return u, deviceupdate.Errorf(deviceupdate.EINVALID, "description is not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > maxDescriptionDepth {
				return u, deviceupdate.Errorf(deviceupdate.EINVALID, "description nests deeper than %d elements", maxDescriptionDepth)
			}
			if depth <= 2 && inUpdate || depth == 1 {
				if err := checkDistinctAttrs(t); err != nil {
					return u, err
				}
			}
			switch {
			case depth == 1 && sawUpdate:
				// encoding/xml reads on past the first root; a document
				// has only one, and a second would be a second identity.
				return u, deviceupdate.Errorf(deviceupdate.EINVALID, "description has more than one root element (<%s> after </Update>)", t.Name.Local)
			case depth == 1 && strings.EqualFold(t.Name.Local, "Update"):
				if err := readUpdateAttrs(&u, t.Attr); err != nil {
					return u, err
				}
				sawUpdate, inUpdate = true, true
			case depth == 1:
				return u, deviceupdate.Errorf(deviceupdate.EINVALID, "description's root element is <%s>, want <Update>", t.Name.Local)
			case depth == 2 && inUpdate && strings.EqualFold(t.Name.Local, "File"):
				name, ok := attr(t.Attr, "Name")
				if !ok {
					return u, deviceupdate.Errorf(deviceupdate.EINVALID, "a <File> element has no Name attribute")
				}
				if len(u.Files) >= deviceupdate.MaxUpdateFiles {
					return u, deviceupdate.Errorf(deviceupdate.EINVALID, "the update names more than %d files", deviceupdate.MaxUpdateFiles)
				}
				u.Files = append(u.Files, name)
			}
		case xml.EndElement:
			depth--
			if depth == 0 {
				inUpdate = false
			}
		case xml.Directive:
			return u, deviceupdate.Errorf(deviceupdate.EINVALID, "description has a <!%s> directive; DTDs are not allowed", firstWord(t))
		}
	}
	if !sawUpdate {
		return u, deviceupdate.Errorf(deviceupdate.EINVALID, "description has no <Update> element")
	}
	if err := u.Validate(); err != nil {
		return u, err
	}
	return u, nil
}

func readUpdateAttrs(u *deviceupdate.Update, attrs []xml.Attr) error {
	fields := []struct {
		name string
		dst  *string
	}{
		{"DeviceType", &u.DeviceType}, {"Brand", &u.Brand}, {"Model", &u.Model},
		{"Revision", &u.Revision}, {"Locale", &u.Locale}, {"UpdateType", &u.UpdateType},
	}
	for _, f := range fields {
		v, ok := attr(attrs, f.name)
		if !ok {
			return deviceupdate.Errorf(deviceupdate.EINVALID, "<Update> has no %s attribute", f.name)
		}
		*f.dst = v
	}
	v, ok := attr(attrs, "Version")
	if !ok {
		return deviceupdate.Errorf(deviceupdate.EINVALID, "<Update> has no Version attribute")
	}
	ver, err := deviceupdate.ParseVersion(v)
	if err != nil {
		return err
	}
	u.Version = ver
	return nil
}

// checkDistinctAttrs refuses an element that gives an attribute twice in
// different cases (Model and model): names are matched in any case, so
// which one counts would be a guess.
// A map, not a pair loop: a 64 KiB description can hold thousands of
// attributes.
func checkDistinctAttrs(t xml.StartElement) error {
	if len(t.Attr) < 2 {
		return nil
	}
	seen := make(map[string]string, len(t.Attr))
	for _, a := range t.Attr {
		if a.Name.Space != "" {
			continue
		}
		k := strings.ToLower(a.Name.Local)
		if first, ok := seen[k]; ok {
			return deviceupdate.Errorf(deviceupdate.EINVALID, "<%s> has the %s attribute twice (as %s and %s)", t.Name.Local, first, first, a.Name.Local)
		}
		seen[k] = a.Name.Local
	}
	return nil
}

// attr returns the value of the attribute named name, in any case.
func attr(attrs []xml.Attr, name string) (string, bool) {
	for _, a := range attrs {
		if a.Name.Space == "" && strings.EqualFold(a.Name.Local, name) {
			return a.Value, true
		}
	}
	return "", false
}

func firstWord(d xml.Directive) string {
	w, _, _ := strings.Cut(strings.TrimSpace(string(d)), " ")
	return w
}

// formatDescription returns the update's description (SPEC §3), which
// ParseDescription reads back.
func formatDescription(u deviceupdate.Update) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString("<Update")
	writeUpdateAttrs(&b, u)
	b.WriteString(">")
	for _, f := range u.Files {
		b.WriteString("\n  <File Name=\"")
		xmlEscape(&b, f)
		b.WriteString("\"/>")
	}
	b.WriteString("\n</Update>\n")
	return b.Bytes()
}

// formatUpdateInfo returns the informative index of a package's updates
// that SPEC §3 describes; Stage does not read it.
func formatUpdateInfo(u deviceupdate.Update) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString("<Updates><Updates><Update")
	writeUpdateAttrs(&b, u)
	b.WriteString("/></Updates></Updates>\n")
	return b.Bytes()
}

// writeUpdateAttrs writes the attributes of an <Update> element, those
// readUpdateAttrs reads.
func writeUpdateAttrs(b *bytes.Buffer, u deviceupdate.Update) {
	for _, a := range [...][2]string{
		{"DeviceType", u.DeviceType}, {"Brand", u.Brand}, {"Model", u.Model}, {"Revision", u.Revision},
		{"Locale", u.Locale}, {"UpdateType", u.UpdateType}, {"Version", u.Version.String()},
	} {
		b.WriteString(" " + a[0] + "=\"")
		xmlEscape(b, a[1])
		b.WriteString("\"")
	}
}

func xmlEscape(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s)) // a bytes.Buffer does not fail
}
