package deviceupdate

import (
	"strings"
	"unicode/utf8"
)

// MaxDNSNameLen is the longest DNS name, without a trailing dot.
const MaxDNSNameLen = 253

// ValidateDNSName checks that s is a DNS name as host names and domains
// are written (RFC 1123): dot-separated labels of 1 to 63 letters, digits
// and '-', none starting or ending with '-', at most 253 bytes in all,
// without a trailing dot (callers that accept a fully qualified name trim
// it first). Its EINVALID error says what is wrong in words that follow
// the caller's "%q is not a DNS domain: ".
func ValidateDNSName(s string) error {
	if s == "" {
		return Errorf(EINVALID, "it is empty")
	}
	if len(s) > MaxDNSNameLen {
		return Errorf(EINVALID, "it is %d bytes, more than the %d of a DNS name", len(s), MaxDNSNameLen)
	}
	for label := range strings.SplitSeq(s, ".") {
		switch {
		case label == "":
			return Errorf(EINVALID, "it has an empty label (a dot at an end, or two dots together)")
		case len(label) > 63:
			return Errorf(EINVALID, "its label %q is %d bytes, more than 63", truncateForMessage(label), len(label))
		case label[0] == '-' || label[len(label)-1] == '-':
			return Errorf(EINVALID, "its label %q starts or ends with '-'", label)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				r, _ := utf8.DecodeRuneInString(label[i:])
				return Errorf(EINVALID, "its label %q holds %q; a label is letters, digits and '-'", label, r)
			}
		}
	}
	return nil
}
