package cloudinit

import (
	"fmt"
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// This file reproduces cloud-init's mergers (cloudinit/mergers): how
// cloud-config parts combine, as selected by merge_how / merge_type or a
// Merge-Type header. The behaviour, including its oddities, is the
// compatibility contract:
//   - dict(replace): a later part's key replaces the earlier value whole;
//     dict(no_replace) (the default when dict() names no method) keeps the
//     earlier value, recursing into mappings always, into lists with
//     recurse_list/recurse_array and into strings with recurse_str;
//     allow_delete drops a key whose new value is null.
//   - list(append|prepend) concatenate; list(replace) (the default)
//     replaces item by item over the OLD list's length (a longer new list is
//     cut, a shorter one keeps the old tail) — but only when reached through
//     a recursing dict merger; list(no_replace) keeps the old list.
//   - str(append) concatenates; str() takes the new string.
//   - A value whose type no listed merger handles (integers, booleans, null,
//     or a mapping when no dict merger is listed) keeps the OLD value.

// defaultPartMerge is what cloud-init uses between user-data parts when
// neither the part nor its headers say otherwise.
const defaultPartMerge = "dict(replace)+list()+str()"

// defaultConfigMerge is util.mergemanydict's default, used to lay user-data
// over vendor-data (earlier wins; mappings merge recursively).
const defaultConfigMerge = "list()+dict()+str()"

type mergerSpec struct {
	name string
	opts []string
}

type merger struct {
	hasDict, hasList, hasStr bool

	dictReplace, dictRecurseStr, dictRecurseList, dictAllowDelete bool

	listMethod                                       string
	listRecurseStr, listRecurseDict, listRecurseList bool

	strAppend bool
}

// splitMerger splits "name(options)" (cloud-init's merger identifier): a
// name of letters, digits and '_' not led by a digit, then the options up
// to the closing parenthesis that ends the text, on one line. By hand, not
// a regular expression: every run with more than one document parses
// one, and compiling the expression cost more than the whole merge.
func splitMerger(m string) (name, opts string, ok bool) {
	name, rest, found := strings.Cut(m, "(")
	if !found || name == "" || '0' <= name[0] && name[0] <= '9' || !strings.HasSuffix(rest, ")") {
		return "", "", false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return "", "", false
		}
	}
	opts = rest[:len(rest)-1]
	if strings.Contains(opts, "\n") {
		return "", "", false
	}
	return name, opts, true
}

// parseMergeString parses "dict(replace)+list(append)+str()".
func parseMergeString(s string) ([]mergerSpec, error) {
	var out []mergerSpec
	for _, m := range strings.Split(s, "+") {
		m = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(m)), "-", "_")
		if m == "" {
			continue
		}
		name, list, ok := splitMerger(m)
		if !ok {
			return nil, fmt.Errorf("merger identifier %q is not in the right format", m)
		}
		var opts []string
		for _, o := range strings.Split(list, ",") {
			if o = strings.TrimSpace(o); o != "" {
				opts = append(opts, strings.ToLower(o))
			}
		}
		out = append(out, mergerSpec{name: name, opts: opts})
	}
	return out, nil
}

// parseMergeNode reads merge_how / merge_type given as a string or as a list
// of {name, settings} mappings or [name, opt...] lists.
func parseMergeNode(n *node) ([]mergerSpec, error) {
	switch n.kind {
	case kNull:
		return nil, nil
	case kStr:
		return parseMergeString(n.value)
	case kSeq:
		var out []mergerSpec
		for i, it := range n.items {
			var spec mergerSpec
			switch it.kind {
			case kMap:
				name := it.get("name")
				if name == nil || name.kind != kStr {
					return nil, fmt.Errorf("[%d]: name: expected string, got %s", i, name.describe())
				}
				spec.name = strings.TrimSpace(strings.ReplaceAll(name.value, "-", "_"))
				if s := it.get("settings"); s != nil {
					opts, err := stringList(s)
					if err != nil {
						return nil, fmt.Errorf("[%d]: settings: %v", i, err)
					}
					spec.opts = opts
				}
			case kSeq:
				if len(it.items) == 0 {
					continue
				}
				all, err := stringList(it)
				if err != nil {
					return nil, fmt.Errorf("[%d]: %v", i, err)
				}
				spec.name, spec.opts = all[0], all[1:]
			default:
				return nil, fmt.Errorf("[%d]: expected mapping or list, got %s", i, it.describe())
			}
			if spec.name != "" {
				out = append(out, spec)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("expected string or list, got %s", n.describe())
}

func stringList(n *node) ([]string, error) {
	if n.kind != kSeq {
		return nil, fmt.Errorf("expected list, got %s", n.describe())
	}
	var out []string
	for _, it := range n.items {
		if !it.isScalar() || it.kind == kNull {
			return nil, fmt.Errorf("expected string, got %s", it.describe())
		}
		out = append(out, it.value)
	}
	return out, nil
}

func has(opts []string, names ...string) bool {
	for _, o := range opts {
		for _, n := range names {
			if o == n {
				return true
			}
		}
	}
	return false
}

// newMerger builds a merger; the first listed merger of each type wins.
func newMerger(specs []mergerSpec) (*merger, error) {
	m := &merger{}
	for _, s := range specs {
		name := strings.TrimPrefix(s.name, "m_")
		switch name {
		case "dict":
			if m.hasDict {
				continue
			}
			m.hasDict = true
			// The first of replace / no_replace listed in MERGE_TYPES order.
			m.dictReplace = has(s.opts, "replace")
			m.dictRecurseStr = has(s.opts, "recurse_str")
			m.dictRecurseList = has(s.opts, "recurse_array", "recurse_list")
			m.dictAllowDelete = has(s.opts, "allow_delete")
		case "list":
			if m.hasList {
				continue
			}
			m.hasList = true
			m.listMethod = "replace"
			for _, meth := range []string{"append", "prepend", "replace", "no_replace"} {
				if has(s.opts, meth) {
					m.listMethod = meth
					break
				}
			}
			m.listRecurseStr = has(s.opts, "recurse_str")
			m.listRecurseDict = has(s.opts, "recurse_dict")
			m.listRecurseList = has(s.opts, "recurse_array", "recurse_list")
		case "str":
			if m.hasStr {
				continue
			}
			m.hasStr = true
			m.strAppend = has(s.opts, "append")
		default:
			return nil, fmt.Errorf("unknown merger %q (known: dict, list, str)", s.name)
		}
	}
	return m, nil
}

// merge combines old (earlier) with new (later), dispatching on the type of
// old as cloud-init's LookupMerger does.
func (m *merger) merge(old, new *node) (*node, error) {
	switch old.kind {
	case kMap:
		if !m.hasDict {
			return old, nil
		}
		return m.onDict(old, new)
	case kSeq:
		if !m.hasList {
			return old, nil
		}
		return m.onList(old, new)
	case kStr:
		if !m.hasStr {
			return old, nil
		}
		return m.onStr(old, new)
	}
	return old, nil
}

func (m *merger) onDict(old, new *node) (*node, error) {
	if new.kind != kMap {
		return old, nil
	}
	out := old.shallow()
	for i, k := range new.keys {
		v := new.vals[i]
		if !out.has(k.value) {
			out.keys = append(out.keys, k)
			out.vals = append(out.vals, v)
			continue
		}
		if v.kind == kNull && m.dictAllowDelete {
			out.del(k.value)
			continue
		}
		prev := out.get(k.value)
		var merged *node
		switch {
		case m.dictReplace:
			merged = v
		case v.kind == kSeq && m.dictRecurseList,
			v.kind == kStr && m.dictRecurseStr,
			v.kind == kMap:
			var err error
			if merged, err = m.merge(prev, v); err != nil {
				return nil, err
			}
		default:
			merged = prev
		}
		for j, ok := range out.keys {
			if ok.value == k.value {
				out.vals[j] = merged
			}
		}
	}
	return out, nil
}

// iterate is Python's list.extend(x) for a non-list x: a string gives its
// characters, a mapping its keys; anything else is a TypeError.
func iterate(n *node) ([]*node, error) {
	switch n.kind {
	case kSeq:
		return n.items, nil
	case kMap:
		return n.keys, nil
	case kStr:
		var out []*node
		for _, r := range n.value {
			out = append(out, &node{kind: kStr, value: string(r), origin: n.origin})
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot merge %s into a list", n.describe())
}

func (m *merger) onList(old, new *node) (*node, error) {
	if m.listMethod == "replace" && new.kind != kSeq {
		return new, nil
	}
	out := &node{kind: kSeq, origin: old.origin}
	switch m.listMethod {
	case "prepend", "append":
		items, err := iterate(new)
		if err != nil {
			return nil, err
		}
		if m.listMethod == "prepend" {
			out.items = append(append(out.items, items...), old.items...)
		} else {
			out.items = append(append(out.items, old.items...), items...)
		}
		return out, nil
	}
	out.items = append(out.items, old.items...)
	if m.listMethod == "no_replace" || new.kind != kSeq {
		return out, nil
	}
	for i := 0; i < len(out.items) && i < len(new.items); i++ {
		nv := new.items[i]
		switch {
		case nv.kind == kSeq && m.listRecurseList,
			nv.kind == kStr && m.listRecurseStr,
			nv.kind == kMap && m.listRecurseDict:
			merged, err := m.merge(out.items[i], nv)
			if err != nil {
				return nil, err
			}
			out.items[i] = merged
		default:
			out.items[i] = nv
		}
	}
	return out, nil
}

func (m *merger) onStr(old, new *node) (*node, error) {
	if !m.strAppend {
		return new, nil
	}
	if new.kind != kStr {
		return nil, fmt.Errorf("str(append) cannot append %s to a string", new.describe())
	}
	return &node{kind: kStr, value: old.value + new.value, origin: old.origin}, nil
}

// mergeOver lays higher over lower with mergemanydict's default rules
// (earlier, i.e. higher, wins; mappings merge recursively).
func mergeOver(higher, lower *node) *node {
	if higher == nil {
		return lower
	}
	if lower == nil {
		return higher
	}
	m, _ := newMerger(mustMerge(defaultConfigMerge))
	// Start from higher and add what lower has that higher lacks.
	out, err := m.merge(higher, lower)
	if err != nil {
		return higher
	}
	return out
}

func mustMerge(s string) []mergerSpec {
	specs, err := parseMergeString(s)
	if err != nil {
		panic(err)
	}
	return specs
}

// extractMergers removes merge_how (or, failing that, merge_type) from a
// part and returns the merger it asks for, combined with the header's.
func extractMergers(part *node, header string) (*merger, error) {
	var specs []mergerSpec
	for _, key := range []string{"merge_how", "merge_type"} {
		if n := part.get(key); n != nil {
			s, err := parseMergeNode(n)
			if err != nil {
				return nil, &config.Error{Origin: n.origin, Message: key + ": " + err.Error()}
			}
			specs = s
			part.del(key)
			break
		}
	}
	if header != "" {
		s, err := parseMergeString(header)
		if err != nil {
			return nil, &config.Error{Origin: part.origin, Message: "Merge-Type header: " + err.Error()}
		}
		specs = append(specs, s...)
	}
	if len(specs) == 0 {
		specs = mustMerge(defaultPartMerge)
	}
	m, err := newMerger(specs)
	if err != nil {
		return nil, &config.Error{Origin: part.origin, Message: err.Error()}
	}
	return m, nil
}
