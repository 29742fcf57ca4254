// Package cab reads Microsoft Cabinet (.cab) files, the container in which
// firmware update packages arrive.
//
// # Format
//
// A cabinet (specification [MS-CAB]) starts with a CFHEADER: the signature
// "MSCF", the total size, the offset of the file table, the format version
// (always 1.3), the folder and file counts, flags and the set ID. When the
// reserve flag is set the header is followed by an opaque header reserve
// area (Authenticode-signed cabinets keep their signature directory there,
// see [Reader.HeaderReserve]) and by the sizes of the per-folder and
// per-data-block reserve areas. A folder (CFFOLDER) is one compressed
// stream: it names its first data block, its block count and its compression
// method. A file entry (CFFILE) names a byte range of the uncompressed
// stream of one folder. The data blocks (CFDATA) of a folder follow one
// another; each holds at most 32768 uncompressed bytes, a checksum and the
// compressed bytes.
//
// # What is supported
//
//   - Compression: none (stored), MSZIP (deflate blocks that share a 32 KiB
//     history) and LZX with windows of 2^15 to 2^21 bytes (verbatim,
//     aligned-offset and uncompressed blocks, repeated offsets, E8 call
//     translation).
//   - Data block checksums are verified; a checksum of zero means that none
//     was computed, as the specification says. The checksum covers the
//     compressed bytes and the two size fields, not the per-block reserve
//     area, as cabextract and gcab compute it.
//   - File names with and without the UTF-8 attribute: names without it are
//     decoded as Windows-1252.
//
// Quantum compression and cabinets that belong to a multi-cabinet set (a
// folder continued from a previous cabinet or into the next one) are listed
// but not extracted: opening an affected file returns an error wrapping
// [ErrUnsupported].
//
// # Reading
//
// [NewReader] (or [NewReaderLimits]) parses the tables and walks the data
// block headers of every folder, so that every count, offset and size in the
// directory is checked against the file before any data is decoded. Member
// data is streamed: [File.Open] decodes the member's folder from its start,
// while [Reader.Walk] decodes every folder exactly once and hands each member
// to a callback in folder order, which makes extracting a whole cabinet
// linear in its size. Memory use is bounded by the decoder window (32 KiB
// for MSZIP, at most 2 MiB for LZX) plus one data block, whatever the size of
// the cabinet. [Reader.ExtractTo] writes all members below a directory after
// checking every name with [SafePath].
//
// # Cabinets inside other files
//
// Vendors ship cabinets inside self-extracting programs. [Search] finds
// every cabinet in a file as cabextract does: a file that starts with a
// cabinet is opened directly (no scan when the cabinet fills the file);
// elsewhere it scans for "MSCF", opens each candidate whose header is
// plausible, skips false and broken ones, and resumes after each cabinet
// it finds. Each [Reader] it returns carries its [Reader.Offset].
// [ExtractAll] extracts several cabinets at once. The reading spent on
// false candidates is bounded in proportion to the file size.
//
// # Hostile input
//
// Every read goes through the io.ReaderAt with explicit bounds; counts from
// the header are checked against the size of the file before anything is
// allocated from them, the header and folder tables, the file table and
// each folder's data blocks must not overlap, and [Limits] cap the number
// of members and folders, the total and per-member uncompressed sizes and
// the compression ratio. Malformed input yields an error that wraps
// [ErrFormat] (often as a [*FormatError] that names the structure and its
// offset), never a panic. The format has no checksum of uncompressed data:
// corruption that still decodes, with a zero or recomputed block checksum,
// yields wrong bytes that no reader can detect.
//
// MSZIP and LZX are decoded by this package's own decoders, written from
// RFC 1951 and the LZX description in [MS-PATCH], working on whole blocks
// in memory; compress/flate serves as the reference in tests.
//
// [MS-PATCH]: https://learn.microsoft.com/en-us/openspecs/exchange_server_protocols/ms-patch/
// [MS-CAB]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-cab/
package cab
