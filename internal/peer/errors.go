package peer

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them, or the
// error of the Source, the destination or the context; test with errors.Is.
var (
	// ErrClosed is returned by Fetch when the Node is closed before the file
	// is complete, and by Fetch on a Node that is already closed.
	ErrClosed = errors.New("peer: node closed")

	// ErrReleased is returned by a Fetch whose Key is released with
	// [Node.Release] before the file is complete.
	ErrReleased = errors.New("peer: file released")

	// ErrBusy is returned by Fetch when the same Node is already fetching
	// the same file.
	ErrBusy = errors.New("peer: file already being fetched")

	// ErrManifest means that a Manifest is not usable: its SHA-256 is not
	// 64 lowercase hex digits, its sizes are out of range, or the number of
	// chunk hashes does not match its size.
	ErrManifest = errors.New("peer: invalid manifest")

	// ErrChunkHash means that the server's bytes for a chunk do not match
	// the chunk's hash in the Manifest, again and again: the manifest and
	// the file on the server disagree.
	ErrChunkHash = errors.New("peer: chunk hash mismatch")

	// ErrFileHash means that every chunk matched its hash but the whole file
	// does not match Key.SHA256: the manifest contradicts itself.
	ErrFileHash = errors.New("peer: file hash mismatch")

	// ErrFormat means that a datagram or a TCP frame is malformed: bad
	// magic, version, type, length or field.
	ErrFormat = errors.New("peer: malformed message")
)

// Reasons a parent is given up. They never leave the package: Fetch
// recovers from them by re-attaching or reading from the Source.
var (
	errStall    = errors.New("parent stalled")
	errBadChunk = errors.New("parent sent a chunk that fails its hash")
	errCycle    = errors.New("parent is a descendant")
	errFull     = errors.New("parent has no free slot")
	errUnknown  = errors.New("parent does not serve the file")
	errNotRoot  = errors.New("not the root of the tree")
	errTreeFull = errors.New("tree full")
	errYield    = errors.New("the other root yields")
	errBusyPeer = errors.New("peer closed the connection without an answer")
	errProtocol = errors.New("protocol violation")
)
