package ignition

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// node is one JSON value with the byte offset where it starts. Ignition's
// own decoder (encoding/json into structs) loses positions; we keep them so
// every error and every item's Origin can say line and column.
type node struct {
	kind    nodeKind
	off     int
	str     string      // kindString
	num     json.Number // kindNumber
	boolean bool        // kindBool
	members []member    // kindObject, in document order
	elems   []*node     // kindArray
}

type nodeKind int

const (
	kindNull nodeKind = iota
	kindObject
	kindArray
	kindString
	kindNumber
	kindBool
)

func (k nodeKind) String() string {
	return [...]string{"null", "an object", "a list", "a string", "a number", "a boolean"}[k]
}

type member struct {
	key    string
	keyOff int
	val    *node
}

// decodeTree parses data as exactly one JSON value. Errors carry the byte
// offset of the problem (a *posError).
func decodeTree(data []byte) (*node, error) {
	// The token decoder's SyntaxError offsets are relative to the value it
	// was reading; a whole-document check first gives absolute ones (one
	// past the offending byte).
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off := int(se.Offset) - 1
			if se.Offset >= int64(len(data)) && strings.Contains(se.Error(), "unexpected end") {
				off = len(data)
			}
			if off < 0 {
				off = 0
			}
			return nil, &posError{off: off, err: errors.New(se.Error())}
		}
		return nil, &posError{err: err}
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	t := &treeDecoder{d: d, data: data}
	n, err := t.value()
	if err != nil {
		return nil, err
	}
	off := t.start()
	if _, err := d.Token(); err != io.EOF {
		// The decoder's own offset for this case points into the value
		// before; off is where the extra data starts.
		return nil, &posError{off: off, err: errors.New("unexpected data after the top-level value")}
	}
	return n, nil
}

type treeDecoder struct {
	d    *json.Decoder
	data []byte
}

// start returns the offset where the next token begins: InputOffset is the
// end of the previous token, followed by whitespace and separators.
func (t *treeDecoder) start() int {
	off := int(t.d.InputOffset())
	for off < len(t.data) {
		switch t.data[off] {
		case ' ', '\t', '\r', '\n', ':', ',':
			off++
			continue
		}
		break
	}
	return off
}

func (t *treeDecoder) wrap(err error, off int) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// Not reached for syntax errors (decodeTree checks the document
		// first); kept so a decoder error still gets a position.
		off = int(se.Offset)
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &posError{off: len(t.data), err: errors.New("unexpected end of JSON input")}
	}
	return &posError{off: off, err: err}
}

func (t *treeDecoder) value() (*node, error) {
	off := t.start()
	tok, err := t.d.Token()
	if err != nil {
		return nil, t.wrap(err, off)
	}
	return t.fromToken(tok, off)
}

func (t *treeDecoder) fromToken(tok json.Token, off int) (*node, error) {
	n := &node{off: off}
	switch v := tok.(type) {
	case nil:
		n.kind = kindNull
	case bool:
		n.kind, n.boolean = kindBool, v
	case string:
		n.kind, n.str = kindString, v
	case json.Number:
		n.kind, n.num = kindNumber, v
	case json.Delim:
		switch v {
		case '{':
			n.kind = kindObject
			seen := map[string]int{}
			for t.d.More() {
				koff := t.start()
				ktok, err := t.d.Token()
				if err != nil {
					return nil, t.wrap(err, koff)
				}
				key, ok := ktok.(string)
				if !ok {
					return nil, &posError{off: koff, err: errors.New("object key is not a string")}
				}
				if prev, dup := seen[key]; dup {
					// encoding/json (and so Ignition) silently keeps the
					// last one; a repeated key is almost always a mistake.
					return nil, &posError{off: koff, err: fmt.Errorf("duplicate key %q (first at %s)", key, lineCol(t.data, prev))}
				}
				seen[key] = koff
				val, err := t.value()
				if err != nil {
					return nil, err
				}
				n.members = append(n.members, member{key: key, keyOff: koff, val: val})
			}
		case '[':
			n.kind = kindArray
			for t.d.More() {
				el, err := t.value()
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, el)
			}
		default:
			return nil, &posError{off: off, err: fmt.Errorf("unexpected %q", rune(v))}
		}
		eoff := t.start()
		if _, err := t.d.Token(); err != nil { // the closing delimiter
			return nil, t.wrap(err, eoff)
		}
	}
	return n, nil
}

// get returns the member named key, or nil.
func (n *node) get(key string) *member {
	for i := range n.members {
		if n.members[i].key == key {
			return &n.members[i]
		}
	}
	return nil
}

// posError is an error at a byte offset of the document.
type posError struct {
	off int
	err error
}

func (e *posError) Error() string { return fmt.Sprintf("offset %d: %v", e.off, e.err) }
func (e *posError) Unwrap() error { return e.err }

// position converts a byte offset into a 1-based line and a 1-based column
// counted in characters, as editors show them.
func position(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	col = utf8.RuneCount(before[lineStart:]) + 1
	return line, col
}

func lineCol(data []byte, off int) string {
	l, c := position(data, off)
	return fmt.Sprintf("%d:%d", l, c)
}
