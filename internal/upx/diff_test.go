package upx_test

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/deviceupdate/deviceupdate/internal/upx"
	"github.com/deviceupdate/deviceupdate/internal/xmlsafe"
)

// checkAgainstStd fails unless ParseRequest and the encoding/xml reference
// both refuse data, or both accept it and read the same PollRequest. The
// only exceptions are the refusals scan.go documents, each confirmed here
// by looking at data with encoding/xml:
//   - content outside the root element (text, CDATA, a second root);
//   - a name that is not ASCII;
//   - a character reference to a surrogate.
func checkAgainstStd(t *testing.T, data []byte) {
	t.Helper()
	got, err := upx.ParseRequest(data)
	want, stdErr := upx.ParseRequestStd(data)
	switch {
	case err == nil && stdErr == nil:
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %q\nscanner   %#v\nreference %#v", data, got, want)
		}
	case err == nil:
		t.Fatalf("input %q: the scanner accepts it, the reference refuses it: %v", data, stdErr)
	case stdErr == nil:
		if why := allowedRefusal(data, err.Error()); why == "" {
			t.Fatalf("input %q: the scanner refuses it (%v), the reference accepts it", data, err)
		}
	}
}

// allowedRefusal says which documented divergence explains the scanner
// refusing data with msg while encoding/xml accepts it, or "" for none.
func allowedRefusal(data []byte, msg string) string {
	switch {
	case (strings.Contains(msg, "outside the <Request> element") || strings.Contains(msg, "second root element")) && contentOutsideRoot(data):
		return "content outside the root"
	case strings.Contains(msg, "names must be ASCII") && nonASCIIName(data):
		return "a name that is not ASCII"
	case strings.Contains(msg, "is a surrogate") && surrogateReference(data):
		return "a reference to a surrogate"
	}
	return ""
}

// contentOutsideRoot reports whether data, which encoding/xml reads, has a
// second root element, or character data outside the root that is not
// white space as written (a leading byte-order mark aside).
func contentOutsideRoot(data []byte) bool {
	dec := xmlsafe.NewDecoder(data)
	depth, roots := 0, 0
	var prev int64
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		off := dec.InputOffset()
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 {
					return true
				}
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			raw := data[prev:off]
			if prev == 0 {
				raw = bytes.TrimPrefix(raw, []byte("\uFEFF"))
			}
			if depth == 0 && len(bytes.Trim(raw, " \t\r\n")) > 0 {
				return true
			}
		}
		prev = off
	}
}

// nonASCIIName reports whether an element, attribute or processing
// instruction in data has a name with a byte past ASCII.
func nonASCIIName(data []byte) bool {
	dec := xmlsafe.NewDecoder(data)
	nonASCII := func(names ...string) bool {
		for _, n := range names {
			for i := 0; i < len(n); i++ {
				if n[i] >= utf8.RuneSelf {
					return true
				}
			}
		}
		return false
	}
	for {
		tok, err := dec.RawToken()
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if nonASCII(t.Name.Space, t.Name.Local) {
				return true
			}
			for _, a := range t.Attr {
				if nonASCII(a.Name.Space, a.Name.Local) {
					return true
				}
			}
		case xml.ProcInst:
			if nonASCII(t.Target) {
				return true
			}
		}
	}
}

var charRef = regexp.MustCompile(`&#(x[0-9a-fA-F]+|[0-9]+);`)

// surrogateReference reports whether data has a character reference to a
// UTF-16 surrogate.
func surrogateReference(data []byte) bool {
	for _, m := range charRef.FindAllSubmatch(data, -1) {
		digits, base := string(m[1]), 10
		if digits[0] == 'x' {
			digits, base = digits[1:], 16
		}
		if n, err := strconv.ParseUint(digits, base, 64); err == nil && n >= 0xD800 && n <= 0xDFFF {
			return true
		}
	}
	return false
}

// parseSeeds are the inputs of every request test and the files of
// testdata/requests.
func parseSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	for _, c := range parseCases {
		seeds = append(seeds, []byte(c.xml))
	}
	for _, c := range rejectCases {
		if len(c.xml) <= upx.MaxRequestSize { // the fuzzer would spend its time copying
			seeds = append(seeds, []byte(c.xml))
		}
	}
	for _, c := range scanCases {
		seeds = append(seeds, []byte(c.xml))
	}
	files, err := filepath.Glob(filepath.Join("testdata", "requests", "*.xml"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// TestParseRequestMatchesStd runs every seed through checkAgainstStd, so
// that plain go test holds the scanner to the reference too.
func TestParseRequestMatchesStd(t *testing.T) {
	for _, seed := range parseSeeds(t) {
		checkAgainstStd(t, seed)
	}
}
