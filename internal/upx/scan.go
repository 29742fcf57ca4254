package upx

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/deviceupdate/deviceupdate"
)

// This file is the XML reader behind ParseRequest: one pass over the body
// with an index, for the few elements of a poll, instead of encoding/xml's
// token stream (which allocates per token, attribute and name).
//
// It accepts what encoding/xml's strict Decoder accepts, as ParseRequest
// used it, and refuses what it refuses, with three deliberate exceptions,
// all refusals of things encoding/xml lets through (FuzzParseRequest holds
// the scanner to this):
//   - content outside the root element: non-whitespace text, CDATA or a
//     reference before or after <Request>, or a second root element (which
//     encoding/xml reads as more fields of the same poll). A leading
//     byte-order mark is still allowed;
//   - names that are not ASCII. encoding/xml accepts XML 1.0 letters, and
//     ParseRequest's case folding then maps some onto ASCII: "DEVİCETYPE"
//     (U+0130) lower-cases to "devicetype", "Verſion" (U+017F) folds to
//     "Version". No phone sends such names; they can only be spoofing;
//   - character references to surrogates (&#xD800;), which encoding/xml
//     turns into U+FFFD; XML does not allow them.
//
// Like encoding/xml, it does not look inside comments and processing
// instructions beyond finding their end (and the <?xml?> declaration's
// version and encoding); their text is dropped unread.

// shareLimit is the largest body whose values are substrings of one copy of
// the whole body (one allocation for every field); a larger body gets a
// copy per value, so that a padded request cannot pin kilobytes per device
// in the inventory's pending batch.
const shareLimit = 4 << 10

type elemKind uint8

const (
	kindOther   elemKind = iota
	kindRoot             // <Request>
	kindField            // a child of the root that sets a string field
	kindModules          // <Modules>, a child of the root
	kindModule           // <Module>, a child of <Modules>
)

// openElem is an element whose end tag is still to come.
type openElem struct {
	name  string // as written, prefix included, to match the end tag
	kind  elemKind
	field field // what a kindField element sets
}

// field names a string field of the PollRequest. It is an index rather
// than a *string so that the scanner holds no pointer into itself, which
// would move it (and the request) to the heap.
type field uint8

const (
	fieldDeviceType field = iota
	fieldMAC
	fieldSerial
	fieldBrand
	fieldModel
	fieldRevision
	fieldLocale
	fieldUserID
	fieldTrigger
)

// span is a value in the body: s[a:b], which needs decoding (references,
// or carriage returns to normalise) when dirty.
type span struct {
	a, b  int
	dirty bool
	cdata bool // from a CDATA section: carriage returns only, no references
	set   bool
}

// scanner is the state of one ParseRequest.
type scanner struct {
	s       string
	i       int  // the next byte to read
	share   bool // values may be substrings of s
	req     deviceupdate.PollRequest
	stack   [maxDepth]openElem
	depth   int
	sawRoot bool

	// The character data since the last tag, kept only inside a field or
	// <Modules>: the first piece as a span, and when there are more, all of
	// them decoded into buf. buf is also the scratch space value decodes
	// into, which is safe because a <Module>'s attributes are read after
	// the text is reset.
	text   span
	pieces int
	buf    []byte
}

// parse reads the whole body into p.req.
func (p *scanner) parse() error {
	if strings.HasPrefix(p.s, "\uFEFF") {
		p.i = len("\uFEFF")
	}
	for p.i < len(p.s) {
		if p.s[p.i] != '<' {
			if err := p.charData(); err != nil {
				return err
			}
			continue
		}
		if p.i+1 >= len(p.s) {
			return p.eof()
		}
		var err error
		switch p.s[p.i+1] {
		case '/':
			err = p.endTag()
		case '?':
			err = p.procInst()
		case '!':
			err = p.bang()
		default:
			err = p.startTag()
		}
		if err != nil {
			return err
		}
	}
	if p.depth > 0 {
		return p.eof()
	}
	if !p.sawRoot {
		return deviceupdate.Errorf(deviceupdate.EINVALID, "request has no <Request> element")
	}
	return nil
}

// charData reads text up to the next tag: only white space outside the
// root, checked character data inside it.
func (p *scanner) charData() error {
	start := p.i
	if p.depth == 0 {
		for p.i < len(p.s) && p.s[p.i] != '<' {
			if !isSpace(p.s[p.i]) {
				return p.syntaxError(p.i, "text outside the <Request> element")
			}
			p.i++
		}
		return nil
	}
	end, dirty, err := p.scanText(start, 0)
	if err != nil {
		return err
	}
	p.i = end
	p.addText(span{a: start, b: end, dirty: dirty, set: true})
	return nil
}

// scanText checks character data from i up to the next '<' (quote 0) or up
// to the closing quote of an attribute value, and returns where it ends and
// whether it needs decoding.
func (p *scanner) scanText(i int, quote byte) (end int, dirty bool, err error) {
	s := p.s
	for i < len(s) {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			return i, dirty, nil
		case c == '<':
			if quote == 0 {
				return i, dirty, nil
			}
			return i, dirty, p.syntaxError(i, "'<' in an attribute value")
		case c == '&':
			next, _, problem := reference(s, i)
			if problem != "" {
				return i, dirty, p.syntaxError(i, "%s", problem)
			}
			i, dirty = next, true
			continue
		case c == '\r':
			dirty = true
		case c == ']' && quote == 0 && strings.HasPrefix(s[i:], "]]>"):
			return i, dirty, p.syntaxError(i, "unescaped ]]> not in CDATA section")
		case c < ' ' && c != '\t' && c != '\n':
			return i, dirty, p.syntaxError(i, "illegal character code %U", rune(c))
		case c >= utf8.RuneSelf:
			size, err := p.checkRune(i)
			if err != nil {
				return i, dirty, err
			}
			i += size
			continue
		}
		i++
	}
	if quote != 0 {
		return i, dirty, p.eof()
	}
	return i, dirty, nil
}

// checkRune checks the multi-byte character at i and returns its size.
func (p *scanner) checkRune(i int) (int, error) {
	r, size := utf8.DecodeRuneInString(p.s[i:])
	if r == utf8.RuneError && size == 1 {
		return 0, p.syntaxError(i, "invalid UTF-8")
	}
	if !isXMLChar(r) {
		return 0, p.syntaxError(i, "illegal character code %U", r)
	}
	return size, nil
}

// reference reads the entity or character reference at s[i] == '&' and
// returns the index after it and the character it stands for, or why it
// is not one.
func reference(s string, i int) (next int, r rune, problem string) {
	j := i + 1
	if j < len(s) && s[j] == '#' {
		j++
		base := rune(10)
		if j < len(s) && s[j] == 'x' { // encoding/xml does not take &#X
			base = 16
			j++
		}
		digits := j
		tooBig := false
		for ; j < len(s); j++ {
			d := digitValue(s[j], base)
			if d < 0 {
				break
			}
			if !tooBig {
				r = r*base + d // at most 0x10FFFF*16+15: no overflow
				tooBig = r > utf8.MaxRune
			}
		}
		switch {
		case j >= len(s):
			return j, 0, "unexpected EOF in a character reference"
		case j == digits || s[j] != ';':
			return j, 0, fmt.Sprintf("invalid character reference %q", clip(s[i:j+1]))
		case r >= 0xD800 && r <= 0xDFFF && !tooBig:
			return j, 0, fmt.Sprintf("character reference %q is a surrogate, not a character", clip(s[i:j+1]))
		case tooBig || !isXMLChar(r):
			return j, 0, fmt.Sprintf("character reference %q is not an XML character", clip(s[i:j+1]))
		}
		return j + 1, r, ""
	}
	for j < len(s) && (isNameByte(s[j]) || s[j] >= utf8.RuneSelf) {
		j++
	}
	if j >= len(s) {
		return j, 0, "unexpected EOF in an entity reference"
	}
	if s[j] != ';' {
		return j, 0, fmt.Sprintf("invalid character entity %q (no semicolon)", clip(s[i:j]))
	}
	switch s[i+1 : j] {
	case "lt":
		r = '<'
	case "gt":
		r = '>'
	case "amp":
		r = '&'
	case "apos":
		r = '\''
	case "quot":
		r = '"'
	default:
		return j, 0, fmt.Sprintf("invalid character entity %q", clip(s[i:j+1]))
	}
	return j + 1, r, ""
}

func digitValue(c byte, base rune) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case base == 16 && c >= 'a' && c <= 'f':
		return rune(c-'a') + 10
	case base == 16 && c >= 'A' && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}

// appendDecoded appends checked character data with its references
// replaced (unless it is CDATA) and "\r\n" and "\r" made "\n", as XML and
// encoding/xml do.
func appendDecoded(dst []byte, s string, cdata bool) []byte {
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '&' && !cdata:
			next, r, problem := reference(s, i)
			if problem != "" || next <= i { // cannot happen: s was checked
				dst = append(dst, c)
				i++
				continue
			}
			dst = utf8.AppendRune(dst, r)
			i = next
		case c == '\r':
			dst = append(dst, '\n')
			i++
			if i < len(s) && s[i] == '\n' {
				i++
			}
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst
}

// value returns the trimmed text of v.
func (p *scanner) value(v span) string {
	if !v.set {
		return ""
	}
	if !v.dirty {
		return p.keep(strings.TrimSpace(p.s[v.a:v.b]))
	}
	p.buf = appendDecoded(p.buf[:0], p.s[v.a:v.b], v.cdata)
	return string(bytes.TrimSpace(p.buf))
}

// keep returns v, a substring of the body, copied if the body is large.
func (p *scanner) keep(v string) string {
	if p.share {
		return v
	}
	return strings.Clone(v)
}

// keepingText reports whether character data here is a field's value: only
// the text directly inside a child of the root counts.
func (p *scanner) keepingText() bool {
	return p.depth == 2 && (p.stack[1].kind == kindField || p.stack[1].kind == kindModules)
}

func (p *scanner) addText(v span) {
	if !p.keepingText() {
		return
	}
	switch p.pieces {
	case 0:
		p.text = v
	case 1:
		p.buf = appendSpan(p.buf[:0], p.s, p.text)
		fallthrough
	default:
		p.buf = appendSpan(p.buf, p.s, v)
	}
	p.pieces++
}

func appendSpan(dst []byte, s string, v span) []byte {
	if v.dirty {
		return appendDecoded(dst, s[v.a:v.b], v.cdata)
	}
	return append(dst, s[v.a:v.b]...)
}

func (p *scanner) resetText() { p.text, p.pieces = span{}, 0 }

// textValue is the trimmed character data since the last tag.
func (p *scanner) textValue() string {
	if p.pieces > 1 {
		return string(bytes.TrimSpace(p.buf))
	}
	return p.value(p.text)
}

// moduleAttrs are the first attributes of a <Module> with each name.
type moduleAttrs struct {
	updateType, filename, version, timestamp span
}

func (m *moduleAttrs) slot(local string) *span {
	var v *span
	switch {
	case strings.EqualFold(local, "UpdateType"):
		v = &m.updateType
	case strings.EqualFold(local, "Filename"):
		v = &m.filename
	case strings.EqualFold(local, "Version"):
		v = &m.version
	case strings.EqualFold(local, "Timestamp"):
		v = &m.timestamp
	}
	if v == nil || v.set {
		return nil
	}
	return v
}

// startTag reads <name attr="value" ...> or <name .../>, keeping the
// attributes only of a <Module>.
func (p *scanner) startTag() error {
	s := p.s
	name, i, err := p.qname(p.i+1, "element")
	if err != nil {
		return err
	}
	local := localName(name)
	kind, f := p.classify(local)
	var attrs moduleAttrs
	empty := false
	for {
		i = skipSpace(s, i)
		if i >= len(s) {
			return p.eof()
		}
		if s[i] == '/' {
			if i+1 >= len(s) {
				return p.eof()
			}
			if s[i+1] != '>' {
				return p.syntaxError(i, "expected /> in element")
			}
			i += 2
			empty = true
			break
		}
		if s[i] == '>' {
			i++
			break
		}
		attr, j, err := p.qname(i, "attribute")
		if err != nil {
			return err
		}
		j = skipSpace(s, j)
		if j >= len(s) {
			return p.eof()
		}
		if s[j] != '=' {
			return p.syntaxError(j, "attribute %s has no value", clip(attr))
		}
		j = skipSpace(s, j+1)
		if j >= len(s) {
			return p.eof()
		}
		if q := s[j]; q != '"' && q != '\'' {
			return p.syntaxError(j, "unquoted or missing attribute value in element")
		}
		end, dirty, err := p.scanText(j+1, s[j])
		if err != nil {
			return err
		}
		if kind == kindModule {
			if v := attrs.slot(localName(attr)); v != nil {
				*v = span{a: j + 1, b: end, dirty: dirty, set: true}
			}
		}
		i = end + 1 // past the closing quote
	}
	p.i = i
	if err := p.open(name, local, kind, f, &attrs); err != nil {
		return err
	}
	if empty {
		return p.close()
	}
	return nil
}

// classify says what an element named local opened here is.
func (p *scanner) classify(local string) (elemKind, field) {
	switch {
	case p.depth == 0:
		return kindRoot, 0
	case p.depth == 1:
		if f, ok := fieldNamed(local); ok {
			return kindField, f
		}
		if strings.EqualFold(local, "modules") {
			return kindModules, 0
		}
	case p.depth == 2 && p.stack[1].kind == kindModules && strings.EqualFold(local, "module"):
		return kindModule, 0
	}
	return kindOther, 0
}

// fieldNamed returns the field a child of the root named local sets.
// Names are ASCII here, so EqualFold is a plain ASCII case-insensitive
// match.
func fieldNamed(local string) (field, bool) {
	switch {
	case strings.EqualFold(local, "DeviceType"):
		return fieldDeviceType, true
	case strings.EqualFold(local, "MacAddress"):
		return fieldMAC, true
	case strings.EqualFold(local, "SerialNumber"):
		return fieldSerial, true
	case strings.EqualFold(local, "Brand"), strings.EqualFold(local, "Vendor"):
		return fieldBrand, true
	case strings.EqualFold(local, "Model"):
		return fieldModel, true
	case strings.EqualFold(local, "Revision"):
		return fieldRevision, true
	case strings.EqualFold(local, "Locale"):
		return fieldLocale, true
	case strings.EqualFold(local, "UserId"):
		return fieldUserID, true
	case strings.EqualFold(local, "Trigger"):
		return fieldTrigger, true
	}
	return 0, false
}

func (p *scanner) set(f field, v string) {
	r := &p.req
	switch f {
	case fieldDeviceType:
		r.DeviceType = v
	case fieldMAC:
		r.MAC = v
	case fieldSerial:
		r.Serial = v
	case fieldBrand:
		r.Brand = v
	case fieldModel:
		r.Model = v
	case fieldRevision:
		r.Revision = v
	case fieldLocale:
		r.Locale = v
	case fieldUserID:
		r.UserID = v
	case fieldTrigger:
		r.Trigger = v
	}
}

// open records a start tag; its checks come in the order ParseRequest
// always made them.
func (p *scanner) open(name, local string, kind elemKind, f field, attrs *moduleAttrs) error {
	if p.depth == 0 && p.sawRoot {
		return p.syntaxError(p.i, "second root element <%s> after </Request>", clip(name))
	}
	if p.depth >= maxDepth {
		return deviceupdate.Errorf(deviceupdate.EINVALID, "request nests deeper than %d elements", maxDepth)
	}
	if p.depth == 0 {
		if !strings.EqualFold(local, "request") {
			return deviceupdate.Errorf(deviceupdate.EINVALID, "root element is <%s>, want <Request>", clip(local))
		}
		p.sawRoot = true
	}
	p.stack[p.depth] = openElem{name: name, kind: kind, field: f}
	p.depth++
	p.resetText()
	if kind != kindModule {
		return nil
	}
	m, err := makeModule(p.value(attrs.updateType), p.value(attrs.filename), p.value(attrs.version), p.value(attrs.timestamp))
	if err != nil {
		return err
	}
	return addModule(&p.req, m)
}

// endTag reads </name>, which must close the innermost open element.
func (p *scanner) endTag() error {
	name, i, err := p.qname(p.i+2, "element")
	if err != nil {
		return err
	}
	i = skipSpace(p.s, i)
	if i >= len(p.s) {
		return p.eof()
	}
	if p.s[i] != '>' {
		return p.syntaxError(i, "invalid characters between </%s and >", clip(name))
	}
	if p.depth == 0 {
		return p.syntaxError(p.i, "unexpected end element </%s>", clip(name))
	}
	if open := p.stack[p.depth-1].name; open != name {
		return p.syntaxError(p.i, "element <%s> closed by </%s>", clip(open), clip(name))
	}
	p.i = i + 1
	return p.close()
}

// close ends the innermost open element.
func (p *scanner) close() error {
	if p.depth == 0 { // cannot happen: the callers check
		return p.syntaxError(p.i, "unexpected end element")
	}
	if p.depth == 2 {
		switch top := p.stack[1]; top.kind {
		case kindField:
			p.set(top.field, p.textValue())
		case kindModules:
			if v := p.textValue(); v != "" {
				if err := parseAuditModules(&p.req, v); err != nil {
					return err
				}
			}
		}
	}
	p.depth--
	p.stack[p.depth] = openElem{}
	p.resetText()
	return nil
}

// procInst skips a processing instruction, checking the <?xml?>
// declaration's version and encoding as encoding/xml does.
func (p *scanner) procInst() error {
	target, i, err := p.name(p.i+2, "processing instruction target")
	if err != nil {
		return err
	}
	i = skipSpace(p.s, i)
	n := strings.Index(p.s[i:], "?>")
	if n < 0 {
		return p.eof()
	}
	content := p.s[i : i+n]
	p.i = i + n + 2
	if target != "xml" {
		return nil
	}
	if v := pseudoAttr(content, "version="); v != "" && v != "1.0" {
		return p.syntaxError(i, "XML version %q is not supported; only 1.0 is", clip(v))
	}
	// xmlsafe.NewDecoder let ParseRequest take UTF-8 and US-ASCII only.
	if e := pseudoAttr(content, "encoding="); e != "" && !strings.EqualFold(e, "utf-8") && !strings.EqualFold(e, "us-ascii") {
		return p.syntaxError(i, "encoding %q is not supported; write UTF-8", clip(e))
	}
	return nil
}

// pseudoAttr returns the quoted value after key (such as `version=`) in a
// declaration, found the way encoding/xml finds it: the first key followed
// by a quote, up to the next such quote; "" if there is none.
func pseudoAttr(s, key string) string {
	for i := 0; i < len(s); {
		k := strings.Index(s[i:], key)
		if k < 0 {
			return ""
		}
		q := i + k + len(key) // the byte after key
		if q >= len(s) {
			return ""
		}
		i = q + 1
		if s[q] == '"' || s[q] == '\'' {
			n := strings.IndexByte(s[i:], s[q])
			if n < 0 {
				return ""
			}
			return s[i : i+n]
		}
	}
	return ""
}

// bang reads what starts with "<!": a comment or a CDATA section; anything
// else is a directive, and a DOCTYPE is how entity expansion attacks begin.
func (p *scanner) bang() error {
	i := p.i + 2
	rest := p.s[i:]
	switch {
	case strings.HasPrefix(rest, "--"):
		i += len("--")
		n := strings.Index(p.s[i:], "--")
		if n < 0 || i+n+2 >= len(p.s) {
			return p.eof()
		}
		if p.s[i+n+2] != '>' {
			return p.syntaxError(i+n, `invalid sequence "--" not allowed in comments`)
		}
		p.i = i + n + 3
		return nil
	case strings.HasPrefix(rest, "[CDATA["):
		i += len("[CDATA[")
		n := strings.Index(p.s[i:], "]]>")
		if n < 0 {
			return p.eof()
		}
		if p.depth == 0 {
			return p.syntaxError(i, "CDATA section outside the <Request> element")
		}
		dirty := false
		for j := i; j < i+n; {
			c := p.s[j]
			switch {
			case c == '\r':
				dirty = true
			case c < ' ' && c != '\t' && c != '\n':
				return p.syntaxError(j, "illegal character code %U", rune(c))
			case c >= utf8.RuneSelf:
				size, err := p.checkRune(j)
				if err != nil {
					return err
				}
				j += size
				continue
			}
			j++
		}
		p.i = i + n + 3
		p.addText(span{a: i, b: i + n, dirty: dirty, cdata: true, set: true})
		return nil
	case rest == "" || rest == "-" || strings.HasPrefix("[CDATA[", rest):
		return p.eof()
	case rest[0] == '-':
		return p.syntaxError(i, "invalid sequence <!- not part of <!--")
	case rest[0] == '[':
		return p.syntaxError(i, "invalid <![ sequence")
	}
	return deviceupdate.Errorf(deviceupdate.EINVALID, "request has a <!...> directive; DTDs are not allowed")
}

// name reads an XML name at i and returns it and the index after it. Like
// encoding/xml it takes every byte that may be part of a name, then checks
// the whole; unlike it, it refuses names that are not ASCII.
func (p *scanner) name(i int, what string) (string, int, error) {
	s := p.s
	j := i
	ascii := true
	for ; j < len(s); j++ {
		if c := s[j]; c >= utf8.RuneSelf {
			ascii = false
		} else if !isNameByte(c) {
			break
		}
	}
	switch {
	case j == i && j >= len(s):
		return "", j, p.eof()
	case j == i:
		return "", j, p.syntaxError(i, "expected %s name", what)
	case !ascii:
		return "", j, p.syntaxError(i, "%s name %q is not ASCII; names must be ASCII", what, clip(s[i:j]))
	}
	if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':') {
		return "", j, p.syntaxError(i, "invalid XML name %q", clip(s[i:j]))
	}
	return s[i:j], j, nil
}

// qname is name for element and attribute names: at most one colon,
// between a prefix and a local name.
func (p *scanner) qname(i int, what string) (string, int, error) {
	name, j, err := p.name(i, what)
	if err == nil && strings.Count(name, ":") > 1 {
		err = p.syntaxError(i, "%s name %q has more than one colon", what, clip(name))
	}
	return name, j, err
}

// localName drops a namespace prefix, as encoding/xml does: only when the
// one colon has something on both sides.
func localName(name string) string {
	if c := strings.IndexByte(name, ':'); c > 0 && c < len(name)-1 {
		return name[c+1:]
	}
	return name
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '.' || c == '-'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// isXMLChar reports whether r is in XML 1.0's Char production.
func isXMLChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= utf8.MaxRune
}

func (p *scanner) eof() error {
	return p.syntaxError(len(p.s), "unexpected EOF")
}

// syntaxError is the error for malformed XML at byte i, with its line.
func (p *scanner) syntaxError(i int, format string, args ...any) error {
	line := 1 + strings.Count(p.s[:min(max(i, 0), len(p.s))], "\n")
	return deviceupdate.Errorf(deviceupdate.EINVALID, "request is not well-formed XML: line %d: %s", line, fmt.Sprintf(format, args...))
}
