// Package ignition translates Ignition spec 3.x configs (3.0.0 to 3.6.0) into
// the one model: passwd users and groups, storage files, directories and
// links, and systemd units. Sections that would repartition or reformat the
// machine (disks, raid, luks, filesystems) and those this release has no
// applier for (kernelArguments, config merge/replace, custom TLS roots,
// proxies) are rejected with a message naming the section and its position:
// provision works inside a snapshot of an existing root and never drops part
// of a config on the floor.
package ignition

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// ErrUnsupported is wrapped by every error about a valid Ignition feature
// that this release does not apply.
var ErrUnsupported = errors.New("not supported by this release")

// MaxDecompressed bounds gzip-compressed data: URL contents, so a small
// config cannot expand into a memory-filling bomb.
const MaxDecompressed = 64 << 20

// Supported spec versions are 3.0.0 to maxMinor.0. Spec 3.6.0 adds no
// key over 3.5.0: its mode fields apply setuid, setgid and sticky bits
// (specialBitsMinor), and it no longer restricts clevis custom pins (luks
// is refused anyway).
const (
	maxMinor         = 6
	specialBitsMinor = 6
)

var versionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// Parse translates one Ignition config. origin names the document (source
// and file); items in the result carry it with their line and column.
// Non-fatal findings (Ignition's own warnings) are in the result's Warnings.
// Every error is reported, joined, each prefixed "source:file:line:col:".
func Parse(origin config.Origin, data []byte) (*config.Config, error) {
	p := &parser{origin: origin, data: data, out: &config.Config{}}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, fmt.Errorf("%s: empty Ignition config", origin)
	}
	root, err := decodeTree(data)
	if err != nil {
		var pe *posError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: invalid JSON: %w", p.at(pe.off), pe.err)
		}
		return nil, fmt.Errorf("%s: invalid JSON: %w", origin, err)
	}
	if root.kind != kindObject {
		return nil, fmt.Errorf("%s: an Ignition config must be a JSON object, not %s", p.at(root.off), root.kind)
	}
	minor, err := p.version(root)
	if err != nil {
		return nil, err
	}
	p.minor = minor
	p.config(root)
	p.crossChecks()
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return p.out, nil
}

type parser struct {
	origin config.Origin
	data   []byte
	minor  int
	out    *config.Config
	errs   []error

	// positions of definitions for Ignition's duplicate and conflict checks
	nodes     map[string]nodeDef // storage paths
	unitPaths map[string]int     // unit and drop-in files written
	linkPaths []nodeDef
}

type nodeDef struct {
	path string
	kind string
	off  int
}

func (p *parser) at(off int) config.Origin {
	o := p.origin
	o.Line, o.Column = position(p.data, off)
	return o
}

func (p *parser) fail(off int, path string, err error) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s: %w", p.at(off), path, err))
}

func (p *parser) failf(off int, path, format string, args ...any) {
	p.fail(off, path, fmt.Errorf(format, args...))
}

func (p *parser) unsupported(off int, path, why string) {
	p.fail(off, path, fmt.Errorf("%s: %w", why, ErrUnsupported))
}

func (p *parser) warn(off int, path, format string, args ...any) {
	p.out.Warnings = append(p.out.Warnings, config.Warning{
		Origin:  p.at(off),
		Message: path + ": " + fmt.Sprintf(format, args...),
	})
}

// version finds ignition.version before anything else: which keys exist
// depends on it.
func (p *parser) version(root *node) (int, error) {
	if m := root.get("ignitionVersion"); m != nil {
		return 0, fmt.Errorf("%s: ignitionVersion: Ignition spec 1 is not supported; rewrite the config for spec 3 (for example in Butane): %w", p.at(m.keyOff), ErrUnsupported)
	}
	ign := root.get("ignition")
	if ign == nil {
		return 0, fmt.Errorf("%s: not an Ignition config: the \"ignition\" section with a \"version\" is missing", p.at(root.off))
	}
	if ign.val.kind != kindObject {
		return 0, fmt.Errorf("%s: ignition: must be an object, not %s", p.at(ign.val.off), ign.val.kind)
	}
	v := ign.val.get("version")
	if v == nil || v.val.kind == kindNull {
		return 0, fmt.Errorf("%s: ignition.version is missing", p.at(ign.val.off))
	}
	if v.val.kind != kindString {
		return 0, fmt.Errorf("%s: ignition.version: must be a string such as \"3.4.0\", not %s", p.at(v.val.off), v.val.kind)
	}
	s := v.val.str
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%s: ignition.version: %q is not a valid version (write it as \"3.4.0\")", p.at(v.val.off), s)
	}
	major, _ := strconv.Atoi(m[1])
	minor, err := strconv.Atoi(m[2])
	switch {
	case major == 2:
		return 0, fmt.Errorf("%s: ignition.version: Ignition spec 2.x is not supported; convert the config to spec 3 with ign-converter (github.com/coreos/ign-converter) or rewrite it in Butane: %w", p.at(v.val.off), ErrUnsupported)
	case major != 3:
		return 0, fmt.Errorf("%s: ignition.version: Ignition spec %q is not supported (3.0.0 to 3.%d.0 are): %w", p.at(v.val.off), s, maxMinor, ErrUnsupported)
	case err != nil || minor > maxMinor || m[3] != "0" || m[4] != "" || m[5] != "":
		// Ignition accepts only the exact released versions; "-experimental"
		// specs change without notice.
		return 0, fmt.Errorf("%s: ignition.version: spec %q is not supported (3.0.0 to 3.%d.0 are): %w", p.at(v.val.off), s, maxMinor, ErrUnsupported)
	}
	return minor, nil
}

// fields checks that n is an object and returns its members that exist in
// the spec version being read; keys maps each key to the minor version
// that added it. An unknown key is a warning and is ignored, as Ignition
// does ("unused key"): generators add their own (openSUSE's fuel-ignition
// writes "human_read"). The warning names the key it was probably meant
// to be, and --strict makes it an error.
func (p *parser) fields(n *node, path string, keys map[string]int) map[string]*node {
	if n.kind != kindObject {
		p.failf(n.off, path, "must be an object, not %s", n.kind)
		return nil
	}
	out := make(map[string]*node, len(n.members))
	for _, m := range n.members {
		since, ok := keys[m.key]
		switch {
		case !ok:
			msg := fmt.Sprintf("unknown key %q ignored, as Ignition does", m.key)
			if near := nearestKey(m.key, keys); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
			p.warn(m.keyOff, join(path, m.key), "%s", msg)
		case since > p.minor:
			p.warn(m.keyOff, join(path, m.key), "key %q needs spec 3.%d.0 or later: ignored in this 3.%d.0 config, as Ignition does", m.key, since, p.minor)
		default:
			if m.val.kind != kindNull { // null is "not set", as Ignition reads it
				out[m.key] = m.val
			}
		}
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func (p *parser) str(f map[string]*node, path, key string) *string {
	n, ok := f[key]
	if !ok {
		return nil
	}
	if n.kind != kindString {
		p.failf(n.off, join(path, key), "must be a string, not %s", n.kind)
		return nil
	}
	return &n.str
}

func (p *parser) boolean(f map[string]*node, path, key string) *bool {
	n, ok := f[key]
	if !ok {
		return nil
	}
	if n.kind != kindBool {
		p.failf(n.off, join(path, key), "must be true or false, not %s", n.kind)
		return nil
	}
	return &n.boolean
}

func (p *parser) integer(f map[string]*node, path, key string) *int {
	n, ok := f[key]
	if !ok {
		return nil
	}
	if n.kind != kindNumber {
		p.failf(n.off, join(path, key), "must be an integer, not %s", n.kind)
		return nil
	}
	v, err := strconv.ParseInt(n.num.String(), 10, 64)
	if err != nil || v < -1<<31 || v > 1<<32 {
		p.failf(n.off, join(path, key), "must be an integer, not %s", n.num)
		return nil
	}
	i := int(v)
	return &i
}

func (p *parser) list(f map[string]*node, path, key string) []*node {
	n, ok := f[key]
	if !ok {
		return nil
	}
	if n.kind != kindArray {
		p.failf(n.off, join(path, key), "must be a list, not %s", n.kind)
		return nil
	}
	return n.elems
}

func (p *parser) strings(f map[string]*node, path, key string) []string {
	var out []string
	for i, e := range p.list(f, path, key) {
		if e.kind != kindString {
			p.failf(e.off, index(join(path, key), i), "must be a string, not %s", e.kind)
			continue
		}
		out = append(out, e.str)
	}
	return out
}

// refuseNonEmpty rejects a section this release cannot apply when it holds
// anything: an empty list or object asks for nothing and is accepted.
func (p *parser) refuseNonEmpty(f map[string]*node, path, key, why string) {
	n, ok := f[key]
	if !ok {
		return
	}
	if (n.kind == kindArray && len(n.elems) == 0) || (n.kind == kindObject && len(n.members) == 0) {
		return
	}
	p.unsupported(n.off, join(path, key), why)
}

func (p *parser) config(root *node) {
	f := p.fields(root, "", map[string]int{
		"ignition": 0, "passwd": 0, "storage": 0, "systemd": 0, "kernelArguments": 3,
	})
	if n, ok := f["ignition"]; ok {
		p.ignitionSection(n)
	}
	if n, ok := f["kernelArguments"]; ok {
		k := p.fields(n, "kernelArguments", map[string]int{"shouldExist": 3, "shouldNotExist": 3})
		p.refuseNonEmpty(k, "kernelArguments", "shouldExist", "changing kernel arguments is")
		p.refuseNonEmpty(k, "kernelArguments", "shouldNotExist", "changing kernel arguments is")
	}
	if n, ok := f["passwd"]; ok {
		pw := p.fields(n, "passwd", map[string]int{"users": 0, "groups": 0})
		for i, g := range p.list(pw, "passwd", "groups") {
			p.group(g, index("passwd.groups", i))
		}
		for i, u := range p.list(pw, "passwd", "users") {
			p.user(u, index("passwd.users", i))
		}
	}
	if n, ok := f["storage"]; ok {
		p.storage(n)
	}
	if n, ok := f["systemd"]; ok {
		sd := p.fields(n, "systemd", map[string]int{"units": 0})
		seen := map[string]int{}
		for i, u := range p.list(sd, "systemd", "units") {
			p.unit(u, index("systemd.units", i), seen)
		}
	}
}

func (p *parser) ignitionSection(n *node) {
	const path = "ignition"
	f := p.fields(n, path, map[string]int{"version": 0, "config": 0, "security": 0, "timeouts": 0, "proxy": 1})
	if c, ok := f["config"]; ok {
		cf := p.fields(c, "ignition.config", map[string]int{"merge": 0, "replace": 0})
		for i, m := range p.list(cf, "ignition.config", "merge") {
			p.resourceKeys(m, index("ignition.config.merge", i))
		}
		p.refuseNonEmpty(cf, "ignition.config", "merge", "merging further configs is")
		if r, ok := cf["replace"]; ok {
			rf := p.resourceKeys(r, "ignition.config.replace")
			if _, has := rf["source"]; has {
				p.unsupported(r.off, "ignition.config.replace", "replacing the config with another one is")
			}
		}
	}
	if s, ok := f["security"]; ok {
		sf := p.fields(s, "ignition.security", map[string]int{"tls": 0})
		if t, ok := sf["tls"]; ok {
			tf := p.fields(t, "ignition.security.tls", map[string]int{"certificateAuthorities": 0})
			for i, ca := range p.list(tf, "ignition.security.tls", "certificateAuthorities") {
				p.resourceKeys(ca, index("ignition.security.tls.certificateAuthorities", i))
			}
			p.refuseNonEmpty(tf, "ignition.security.tls", "certificateAuthorities", "custom certificate authorities are")
		}
	}
	if t, ok := f["timeouts"]; ok {
		// Accepted: they tune how Ignition fetches, and the things they
		// would tune (merge/replace, remote CAs) are refused above.
		tf := p.fields(t, "ignition.timeouts", map[string]int{"httpResponseHeaders": 0, "httpTotal": 0})
		p.integer(tf, "ignition.timeouts", "httpResponseHeaders")
		p.integer(tf, "ignition.timeouts", "httpTotal")
	}
	if px, ok := f["proxy"]; ok {
		pf := p.fields(px, "ignition.proxy", map[string]int{"httpProxy": 1, "httpsProxy": 1, "noProxy": 1})
		for _, k := range []string{"httpProxy", "httpsProxy"} {
			if s := p.str(pf, "ignition.proxy", k); s != nil && *s != "" {
				p.unsupported(pf[k].off, join("ignition.proxy", k), "fetching through a proxy is")
			}
		}
		p.refuseNonEmpty(pf, "ignition.proxy", "noProxy", "fetching through a proxy is")
	}
}

// resourceKeys checks the keys of a resource object (ConfigReference in
// 3.0, Resource from 3.1) used where the resource itself is refused.
func (p *parser) resourceKeys(n *node, path string) map[string]*node {
	keys := map[string]int{"source": 0, "verification": 0}
	if p.minor >= 1 {
		keys = map[string]int{"source": 1, "verification": 1, "compression": 1, "httpHeaders": 1}
	}
	return p.fields(n, path, keys)
}

// nearestKey is the known key within two edits of key (a typo), or "".
func nearestKey(key string, keys map[string]int) string {
	best, bestDist := "", 3
	for k := range keys {
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
