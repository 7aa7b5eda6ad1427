package snapshot

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// info.xml is read with a small parser of our own rather than
// encoding/xml: that package builds its table of HTML entities when the
// process starts, which every run of provision paid (0.1 ms and 19 KB
// before main) to read one file of a few hundred bytes on snapper roots.
//
// It reads what snapper and transactional-update write, and any
// well-formed document of the same shape: an XML declaration (version 1.0,
// UTF-8), comments, processing instructions and a DOCTYPE (without markup
// declarations) before the root; attributes, comments, processing
// instructions and CDATA sections in the content; the five predefined and
// numeric character references; and elements it does not know, which it
// skips. It is never more lenient
// than encoding/xml (a differential fuzz target holds it to that, and to
// the same values): a document it accepts, encoding/xml decodes alike.

// infoXMLError is a syntax error at a byte offset of the document.
type infoXMLError struct {
	off int
	msg string
}

func (e *infoXMLError) Error() string { return e.msg }

// rawInfo is info.xml's elements as text, before num and date are parsed.
type rawInfo struct {
	Type, Num, Date, Description, Cleanup string
	Userdata                              []kv
}

// field is where the text of the <snapshot> child element name goes, nil
// for an element not read.
func (r *rawInfo) field(name string) *string {
	switch name {
	case "type":
		return &r.Type
	case "num":
		return &r.Num
	case "date":
		return &r.Date
	case "description":
		return &r.Description
	case "cleanup":
		return &r.Cleanup
	}
	return nil
}

type infoParser struct {
	data []byte
	off  int
}

func (p *infoParser) fail(format string, args ...any) error {
	return &infoXMLError{off: p.off, msg: fmt.Sprintf(format, args...)}
}

func (p *infoParser) eof() error {
	return &infoXMLError{off: len(p.data), msg: "unexpected EOF"}
}

func (p *infoParser) has(prefix string) bool {
	return bytes.HasPrefix(p.data[p.off:], []byte(prefix))
}

func (p *infoParser) skipSpace() {
	for p.off < len(p.data) && isXMLSpace(p.data[p.off]) {
		p.off++
	}
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// parseInfoXML reads the root <snapshot> element and what is in it; what
// follows the root is not read, as encoding/xml's Decode does not.
func parseInfoXML(data []byte) (rawInfo, error) {
	p := &infoParser{data: data}
	var info rawInfo
	if err := p.prolog(); err != nil {
		return info, err
	}
	name, empty, err := p.startTag()
	if err != nil {
		return info, err
	}
	if name != "snapshot" {
		return info, p.fail("expected element type <snapshot> but have <%s>", name)
	}
	if empty {
		return info, nil
	}
	_, err = p.content(name, func(child string, empty bool) error {
		if field := info.field(child); field != nil {
			return p.textInto(field, child, empty)
		}
		if child != "userdata" {
			return p.skip(child, empty)
		}
		var u kv
		if !empty {
			if _, err := p.content(child, func(c string, empty bool) error {
				switch c {
				case "key":
					return p.textInto(&u.Key, c, empty)
				case "value":
					return p.textInto(&u.Value, c, empty)
				}
				return p.skip(c, empty)
			}); err != nil {
				return err
			}
		}
		info.Userdata = append(info.Userdata, u)
		return nil
	})
	return info, err
}

// prolog skips what may come before the root element.
func (p *infoParser) prolog() error {
	for {
		p.skipSpace()
		switch {
		case p.off == len(p.data):
			// No element at all, which encoding/xml calls EOF.
			return &infoXMLError{off: len(p.data), msg: "EOF"}
		case p.has("<?"):
			if err := p.instruction(); err != nil {
				return err
			}
		case p.has("<!--"):
			if err := p.comment(); err != nil {
				return err
			}
		case p.has("<!DOCTYPE"):
			if err := p.doctype(); err != nil {
				return err
			}
		case p.data[p.off] == '<':
			return nil
		default:
			return p.fail("text before the root element")
		}
	}
}

// instruction skips <?target ...?>; the XML declaration must name version
// 1.0, if any, and no encoding but UTF-8 (encoding/xml would need a
// charset reader).
func (p *infoParser) instruction() error {
	p.off += 2
	target, err := p.name()
	if err != nil {
		return err
	}
	end := bytes.Index(p.data[p.off:], []byte("?>"))
	if end < 0 {
		return p.eof()
	}
	body := string(p.data[p.off : p.off+end])
	if target == "xml" {
		if v := pseudoAttr(body, "version"); v != "" && v != "1.0" {
			return p.fail("unsupported version %q; only version 1.0 is supported", v)
		}
		if enc := pseudoAttr(body, "encoding"); enc != "" && !strings.EqualFold(enc, "utf-8") {
			return p.fail("encoding %q declared: info.xml is read as UTF-8 only", enc)
		}
	}
	if !utf8.ValidString(body) {
		return p.fail("invalid UTF-8")
	}
	p.off += end + 2
	return nil
}

// pseudoAttr is the value of name="..." (or '...') in an XML
// declaration: the first occurrence of name= followed by a quote, as
// encoding/xml reads the declaration.
func pseudoAttr(body, name string) string {
	for rest := body; ; {
		_, after, ok := strings.Cut(rest, name+"=")
		if !ok || after == "" {
			return ""
		}
		if q := after[0]; q == '"' || q == '\'' {
			v, _, closed := strings.Cut(after[1:], after[:1])
			if !closed {
				return ""
			}
			return v
		}
		rest = after[1:]
	}
}

func (p *infoParser) comment() error {
	p.off += 4
	end := bytes.Index(p.data[p.off:], []byte("--"))
	if end < 0 {
		return p.eof()
	}
	if !utf8.Valid(p.data[p.off : p.off+end]) {
		return p.fail("invalid UTF-8")
	}
	p.off += end
	if !p.has("-->") {
		return p.fail(`invalid sequence "--" not allowed in comments`)
	}
	p.off += 3
	return nil
}

// doctype skips <!DOCTYPE ...>; an internal subset in brackets may hold
// no markup.
func (p *infoParser) doctype() error {
	p.off += len("<!DOCTYPE")
	depth, quote := 0, byte(0)
	for ; p.off < len(p.data); p.off++ {
		c := p.data[p.off]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == '>' && depth <= 0:
			p.off++
			return nil
		case c == '<':
			// encoding/xml reads markup declarations here; we need
			// none, and refuse them rather than read them otherwise.
			return p.fail("markup in the DOCTYPE is not read")
		}
	}
	return p.eof()
}

// name reads an XML name. ASCII only: snapper's elements are, and a
// stricter rule never accepts what encoding/xml refuses.
func (p *infoParser) name() (string, error) {
	start := p.off
	for p.off < len(p.data) {
		c := p.data[p.off]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (p.off == start || !(c >= '0' && c <= '9' || c == '-' || c == '.')) {
			break
		}
		p.off++
	}
	if p.off == len(p.data) {
		return "", p.eof()
	}
	if p.off == start {
		return "", p.fail("invalid XML name")
	}
	return string(p.data[start:p.off]), nil
}

// startTag reads <name attr="value"...> or <name .../>; attributes are
// checked and dropped.
func (p *infoParser) startTag() (name string, empty bool, err error) {
	p.off++ // '<'
	if name, err = p.name(); err != nil {
		return "", false, err
	}
	seen := map[string]bool{}
	for {
		spaced := p.off < len(p.data) && isXMLSpace(p.data[p.off])
		p.skipSpace()
		switch {
		case p.off == len(p.data):
			return "", false, p.eof()
		case p.has("/>"):
			p.off += 2
			return name, true, nil
		case p.data[p.off] == '>':
			p.off++
			return name, false, nil
		case !spaced:
			return "", false, p.fail("expected attribute name in element")
		}
		attr, err := p.name()
		if err != nil {
			return "", false, err
		}
		if seen[attr] {
			return "", false, p.fail("attribute %s repeated", attr)
		}
		seen[attr] = true
		p.skipSpace()
		if !p.has("=") {
			return "", false, p.fail("attribute name without = in element")
		}
		p.off++
		p.skipSpace()
		if p.off == len(p.data) {
			return "", false, p.eof()
		}
		q := p.data[p.off]
		if q != '"' && q != '\'' {
			return "", false, p.fail("unquoted or missing attribute value in element")
		}
		p.off++
		if _, err := p.text(q); err != nil {
			return "", false, err
		}
		p.off++ // the closing quote
	}
}

// content reads the content of the element name up to its end tag:
// character data is returned, each child element is handed to child
// (which must consume it).
func (p *infoParser) content(name string, child func(name string, empty bool) error) (string, error) {
	var text strings.Builder
	for {
		switch {
		case p.off == len(p.data):
			return "", p.eof()
		case p.has("</"):
			p.off += 2
			end, err := p.name()
			if err != nil {
				return "", err
			}
			if end != name {
				return "", p.fail("element <%s> closed by </%s>", name, end)
			}
			p.skipSpace()
			if !p.has(">") {
				if p.off == len(p.data) {
					return "", p.eof()
				}
				return "", p.fail("invalid characters between </%s and >", end)
			}
			p.off++
			return text.String(), nil
		case p.has("<!--"):
			if err := p.comment(); err != nil {
				return "", err
			}
		case p.has("<![CDATA["):
			p.off += len("<![CDATA[")
			end := bytes.Index(p.data[p.off:], []byte("]]>"))
			if end < 0 {
				return "", p.eof()
			}
			raw := p.data[p.off : p.off+end]
			if err := p.checkChars(raw); err != nil {
				return "", err
			}
			text.WriteString(normalizeNewlines(string(raw)))
			p.off += end + 3
		case p.has("<?"):
			if err := p.instruction(); err != nil {
				return "", err
			}
		case p.has("<!"):
			return "", p.fail("unexpected directive in element content")
		case p.data[p.off] == '<':
			c, empty, err := p.startTag()
			if err != nil {
				return "", err
			}
			if err := child(c, empty); err != nil {
				return "", err
			}
		default:
			s, err := p.text('<')
			if err != nil {
				return "", err
			}
			text.WriteString(s)
		}
	}
}

// textInto sets *dst to the character data of the element name (nested
// elements skipped, as encoding/xml does for a string field).
func (p *infoParser) textInto(dst *string, name string, empty bool) error {
	*dst = ""
	if empty {
		return nil
	}
	text, err := p.content(name, p.skip)
	*dst = text
	return err
}

// skip consumes an element nothing reads.
func (p *infoParser) skip(name string, empty bool) error {
	var discard string
	return p.textInto(&discard, name, empty)
}

// text reads character data up to stop ('<' in content, the quote in an
// attribute value), decoding references and newlines.
func (p *infoParser) text(stop byte) (string, error) {
	var b strings.Builder
	begin, start := p.off, p.off
	// flush adds the literal run since start.
	flush := func() error {
		if err := p.checkChars(p.data[start:p.off]); err != nil {
			return err
		}
		b.WriteString(normalizeNewlines(string(p.data[start:p.off])))
		return nil
	}
	for p.off < len(p.data) && p.data[p.off] != stop {
		c := p.data[p.off]
		switch {
		case c == '<':
			return "", p.fail("unescaped < inside quoted string")
		case c == '>' && p.off-2 >= begin && p.data[p.off-1] == ']' && p.data[p.off-2] == ']':
			return "", p.fail("unescaped ]]> not in CDATA section")
		case c == '&':
			if err := flush(); err != nil {
				return "", err
			}
			r, err := p.reference()
			if err != nil {
				return "", err
			}
			b.WriteRune(r)
			start = p.off
		default:
			p.off++
		}
	}
	if p.off == len(p.data) {
		return "", p.eof()
	}
	if err := flush(); err != nil {
		return "", err
	}
	return b.String(), nil
}

// reference decodes &name; or &#N; or &#xN; at p.off.
func (p *infoParser) reference() (rune, error) {
	end := bytes.IndexByte(p.data[p.off:], ';')
	if end < 0 {
		return 0, p.fail("invalid character entity (no semicolon)")
	}
	ref := string(p.data[p.off+1 : p.off+end])
	var r rune = -1
	switch {
	case ref == "lt":
		r = '<'
	case ref == "gt":
		r = '>'
	case ref == "amp":
		r = '&'
	case ref == "apos":
		r = '\''
	case ref == "quot":
		r = '"'
	case strings.HasPrefix(ref, "#x") && len(ref) > 2:
		if n, err := strconv.ParseUint(ref[2:], 16, 32); err == nil && !strings.ContainsAny(ref[2:], "+-_") {
			r = rune(n)
		}
	case strings.HasPrefix(ref, "#") && len(ref) > 1:
		if n, err := strconv.ParseUint(ref[1:], 10, 32); err == nil && !strings.ContainsAny(ref[1:], "+-_") {
			r = rune(n)
		}
	}
	if r < 0 || !isXMLChar(r) {
		return 0, p.fail("invalid character entity &%s;", ref)
	}
	p.off += end + 1
	return r, nil
}

// checkChars refuses invalid UTF-8 and characters XML does not allow.
func (p *infoParser) checkChars(b []byte) error {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return p.fail("invalid UTF-8")
		}
		if !isXMLChar(r) {
			return p.fail("illegal character code %U", r)
		}
		i += n
	}
	return nil
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// normalizeNewlines turns \r\n and a lone \r into \n, as XML parsers must.
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}
