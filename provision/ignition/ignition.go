// Package ignition translates Ignition spec 3.x configs (3.0.0 to 3.6.0) into
// the one model: passwd users and groups, storage files, directories and
// links, and systemd units, with the configs it references
// (ignition.config.merge and replace) fetched and merged as Ignition does.
// Sections that would repartition or reformat the machine (disks, raid,
// luks, filesystems) and those this release has no applier for
// (kernelArguments, custom TLS roots, proxies) are rejected with a message
// naming the section and its position:
// provision works inside a snapshot of an existing root and never drops part
// of a config on the floor.
package ignition

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

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

var versionRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
})

// Parse translates one Ignition config without fetching anything: a config
// it references (ignition.config.merge and replace) through an http: or
// https: URL is an error, one in a data: URL is read. See ParseWith.
func Parse(origin config.Origin, data []byte) (*config.Config, error) {
	return ParseWith(context.Background(), origin, data, Options{})
}

// ParseWith translates one Ignition config. origin names the document
// (source and file); items in the result carry it with their line and
// column. Configs it references are fetched with opts.Fetch, checked on
// their own and merged or substituted as Ignition does (see render).
// Non-fatal findings (Ignition's own warnings) are in the result's Warnings.
// Every error is reported, joined, each prefixed "source:file:line:col:".
func ParseWith(ctx context.Context, origin config.Origin, data []byte, opts Options) (*config.Config, error) {
	r := &renderer{ctx: ctx, opts: opts, set: &docSet{ignored: map[*node]bool{}}}
	root, err := r.load(origin, data)
	if err != nil {
		return nil, err
	}
	tree, err := r.render(root, nil)
	if err != nil {
		return nil, err
	}
	out := &config.Config{}
	if tree != nil {
		if tree == root && r.fetched == 0 {
			// Nothing was merged: the document's own translation is the
			// result, its warnings given once.
			out = r.own
		} else {
			p := &parser{set: r.set, out: out, quiet: true, final: true}
			p.config(tree)
			p.crossChecks()
			if err := errors.Join(p.errs...); err != nil {
				return nil, err
			}
		}
	}
	out.Warnings = r.warnings
	return out, nil
}

// docSet holds every document a config was built from. Each document's
// node offsets are shifted by its base, so one offset names one place in
// one document, and a tree merged from several keeps every item's origin.
type docSet struct {
	docs []*document // by base
	// ignored are the values of keys a document's own check ignored
	// (unknown, or newer than its spec version): merging must not let
	// them hide the parent's value, as they do not exist for Ignition.
	ignored map[*node]bool
}

type document struct {
	origin config.Origin
	data   []byte
	base   int
	minor  int
}

// add registers data and returns its base offset.
func (s *docSet) add(origin config.Origin, data []byte) *document {
	base := 0
	if n := len(s.docs); n > 0 {
		last := s.docs[n-1]
		base = last.base + len(last.data) + 1 // +1: an offset at the end stays in its document
	}
	d := &document{origin: origin, data: data, base: base}
	s.docs = append(s.docs, d)
	return d
}

func (s *docSet) find(off int) *document {
	i := sort.Search(len(s.docs), func(i int) bool { return s.docs[i].base > off })
	if i == 0 {
		return s.docs[0]
	}
	return s.docs[i-1]
}

type parser struct {
	set   *docSet
	out   *config.Config
	errs  []error
	quiet bool // warnings were given by each document's own check
	final bool // this is the config that is applied, not one to be merged

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
	d := p.set.find(off)
	o := d.origin
	o.Line, o.Column = position(d.data, off-d.base)
	return o
}

// lineCol names the place of off for "also at" messages: line:col within
// a single document, the whole origin once configs were merged.
func (p *parser) lineCol(off int) string {
	if len(p.set.docs) > 1 {
		return p.at(off).String()
	}
	d := p.set.docs[0]
	return lineCol(d.data, off-d.base)
}

// minorAt is the spec minor version of the document holding off.
func (p *parser) minorAt(off int) int { return p.set.find(off).minor }

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
	if p.quiet {
		return
	}
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
	m := versionRE().FindStringSubmatch(s)
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
			p.set.ignored[m.val] = true
			msg := fmt.Sprintf("unknown key %q ignored, as Ignition does", m.key)
			if near := nearestKey(m.key, keys); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
			p.warn(m.keyOff, join(path, m.key), "%s", msg)
		case since > p.minorAt(m.keyOff):
			p.set.ignored[m.val] = true
			p.warn(m.keyOff, join(path, m.key), "key %q needs spec 3.%d.0 or later: ignored in this 3.%d.0 config, as Ignition does", m.key, since, p.minorAt(m.keyOff))
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
	p.refuseNonEmptyInstead(f, path, key, why, "")
}

// refuseNonEmptyInstead is refuseNonEmpty naming what to do instead: a
// refusal by design should leave the user a way to get what they asked.
func (p *parser) refuseNonEmptyInstead(f map[string]*node, path, key, why, instead string) {
	n, ok := f[key]
	if !ok {
		return
	}
	if (n.kind == kindArray && len(n.elems) == 0) || (n.kind == kindObject && len(n.members) == 0) {
		return
	}
	if instead == "" {
		p.unsupported(n.off, join(path, key), why)
		return
	}
	p.fail(n.off, join(path, key), fmt.Errorf("%s: %w; instead, %s", why, ErrUnsupported, instead))
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
		// Ignition edits them through rpm-ostree or zipl after its own
		// run; here the boot loader's configuration in the snapshot is
		// the place, and a Combustion script can edit it.
		const instead = "set them in the boot loader's configuration (/etc/default/grub, /etc/kernel/cmdline) from a Combustion script"
		p.refuseNonEmptyInstead(k, "kernelArguments", "shouldExist", "changing kernel arguments is", instead)
		p.refuseNonEmptyInstead(k, "kernelArguments", "shouldNotExist", "changing kernel arguments is", instead)
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
	if c, ok := f["config"]; ok && !p.quiet {
		// (Not in the merged config: its references were resolved, and
		// each was checked in the document that holds it.)
		cf := p.fields(c, "ignition.config", map[string]int{"merge": 0, "replace": 0})
		sources := map[string]int{}
		for i, m := range p.list(cf, "ignition.config", "merge") {
			mp := index("ignition.config.merge", i)
			src := p.configRef(m, mp, true)
			if src == nil {
				continue
			}
			// Ignition's duplicate check: merge entries are keyed by source.
			if prev, dup := sources[*src]; dup {
				p.failf(m.off, mp, "%s is merged twice (also at %s)", displayURL(*src), p.lineCol(prev))
				continue
			}
			sources[*src] = m.off
		}
		if r, ok := cf["replace"]; ok {
			p.configRef(r, "ignition.config.replace", false)
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
		// Accepted and not applied: the run's fetcher has its own bounds
		// (SPEC §3), and a config cannot lengthen them.
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
	if p.minorAt(n.off) >= 1 {
		keys = map[string]int{"source": 1, "verification": 1, "compression": 1, "httpHeaders": 1}
	}
	return p.fields(n, path, keys)
}

// configRef checks a merge entry or the replace: its source (required for
// a merge; a replace without one replaces nothing), hash, compression and
// headers. It returns the source, or nil when there is none or it is
// invalid. Fetching is the renderer's.
func (p *parser) configRef(n *node, path string, required bool) *string {
	f := p.resourceKeys(n, path)
	if f == nil {
		return nil
	}
	before := len(p.errs)
	src := p.str(f, path, "source")
	var hash *string
	if v, ok := f["verification"]; ok {
		vf := p.fields(v, join(path, "verification"), map[string]int{"hash": 0})
		if hash = p.str(vf, join(path, "verification"), "hash"); hash != nil {
			if err := checkHash(*hash); err != nil {
				p.fail(vf["hash"].off, join(path, "verification.hash"), err)
			}
		}
	}
	if comp := p.str(f, path, "compression"); comp != nil && *comp != "" && *comp != "gzip" {
		p.failf(f["compression"].off, join(path, "compression"), "unknown compression %q (gzip is the only one)", *comp)
	}
	if src == nil || *src == "" {
		switch {
		case required:
			p.failf(n.off, path, "source is required")
		case hash != nil:
			p.failf(n.off, path, "verification.hash is set but source is not")
		}
		if _, ok := f["httpHeaders"]; ok && src == nil {
			p.headers(f, path, "")
		}
		return nil
	}
	sp := join(path, "source")
	scheme := urlScheme(*src)
	switch scheme {
	case "data":
		if _, err := decodeDataURL(*src); err != nil {
			p.fail(f["source"].off, sp, err)
		}
	case "http", "https":
		if u, err := url.Parse(*src); err != nil || u.Host == "" {
			p.failf(f["source"].off, sp, "%q is not a valid %s URL", displayURL(*src), scheme)
		}
	case "tftp", "s3", "gs", "arn":
		p.fail(f["source"].off, sp, unreachableScheme(scheme))
	case "":
		p.failf(f["source"].off, sp, "%q is not a URL", *src)
	default:
		p.failf(f["source"].off, sp, "unknown URL scheme %q (Ignition knows http, https, tftp, s3, arn, gs and data)", scheme)
	}
	p.headers(f, path, scheme)
	if len(p.errs) != before {
		return nil
	}
	return src
}

// unreachableScheme says why a URL scheme Ignition fetches is not fetched
// here, and what to use instead.
func unreachableScheme(scheme string) error {
	switch scheme {
	case "s3", "arn":
		return fmt.Errorf("fetching %s: URLs is %w: it needs AWS credentials and the AWS SDK, which provision does not carry at first boot; give a presigned https:// URL of the object instead", scheme, ErrUnsupported)
	case "gs":
		return fmt.Errorf("fetching gs: URLs is %w: it needs Google Cloud credentials and its client library, which provision does not carry at first boot; give a signed https:// URL of the object instead", ErrUnsupported)
	default:
		return fmt.Errorf("fetching tftp: URLs is %w: TFTP is a protocol provision does not speak at first boot; serve the file over https:// (or http://) instead", ErrUnsupported)
	}
}

// header is one httpHeaders entry; hasValue false is a header given without
// a value, which in a merged config deletes the parent's.
type header struct {
	name, value string
	hasValue    bool
}

// headers checks httpHeaders as Ignition validates them: a list of
// {name, value}, names not empty nor repeated (compared without case, as
// HTTP does: two would both be sent), values not empty, and only for
// http(s) sources (scheme "" when the source is missing). In the config
// that is applied a header needs its value.
func (p *parser) headers(f map[string]*node, path, scheme string) []header {
	hp := join(path, "httpHeaders")
	list := p.list(f, path, "httpHeaders")
	if len(list) == 0 {
		return nil
	}
	if scheme != "http" && scheme != "https" {
		p.failf(f["httpHeaders"].off, hp, "HTTP headers need an http or https source")
		return nil
	}
	var out []header
	seen := map[string]int{}
	for i, e := range list {
		ep := index(hp, i)
		hf := p.fields(e, ep, map[string]int{"name": 1, "value": 1})
		if hf == nil {
			continue
		}
		name := p.str(hf, ep, "name")
		if name == nil || *name == "" {
			p.failf(e.off, ep, "name is required")
			continue
		}
		if !validHeaderName(*name) {
			p.failf(hf["name"].off, join(ep, "name"), "%q is not a valid HTTP header name", *name)
			continue
		}
		if prev, dup := seen[strings.ToLower(*name)]; dup {
			p.failf(e.off, ep, "header %q is given twice (also at %s)", *name, p.lineCol(prev))
			continue
		}
		seen[strings.ToLower(*name)] = e.off
		h := header{name: *name}
		if v := p.str(hf, ep, "value"); v != nil {
			if *v == "" || strings.ContainsAny(*v, "\r\n\x00") {
				p.failf(hf["value"].off, join(ep, "value"), "the value of %q must not be empty nor hold a line break", *name)
				continue
			}
			h.value, h.hasValue = *v, true
		} else if p.final {
			p.failf(e.off, ep, "header %q has no value (only a config merged over another may give none, to delete the other's)", *name)
			continue
		}
		out = append(out, h)
	}
	return out
}

// validHeaderName: an RFC 9110 token.
func validHeaderName(s string) bool {
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r) {
			return false
		}
	}
	return true
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
