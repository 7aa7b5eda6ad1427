package cloudinit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/provision-dev/provision/provision/config"
	"go.yaml.in/yaml/v3"
)

// kind is the shape of a node after YAML 1.1 resolution.
type kind int

const (
	kNull kind = iota
	kBool
	kInt
	kFloat
	kStr
	kBinary
	kTimestamp
	kMap
	kSeq
)

func (k kind) String() string {
	switch k {
	case kNull:
		return "null"
	case kBool:
		return "boolean"
	case kInt:
		return "integer"
	case kFloat:
		return "float"
	case kStr:
		return "string"
	case kBinary:
		return "binary"
	case kTimestamp:
		return "timestamp"
	case kMap:
		return "mapping"
	case kSeq:
		return "list"
	}
	return "?"
}

// node is a YAML value as PyYAML's safe_load would see it (YAML 1.1 scalar
// resolution, aliases and merge keys expanded), remembering where it came
// from. cloud-init merges parts and documents before it reads any key, so
// the merge has to happen on a tree that still carries each value's origin.
type node struct {
	kind   kind
	value  string // scalar text (for kBinary: the decoded bytes)
	keys   []*node
	vals   []*node
	items  []*node
	origin config.Origin
}

func (n *node) get(key string) *node {
	if n == nil || n.kind != kMap {
		return nil
	}
	for i, k := range n.keys {
		if k.value == key {
			return n.vals[i]
		}
	}
	return nil
}

func (n *node) has(key string) bool {
	if n == nil || n.kind != kMap {
		return false
	}
	for _, k := range n.keys {
		if k.value == key {
			return true
		}
	}
	return false
}

func (n *node) set(key *node, val *node) {
	for i, k := range n.keys {
		if k.value == key.value {
			n.vals[i] = val
			return
		}
	}
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, val)
}

func (n *node) del(key string) {
	for i, k := range n.keys {
		if k.value == key {
			n.keys = append(n.keys[:i:i], n.keys[i+1:]...)
			n.vals = append(n.vals[:i:i], n.vals[i+1:]...)
			return
		}
	}
}

// shallow copies a mapping or list so merging never mutates a part's tree.
func (n *node) shallow() *node {
	c := *n
	c.keys = append([]*node(nil), n.keys...)
	c.vals = append([]*node(nil), n.vals...)
	c.items = append([]*node(nil), n.items...)
	return &c
}

func (n *node) isScalar() bool { return n.kind != kMap && n.kind != kSeq }

// describe names the value for type errors: `string "abc"`, `mapping`.
func (n *node) describe() string {
	if n == nil {
		return "nothing"
	}
	switch n.kind {
	case kMap, kSeq, kNull, kBinary:
		return n.kind.String()
	}
	v := n.value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return fmt.Sprintf("%s %q", n.kind, v)
}

// truthy is cloud-init's util.is_true for a scalar.
func (n *node) truthy() bool {
	if n == nil {
		return false
	}
	switch n.kind {
	case kBool:
		return n.value == "true"
	case kInt:
		return n.value != "0"
	case kStr:
		switch strings.ToLower(strings.TrimSpace(n.value)) {
		case "true", "1", "on", "yes":
			return true
		}
	}
	return false
}

// maxNodes (131072) bounds alias expansion ("billion laughs"): PyYAML shares aliased
// objects, we copy them, so a small document could otherwise explode.
const maxNodes = 1 << 17

type treeBuilder struct {
	origin config.Origin
	count  int
	warn   func(config.Origin, string)
	active map[*yaml.Node]bool
}

var errTooLarge = errors.New("document expands to too many YAML nodes (alias bomb?)")

// parseYAML parses one YAML document into a tree. An empty document gives
// nil. Errors carry line and column.
func parseYAML(data []byte, origin config.Origin, warn func(config.Origin, string)) (*node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, yamlErrorAt(data, origin, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		o := origin
		o.Line, o.Column = extra.Line, extra.Column
		return nil, &config.Error{Origin: o, Message: "expected a single YAML document, found another one"}
	} else if err != io.EOF {
		return nil, yamlErrorAt(data, origin, err)
	}
	if doc.Kind == 0 {
		return nil, nil
	}
	b := &treeBuilder{origin: origin, warn: warn, active: map[*yaml.Node]bool{}}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		root = doc.Content[0]
	}
	return b.build(root)
}

// yamlErrorAt is yamlError with the position of the offending token.
// yaml.v3's syntax errors name a line (often that of the enclosing
// construct, not of the problem) and never a column. Parsing stops at the
// first offending token, so a prefix of the document fails with the very
// same message exactly when it contains that token: a binary search over
// line ends, then over the bytes of the line found, gives its line and
// column in O(log n) parses.
func yamlErrorAt(data []byte, origin config.Origin, err error) error {
	out := yamlError(origin, err)
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return out
	}
	msg := err.Error()
	fails := func(n int) bool {
		dec := yaml.NewDecoder(bytes.NewReader(data[:n]))
		for {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if err != nil {
				return err != io.EOF && err.Error() == msg
			}
		}
	}
	var ends []int // offset just past each line
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	if !fails(len(data)) {
		return out
	}
	k := sort.Search(len(ends), func(i int) bool { return fails(ends[i]) })
	start := 0
	if k > 0 {
		start = ends[k-1]
	}
	c := sort.Search(ends[k]-start, func(i int) bool { return fails(start + i + 1) })
	var ce *config.Error
	if errors.As(out, &ce) {
		ce.Origin.Line = k + 1
		ce.Origin.Column = utf8.RuneCount(data[start : start+c+1])
	}
	return out
}

var yamlLineRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })
var yamlLineColRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`) })

// yamlError turns yaml.v3's "yaml: line N: msg" into our origin form.
func yamlError(origin config.Origin, err error) error {
	msg := err.Error()
	o := origin
	if m := yamlLineRE().FindStringSubmatch(msg); m != nil {
		o.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else if m := yamlLineColRE().FindStringSubmatch(msg); m != nil {
		msg = m[2]
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = strings.Join(te.Errors, "; ")
	}
	return &config.Error{Origin: o, Message: "invalid YAML: " + msg}
}

func (b *treeBuilder) at(y *yaml.Node) config.Origin {
	o := b.origin
	o.Line, o.Column = y.Line, y.Column
	return o
}

func (b *treeBuilder) build(y *yaml.Node) (*node, error) {
	b.count++
	if b.count > maxNodes {
		return nil, &config.Error{Origin: b.at(y), Message: errTooLarge.Error()}
	}
	switch y.Kind {
	case yaml.AliasNode:
		if y.Alias == nil || b.active[y.Alias] {
			return nil, &config.Error{Origin: b.at(y), Message: "recursive YAML alias"}
		}
		b.active[y.Alias] = true
		n, err := b.build(y.Alias)
		delete(b.active, y.Alias)
		return n, err
	case yaml.ScalarNode:
		return b.scalar(y)
	case yaml.SequenceNode:
		n := &node{kind: kSeq, origin: b.at(y)}
		for _, c := range y.Content {
			cn, err := b.build(c)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, cn)
		}
		return n, nil
	case yaml.MappingNode:
		return b.mapping(y)
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return &node{kind: kNull, origin: b.at(y)}, nil
		}
		return b.build(y.Content[0])
	}
	return nil, &config.Error{Origin: b.at(y), Message: "unsupported YAML node"}
}

func (b *treeBuilder) mapping(y *yaml.Node) (*node, error) {
	n := &node{kind: kMap, origin: b.at(y)}
	var merges []*node
	seen := map[string]int{}
	for i := 0; i+1 < len(y.Content); i += 2 {
		ky, vy := y.Content[i], y.Content[i+1]
		if ky.Kind == yaml.ScalarNode && ky.Value == "<<" && ky.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			v, err := b.build(vy)
			if err != nil {
				return nil, err
			}
			switch v.kind {
			case kMap:
				merges = append(merges, v)
			case kSeq:
				for _, it := range v.items {
					if it.kind != kMap {
						return nil, &config.Error{Origin: it.origin, Message: "merge key '<<' needs mappings"}
					}
					merges = append(merges, it)
				}
			default:
				return nil, &config.Error{Origin: v.origin, Message: "merge key '<<' needs a mapping"}
			}
			continue
		}
		k, err := b.build(ky)
		if err != nil {
			return nil, err
		}
		if !k.isScalar() {
			return nil, &config.Error{Origin: k.origin, Message: "mapping keys must be scalars"}
		}
		v, err := b.build(vy)
		if err != nil {
			return nil, err
		}
		if line, ok := seen[k.value]; ok && b.warn != nil {
			// PyYAML keeps the last one silently; say so.
			b.warn(k.origin, fmt.Sprintf("duplicate key %q replaces the one at line %d", k.value, line))
		}
		seen[k.value] = k.origin.Line
		n.set(k, v)
	}
	// Merge keys: explicit keys win, then earlier merged mappings.
	for _, m := range merges {
		for i, k := range m.keys {
			if !n.has(k.value) {
				n.keys = append(n.keys, k)
				n.vals = append(n.vals, m.vals[i])
			}
		}
	}
	return n, nil
}

// YAML 1.1 plain scalar resolution, as PyYAML's SafeLoader does it.
var (
	intRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	})
	floatRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	})
	tsRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$`)
	})
)

func resolvePlain(v string) kind {
	switch v {
	case "", "~", "null", "Null", "NULL":
		return kNull
	case "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF":
		return kBool
	}
	// Every number and timestamp starts with a sign, a digit or a dot:
	// anything else (a key, a name, a path) is a string without the
	// three expressions (an SSH key is hundreds of characters).
	if !strings.ContainsRune("-+.0123456789", rune(v[0])) {
		return kStr
	}
	if intRE().MatchString(v) {
		return kInt
	}
	if floatRE().MatchString(v) {
		return kFloat
	}
	if tsRE().MatchString(v) {
		return kTimestamp
	}
	return kStr
}

func (b *treeBuilder) scalar(y *yaml.Node) (*node, error) {
	n := &node{origin: b.at(y), value: y.Value}
	switch {
	case y.Style&yaml.TaggedStyle != 0:
		switch y.Tag {
		case "!!str":
			n.kind = kStr
		case "!!binary":
			data, err := decodeBase64Lenient(y.Value)
			if err != nil {
				return nil, &config.Error{Origin: n.origin, Message: "invalid !!binary: " + err.Error()}
			}
			n.kind, n.value = kBinary, string(data)
		case "!!int", "!!bool", "!!float", "!!null", "!!timestamp":
			k := resolvePlain(y.Value)
			want := map[string]kind{"!!int": kInt, "!!bool": kBool, "!!float": kFloat, "!!null": kNull, "!!timestamp": kTimestamp}[y.Tag]
			if k != want && !(want == kFloat && k == kInt) {
				return nil, &config.Error{Origin: n.origin, Message: fmt.Sprintf("cannot decode %q as %s", y.Value, y.Tag)}
			}
			n.kind = want
		default:
			// PyYAML's safe loader refuses unknown tags; so do we.
			return nil, &config.Error{Origin: n.origin, Message: fmt.Sprintf("unsupported YAML tag %s", y.Tag)}
		}
	case y.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		n.kind = kStr
	default:
		n.kind = resolvePlain(y.Value)
	}
	if n.kind == kBool {
		switch strings.ToLower(y.Value) {
		case "yes", "true", "on":
			n.value = "true"
		default:
			n.value = "false"
		}
	}
	return n, nil
}

// intValue converts a YAML 1.1 integer scalar (octal 0644, hex, binary,
// underscores, sexagesimal) to its value.
func intValue(s string) (int64, error) {
	s = strings.ReplaceAll(s, "_", "")
	neg := false
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		neg = s[0] == '-'
		s = s[1:]
	}
	var v int64
	var err error
	switch {
	case strings.Contains(s, ":"):
		for _, part := range strings.Split(s, ":") {
			d, e := strconv.ParseInt(part, 10, 64)
			if e != nil {
				return 0, e
			}
			v = v*60 + d
		}
	case strings.HasPrefix(s, "0b"):
		v, err = strconv.ParseInt(s[2:], 2, 64)
	case strings.HasPrefix(s, "0x"):
		v, err = strconv.ParseInt(s[2:], 16, 64)
	case len(s) > 1 && s[0] == '0':
		v, err = strconv.ParseInt(s[1:], 8, 64)
	default:
		v, err = strconv.ParseInt(s, 10, 64)
	}
	if neg {
		v = -v
	}
	return v, err
}

// plain converts a tree to plain Go values (map[string]any, []any, string,
// int64, float64, bool, nil) for consumers that want decoded data, such as
// network configuration.
// positions maps the path of every key and list item below n, spelled
// as the network module spells them ("a.b[2].c"), to where it is: a key's
// own position, an item's first character.
func (n *node) positions() map[string]config.Origin {
	out := map[string]config.Origin{}
	var walk func(n *node, path string)
	walk = func(n *node, path string) {
		switch n.kind {
		case kMap:
			for i, k := range n.keys {
				p := k.value
				if path != "" {
					p = path + "." + k.value
				}
				out[p] = k.origin
				walk(n.vals[i], p)
			}
		case kSeq:
			for i, it := range n.items {
				p := fmt.Sprintf("%s[%d]", path, i)
				out[p] = it.origin
				walk(it, p)
			}
		}
	}
	if n != nil {
		walk(n, "")
	}
	return out
}

func (n *node) plain() any {
	if n == nil {
		return nil
	}
	switch n.kind {
	case kNull:
		return nil
	case kBool:
		return n.value == "true"
	case kInt:
		if v, err := intValue(n.value); err == nil {
			return v
		}
		return n.value
	case kFloat:
		if f, err := strconv.ParseFloat(strings.ReplaceAll(n.value, "_", ""), 64); err == nil {
			return f
		}
		return n.value
	case kMap:
		m := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			m[k.value] = n.vals[i].plain()
		}
		return m
	case kSeq:
		l := make([]any, len(n.items))
		for i, it := range n.items {
			l[i] = it.plain()
		}
		return l
	}
	return n.value
}

// decodeBase64Lenient decodes base64 the way Python's b64decode does by
// default: characters outside the alphabet (newlines, spaces) are dropped.
func decodeBase64Lenient(s string) ([]byte, error) {
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
			clean = append(clean, c)
		}
	}
	str := strings.TrimRight(string(clean), "=")
	return base64.RawStdEncoding.DecodeString(str)
}
