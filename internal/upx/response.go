package upx

import (
	"encoding/xml"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Response is the answer to a poll (SPEC §5). The struct tags are for
// readers of responses (tests, tools); AppendXML writes it without
// reflection.
type Response struct {
	XMLName             xml.Name     `xml:"Response"`
	NumOfFiles          int          `xml:"NumOfFiles"`
	Version             string       `xml:"Version,omitempty"`
	BaseURL             string       `xml:"BaseURL,omitempty"`
	ExternalBaseURL     string       `xml:"ExternalBaseURL,omitempty"`
	Files               *Files       `xml:"Files,omitempty"`
	PollIntervalSeconds int          `xml:"PollIntervalSeconds"`
	PeerSharing         *PeerSharing `xml:"PeerSharing"`
}

// Files lists what to download from BaseURL.
type Files struct {
	File []File `xml:"File"`
}

// File is one file of an offer.
type File struct {
	Name          string `xml:"Name,attr"`
	SignatureFile string `xml:"SignatureFile,attr,omitempty"`
	Size          int64  `xml:"Size,attr"`
	SHA256        string `xml:"SHA256,attr"`
	// ChunkSize, Chunks and ChunksSHA256 name the file's chunk list for
	// peer sharing (SPEC §9): BaseURL/Chunks lists the SHA-256 of every
	// ChunkSize piece, one hex hash a line, and hashes to ChunksSHA256.
	ChunkSize    int64  `xml:"ChunkSize,attr,omitempty"`
	Chunks       string `xml:"Chunks,attr,omitempty"`
	ChunksSHA256 string `xml:"ChunksSHA256,attr,omitempty"`
}

// PeerSharing tells the phone whether to share firmware with its peers.
type PeerSharing struct {
	Enabled bool `xml:"Enabled,attr"`
	Port    int  `xml:"Port,attr"`
}

// AppendXML appends the response as XML to dst and returns the extended
// slice. The bytes are exactly those of xml.Header followed by
// xml.Marshal(r): the same element order, no self-closing tags, and the
// same escaping. XMLName is ignored, as xml.Marshal ignores it given the
// tag.
func (r *Response) AppendXML(dst []byte) []byte {
	dst = append(dst, xml.Header...)
	dst = append(dst, "<Response><NumOfFiles>"...)
	dst = strconv.AppendInt(dst, int64(r.NumOfFiles), 10)
	dst = append(dst, "</NumOfFiles>"...)
	dst = appendOptional(dst, "Version", r.Version)
	dst = appendOptional(dst, "BaseURL", r.BaseURL)
	dst = appendOptional(dst, "ExternalBaseURL", r.ExternalBaseURL)
	if r.Files != nil {
		dst = append(dst, "<Files>"...)
		for i := range r.Files.File {
			f := &r.Files.File[i]
			dst = append(dst, `<File Name="`...)
			dst = appendEscaped(dst, f.Name)
			if f.SignatureFile != "" {
				dst = append(dst, `" SignatureFile="`...)
				dst = appendEscaped(dst, f.SignatureFile)
			}
			dst = append(dst, `" Size="`...)
			dst = strconv.AppendInt(dst, f.Size, 10)
			dst = append(dst, `" SHA256="`...)
			dst = appendEscaped(dst, f.SHA256)
			if f.ChunkSize != 0 {
				dst = append(dst, `" ChunkSize="`...)
				dst = strconv.AppendInt(dst, f.ChunkSize, 10)
			}
			if f.Chunks != "" {
				dst = append(dst, `" Chunks="`...)
				dst = appendEscaped(dst, f.Chunks)
			}
			if f.ChunksSHA256 != "" {
				dst = append(dst, `" ChunksSHA256="`...)
				dst = appendEscaped(dst, f.ChunksSHA256)
			}
			dst = append(dst, `"></File>`...)
		}
		dst = append(dst, "</Files>"...)
	}
	dst = append(dst, "<PollIntervalSeconds>"...)
	dst = strconv.AppendInt(dst, int64(r.PollIntervalSeconds), 10)
	dst = append(dst, "</PollIntervalSeconds>"...)
	if ps := r.PeerSharing; ps != nil { // no omitempty, but xml.Marshal skips a nil pointer
		dst = append(dst, `<PeerSharing Enabled="`...)
		dst = strconv.AppendBool(dst, ps.Enabled)
		dst = append(dst, `" Port="`...)
		dst = strconv.AppendInt(dst, int64(ps.Port), 10)
		dst = append(dst, `"></PeerSharing>`...)
	}
	return append(dst, "</Response>"...)
}

// WriteTo writes the response as XML to w in one Write, from a pooled
// buffer, and returns the bytes written.
func (r *Response) WriteTo(w io.Writer) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	b := r.AppendXML((*bp)[:0])
	n, err := w.Write(b)
	if cap(b) <= maxPooledBuffer { // an offer with thousands of files should not stay pinned
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return int64(n), err
}

const maxPooledBuffer = 16 << 10

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// appendOptional appends <name>v</name> unless v is empty (omitempty).
func appendOptional(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	dst = appendEscaped(dst, v)
	dst = append(dst, "</"...)
	dst = append(dst, name...)
	return append(dst, '>')
}

// appendEscaped appends s escaped for text or a quoted attribute value,
// as encoding/xml escapes strings: the five markup characters, tab,
// newline and carriage return as references, and invalid UTF-8 or a
// character XML does not allow as U+FFFD.
func appendEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= ' ' && c < utf8.RuneSelf && c != '"' && c != '\'' && c != '&' && c != '<' && c != '>' {
			i++
			continue
		}
		var esc string
		width := 1
		switch c {
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			var r rune
			r, width = utf8.DecodeRuneInString(s[i:])
			if isXMLChar(r) && !(r == utf8.RuneError && width == 1) {
				i += width
				continue
			}
			esc = "\uFFFD"
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		i += width
		last = i
	}
	return append(dst, s[last:]...)
}

// PeerPort is the port phones share firmware on (SPEC §9).
const PeerPort = 4051
