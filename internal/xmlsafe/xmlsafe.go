// Package xmlsafe makes the XML decoder the update description parser
// uses, and the poll parser's tests use as its reference (internal/upx
// has its own scanner): strict, and UTF-8 (or ASCII) only. encoding/xml never
// expands external entities; the parsers refuse <!DOCTYPE> themselves.
package xmlsafe

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// NewDecoder returns a strict decoder over data that refuses any encoding
// but UTF-8 and ASCII.
func NewDecoder(data []byte) *xml.Decoder {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	dec.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		if strings.EqualFold(label, "utf-8") || strings.EqualFold(label, "us-ascii") {
			return r, nil
		}
		return nil, fmt.Errorf("encoding %q is not supported; write UTF-8", label)
	}
	return dec
}
