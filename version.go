package deviceupdate

import (
	"strconv"
	"strings"
)

// Version is a firmware version: four dot-separated integers, such as
// 4.0.7577.4366, compared part by part as numbers (so 4.0.10.0 is newer
// than 4.0.9.0).
type Version [4]uint32

// ParseVersion reads a version in its canonical form: four decimal
// integers of at most 10 digits each, separated by dots, without signs,
// spaces or leading zeros.
func ParseVersion(s string) (Version, error) {
	var v Version
	if strings.Count(s, ".") != 3 {
		return v, Errorf(EINVALID, "version %q: want four dot-separated integers, such as 4.0.7577.4366", truncateForMessage(s))
	}
	rest := s
	for i := range v {
		p, after, _ := strings.Cut(rest, ".")
		rest = after
		if p == "" || len(p) > 10 || len(p) > 1 && p[0] == '0' || strings.TrimLeft(p, "0123456789") != "" {
			return v, Errorf(EINVALID, "version %q: part %d (%q) is not a plain integer", truncateForMessage(s), i+1, truncateForMessage(p))
		}
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return v, Errorf(EINVALID, "version %q: part %d is larger than %d", truncateForMessage(s), i+1, uint32(1<<32-1))
		}
		v[i] = uint32(n)
	}
	return v, nil
}

// MustParseVersion is ParseVersion for constants; it panics on a bad one.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns the canonical form, such as 4.0.7577.4366.
func (v Version) String() string {
	return string(v.Append(make([]byte, 0, 24)))
}

// Append appends the dotted form of v to b.
func (v Version) Append(b []byte) []byte {
	for i, n := range v {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(n), 10)
	}
	return b
}

// IsZero reports whether v is 0.0.0.0, which stands for "no version".
func (v Version) IsZero() bool { return v == Version{} }

// Compare returns -1, 0 or +1 as v is older than, the same as, or newer
// than w.
func (v Version) Compare(w Version) int {
	for i := range v {
		switch {
		case v[i] < w[i]:
			return -1
		case v[i] > w[i]:
			return 1
		}
	}
	return 0
}

// MarshalText writes the canonical form; the zero version is empty.
func (v Version) MarshalText() ([]byte, error) {
	if v.IsZero() {
		return []byte{}, nil
	}
	return []byte(v.String()), nil
}

// UnmarshalText reads the canonical form; empty text is the zero version.
func (v *Version) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*v = Version{}
		return nil
	}
	w, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = w
	return nil
}
