package ignition

import "strings"

// Merging follows Ignition's config/merge on the JSON trees of two
// checked configs (parent, then the child merged over it):
//   - a member the child does not set (absent or null) keeps the parent's;
//     objects merge member by member; anything else the child sets wins;
//   - lists of keyed items (files, directories and links by path, users
//     and groups by name, units and drop-ins by name, merge references by
//     source, HTTP headers by name) merge an item the child also has in
//     the same list, keep the parent's others and append the child's new
//     ones; storage files, directories and links share one key space, so
//     a child's directory at a parent's file path removes the file;
//   - a child's HTTP header without a value removes the parent's header;
//   - other lists (append fragments, mount options) are concatenated.

// listRule is how one list merges.
type listRule struct {
	key       func(*node) string // nil: the item itself (a list of strings)
	handle    string             // lists sharing a key space; "" = its own
	appendAll bool
	headers   bool
}

func fieldKey(name string) func(*node) string {
	return func(n *node) string {
		if m := n.get(name); m != nil && m.val.kind == kindString {
			return m.val.str
		}
		return ""
	}
}

func partitionKey(n *node) string {
	if m := n.get("number"); m != nil && m.val.kind == kindNumber && m.val.num.String() != "0" {
		return "number:" + m.val.num.String()
	}
	if m := n.get("label"); m != nil && m.val.kind == kindString {
		return "label:" + m.val.str
	}
	return ""
}

var listRules = map[string]listRule{
	"ignition.config.merge":                        {key: fieldKey("source")},
	"ignition.security.tls.certificateAuthorities": {key: fieldKey("source")},
	"ignition.proxy.noProxy":                       {},
	"kernelArguments.shouldExist":                  {handle: "kernelArguments"},
	"kernelArguments.shouldNotExist":               {handle: "kernelArguments"},
	"passwd.users":                                 {key: fieldKey("name")},
	"passwd.groups":                                {key: fieldKey("name")},
	"passwd.users.sshAuthorizedKeys":               {},
	"passwd.users.groups":                          {},
	"storage.files":                                {key: fieldKey("path"), handle: "storage.node"},
	"storage.directories":                          {key: fieldKey("path"), handle: "storage.node"},
	"storage.links":                                {key: fieldKey("path"), handle: "storage.node"},
	"storage.disks":                                {key: fieldKey("device")},
	"storage.disks.partitions":                     {key: partitionKey},
	"storage.filesystems":                          {key: fieldKey("device")},
	"storage.raid":                                 {key: fieldKey("name")},
	"storage.luks":                                 {key: fieldKey("name")},
	"storage.luks.clevis.tang":                     {key: fieldKey("url")},
	"systemd.units":                                {key: fieldKey("name")},
	"systemd.units.dropins":                        {key: fieldKey("name")},
}

func ruleFor(path string) listRule {
	if strings.HasSuffix(path, ".httpHeaders") {
		return listRule{key: fieldKey("name"), headers: true}
	}
	if r, ok := listRules[path]; ok {
		return r
	}
	// files' append, filesystems' and RAID's options, RAID devices and
	// whatever else is not keyed: Ignition appends them.
	return listRule{appendAll: true}
}

func (r listRule) keyOf(n *node) string {
	if r.key != nil {
		if n.kind != kindObject {
			return ""
		}
		return r.key(n)
	}
	switch n.kind {
	case kindString:
		return n.str
	case kindNumber:
		return n.num.String()
	}
	return ""
}

type handleKey struct{ handle, key string }

type childItem struct {
	list string // the child's member holding it
	item *node
}

// live is the member key of n that counts for merging: nil when absent,
// null, or ignored by its document's check.
func (r *renderer) live(n *node, key string) *member {
	m := n.get(key)
	if m == nil || m.val.kind == kindNull || r.set.ignored[m.val] {
		return nil
	}
	return m
}

// mergeObject merges child over parent; path is the objects' place in
// the config with list indexes left out ("storage.files").
func (r *renderer) mergeObject(parent, child *node, path string) *node {
	out := &node{kind: kindObject, off: child.off}
	items := map[handleKey]childItem{}
	for _, m := range child.members {
		if cm := r.live(child, m.key); cm == nil || cm.val.kind != kindArray {
			continue
		}
		lp := join(path, m.key)
		rule := ruleFor(lp)
		if rule.appendAll {
			continue
		}
		h := rule.handle
		if h == "" {
			h = lp
		}
		for _, e := range m.val.elems {
			items[handleKey{h, rule.keyOf(e)}] = childItem{list: m.key, item: e}
		}
	}
	var keys []string
	seen := map[string]bool{}
	for _, n := range []*node{parent, child} {
		for _, m := range n.members {
			if !seen[m.key] {
				seen[m.key] = true
				keys = append(keys, m.key)
			}
		}
	}
	for _, k := range keys {
		pm, cm := r.live(parent, k), r.live(child, k)
		isList := func(m *member) bool { return m == nil || m.val.kind == kindArray }
		switch {
		case pm == nil && cm == nil:
		case isList(pm) && isList(cm):
			var pl, cl *node
			off := 0
			if pm != nil {
				pl, off = pm.val, pm.keyOff
			}
			if cm != nil {
				cl, off = cm.val, cm.keyOff
			}
			out.members = append(out.members, member{key: k, keyOff: off, val: r.mergeList(pl, cl, k, join(path, k), items)})
		case cm == nil:
			out.members = append(out.members, *pm)
		case pm == nil:
			out.members = append(out.members, *cm)
		case pm.val.kind == kindObject && cm.val.kind == kindObject:
			out.members = append(out.members, member{key: k, keyOff: cm.keyOff, val: r.mergeObject(pm.val, cm.val, join(path, k))})
		default:
			out.members = append(out.members, *cm)
		}
	}
	return out
}

// mergeList merges the child's list cl over the parent's pl (either may be
// nil); items are the child's keyed items of every list of the object.
func (r *renderer) mergeList(pl, cl *node, field, path string, items map[handleKey]childItem) *node {
	out := &node{kind: kindArray}
	var pe, ce []*node
	if pl != nil {
		pe, out.off = pl.elems, pl.off
	}
	if cl != nil {
		ce, out.off = cl.elems, cl.off
	}
	rule := ruleFor(path)
	if rule.appendAll {
		out.elems = append(append(out.elems, pe...), ce...)
		return out
	}
	h := rule.handle
	if h == "" {
		h = path
	}
	parentKeys := map[string]bool{}
	for _, e := range pe {
		k := rule.keyOf(e)
		parentKeys[k] = true
		c, ok := items[handleKey{h, k}]
		switch {
		case !ok:
			out.elems = append(out.elems, e)
		case c.list != field:
			// The child has it in another list sharing the key space
			// (a directory where the parent had a file): the child's
			// entry replaces it there.
		case rule.headers && r.live(c.item, "value") == nil:
			// A header without a value deletes the parent's.
		case e.kind == kindObject && c.item.kind == kindObject:
			out.elems = append(out.elems, r.mergeObject(e, c.item, path))
		default:
			out.elems = append(out.elems, c.item)
		}
	}
	for _, e := range ce {
		if !parentKeys[rule.keyOf(e)] {
			out.elems = append(out.elems, e)
		}
	}
	return out
}
