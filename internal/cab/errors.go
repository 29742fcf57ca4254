package cab

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of them;
// test with errors.Is.
var (
	// ErrFormat means that the input is not a well-formed cabinet: a bad
	// signature, a truncated or inconsistent table, corrupt compressed data.
	ErrFormat = errors.New("cab: not a valid cabinet")

	// ErrChecksum means that a data block's stored checksum does not match
	// its contents. It wraps ErrFormat, so errors.Is(err, ErrFormat) holds
	// for checksum errors too.
	ErrChecksum = fmt.Errorf("%w: checksum mismatch", ErrFormat)

	// ErrUnsupported means that the cabinet is well formed but uses a
	// feature this package does not implement: Quantum compression, an
	// unknown compression method, another format version, or data that
	// continues from or into another cabinet of a set.
	ErrUnsupported = errors.New("cab: unsupported")

	// ErrLimit means that the cabinet exceeds one of the [Limits] given to
	// [NewReaderLimits] (or the defaults).
	ErrLimit = errors.New("cab: limit exceeded")

	// ErrNoCabinet means that [Search] found no cabinet in a file. It
	// wraps ErrFormat.
	ErrNoCabinet error = &sentinelError{"cab: no cabinet found", ErrFormat}

	// ErrUnsafeName means that a member name cannot be used as a relative
	// path below an extraction directory: it is empty, absolute, has a
	// drive letter, contains a ".." component or a NUL byte.
	ErrUnsafeName = errors.New("cab: unsafe member name")
)

// sentinelError is a sentinel error that wraps another.
type sentinelError struct {
	msg    string
	parent error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.parent }

// FormatError describes malformed input found at a known place in the
// cabinet. Its Unwrap method returns [ErrFormat], or [ErrChecksum] (which
// itself wraps ErrFormat) for a checksum mismatch.
type FormatError struct {
	// Item names the structure, for example "header", "file 3 (a.txt)" or
	// "folder 2: data block 7".
	Item string
	// Offset is the byte offset in the cabinet of that structure.
	Offset int64
	// Msg says what is wrong with it.
	Msg string

	err error // ErrFormat or ErrChecksum
}

// Error formats the error as "cab: ITEM at offset 0xOFFSET: MSG".
func (e *FormatError) Error() string {
	return fmt.Sprintf("cab: %s at offset %#x: %s", e.Item, e.Offset, e.Msg)
}

// Unwrap returns ErrFormat, or ErrChecksum for a checksum mismatch.
func (e *FormatError) Unwrap() error {
	if e.err != nil {
		return e.err
	}
	return ErrFormat
}

func formatErr(item string, off int64, format string, args ...any) error {
	return &FormatError{Item: item, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func limitErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrLimit, fmt.Sprintf(format, args...))
}

func unsupportedErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}
