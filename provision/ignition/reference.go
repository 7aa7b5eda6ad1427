package ignition

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// Options steer ParseWith.
type Options struct {
	// Fetch retrieves the http: or https: URL of a referenced config
	// (ignition.config.merge and replace), sending header, within the
	// run's bounds of time and size. Nil makes such a reference an error;
	// an error matching ErrNotFetched leaves the reference out with a
	// warning (a dry run, which does not fetch). data: URLs need no Fetch.
	Fetch func(ctx context.Context, url string, header http.Header) ([]byte, error)
}

// ErrNotFetched, returned (wrapped) by a Fetch that chose not to fetch,
// makes a referenced config a warning instead of an error: its content is
// simply not checked.
var ErrNotFetched = errors.New("not fetched")

// Bounds on referenced configs: a referenced config may reference more
// (Ignition sets no limit), so a loop or a fan-out must end. Each URL of one
// parse counts, data: URLs included; the depth is the longest chain.
const (
	MaxReferences     = 32
	MaxReferenceDepth = 8
)

// renderer resolves ignition.config.replace and merge as Ignition's config
// fetcher does: a replace substitutes the referenced config (itself
// rendered) for the whole current one, its other sections and merges
// included; otherwise each merge is fetched, rendered and merged over the
// result so far, in order, the child winning (see mergeObject).
type renderer struct {
	ctx      context.Context
	opts     Options
	set      *docSet
	fetched  int
	warnings []config.Warning
	// own is the first document's translation on its own: the result
	// when it references nothing (every document is translated on its own
	// first, as Ignition parses and validates every config before merging).
	own *config.Config
}

// load decodes one document, reads its version and checks it on its own;
// a document with errors stops the parse, as Ignition refuses it.
func (r *renderer) load(origin config.Origin, data []byte) (*node, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, fmt.Errorf("%s: empty Ignition config", origin)
	}
	d := r.set.add(origin, data)
	p := &parser{set: r.set, out: &config.Config{}}
	root, err := decodeTree(data)
	if err != nil {
		var pe *posError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: invalid JSON: %w", p.at(d.base+pe.off), pe.err)
		}
		return nil, fmt.Errorf("%s: invalid JSON: %w", origin, err)
	}
	shift(root, d.base)
	if root.kind != kindObject {
		return nil, fmt.Errorf("%s: an Ignition config must be a JSON object, not %s", p.at(root.off), root.kind)
	}
	if d.minor, err = p.version(root); err != nil {
		return nil, err
	}
	p.final = len(r.set.docs) == 1 && !hasReferences(root)
	p.config(root)
	p.crossChecks()
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	r.warnings = append(r.warnings, p.out.Warnings...)
	p.out.Warnings = nil
	if r.own == nil {
		r.own = p.out
	}
	return root, nil
}

// shift moves every offset of the tree into the document's place in the
// parse's offset space.
func shift(n *node, base int) {
	n.off += base
	for i := range n.members {
		n.members[i].keyOff += base
		shift(n.members[i].val, base)
	}
	for _, e := range n.elems {
		shift(e, base)
	}
}

// configRef is one ignition.config.merge entry or the replace, as the
// document's own check accepted it.
type configRef struct {
	path   string // "ignition.config.merge[0]"
	off    int
	source string
	gzip   bool
	hash   string
	header http.Header
	// valueless are headers given without a value: for merging they
	// delete the parent's header; sent, they are an error (Ignition's
	// HTTPHeaders.Parse).
	valueless []string
}

// references reads the merge and replace references of a checked root;
// keys the document's version does not have were ignored by its check.
func (r *renderer) references(root *node) (replace *configRef, merge []configRef) {
	ref := func(n *node, path string) *configRef {
		if n == nil || n.kind != kindObject {
			return nil
		}
		c := &configRef{path: path, off: n.off}
		for _, m := range n.members {
			if r.set.ignored[m.val] {
				continue
			}
			switch v := m.val; m.key {
			case "source":
				if v.kind != kindString {
					return nil // null: no reference (a replace without source)
				}
				c.source = v.str
			case "compression":
				c.gzip = v.kind == kindString && v.str == "gzip"
			case "verification":
				if h := v.get("hash"); h != nil && h.val.kind == kindString && !r.set.ignored[h.val] {
					c.hash = h.val.str
				}
			case "httpHeaders":
				for _, e := range v.elems {
					name, value := e.get("name"), e.get("value")
					if c.header == nil {
						c.header = http.Header{}
					}
					if name != nil && value != nil && value.val.kind == kindString {
						c.header.Add(name.val.str, value.val.str)
					} else if name != nil {
						c.valueless = append(c.valueless, name.val.str)
					}
				}
			}
		}
		return c
	}
	ign := root.get("ignition")
	if ign == nil {
		return nil, nil
	}
	cfg := ign.val.get("config")
	if cfg == nil || r.set.ignored[cfg.val] || cfg.val.kind != kindObject {
		return nil, nil
	}
	if m := cfg.val.get("replace"); m != nil && !r.set.ignored[m.val] {
		replace = ref(m.val, "ignition.config.replace")
		if replace != nil && replace.source == "" {
			replace = nil
		}
	}
	if m := cfg.val.get("merge"); m != nil && !r.set.ignored[m.val] {
		for i, e := range m.val.elems {
			if c := ref(e, index("ignition.config.merge", i)); c != nil {
				merge = append(merge, *c)
			}
		}
	}
	return replace, merge
}

// hasReferences reports whether root names a config to merge or replace
// it with: its own check is then not the final word on it.
func hasReferences(root *node) bool {
	ign := root.get("ignition")
	if ign == nil || ign.val.kind != kindObject {
		return false
	}
	cfg := ign.val.get("config")
	if cfg == nil || cfg.val.kind != kindObject {
		return false
	}
	if m := cfg.val.get("merge"); m != nil && m.val.kind == kindArray && len(m.val.elems) > 0 {
		return true
	}
	if m := cfg.val.get("replace"); m != nil && m.val.kind == kindObject {
		if s := m.val.get("source"); s != nil && s.val.kind == kindString {
			return true
		}
	}
	return false
}

// render returns the tree with its references resolved; nil when a
// replace could not be fetched in a dry run (nothing of the current config
// would be applied). chain holds the URLs of the configs that led here.
func (r *renderer) render(root *node, chain []string) (*node, error) {
	replace, merge := r.references(root)
	p := &parser{set: r.set, out: &config.Config{}}
	if replace != nil {
		child, err := r.fetch(p, *replace, chain)
		if err != nil || child == nil {
			return nil, err
		}
		return r.render(child, append(chain, replace.source))
	}
	result := root
	for _, ref := range merge {
		child, err := r.fetch(p, ref, chain)
		if err != nil {
			return nil, err
		}
		if child == nil {
			continue
		}
		rendered, err := r.render(child, append(chain, ref.source))
		if err != nil {
			return nil, err
		}
		if rendered != nil {
			result = r.mergeObject(result, rendered, "")
		}
	}
	return result, nil
}

// fetch retrieves, checks and loads one referenced config; nil without an
// error when the fetcher chose not to fetch (a warning says so).
func (r *renderer) fetch(p *parser, ref configRef, chain []string) (*node, error) {
	fail := func(err error) (*node, error) {
		return nil, fmt.Errorf("%s: %s: %w", p.at(ref.off), ref.path, err)
	}
	if len(chain) >= MaxReferenceDepth {
		return fail(fmt.Errorf("configs referenced more than %d deep (%s)", MaxReferenceDepth, strings.Join(append(chain, displayURL(ref.source)), " -> ")))
	}
	for _, u := range chain {
		if u == ref.source && urlScheme(u) != "data" {
			return fail(fmt.Errorf("%s is already being merged (a cycle: %s)", displayURL(ref.source), strings.Join(append(chain, displayURL(ref.source)), " -> ")))
		}
	}
	if r.fetched >= MaxReferences {
		return fail(fmt.Errorf("more than %d referenced configs in one Ignition config", MaxReferences))
	}
	r.fetched++
	if len(ref.valueless) > 0 {
		return fail(fmt.Errorf("httpHeaders: %q has no value (Ignition sends no header without one)", ref.valueless[0]))
	}
	var data []byte
	var err error
	parent := p.at(ref.off)
	origin := config.Origin{Source: parent.Source}
	switch urlScheme(ref.source) {
	case "data":
		origin.File = fmt.Sprintf("%s:%s (data: URL)", parent.File, ref.path)
		data, err = decodeDataURL(ref.source)
		if err != nil {
			return fail(err)
		}
	case "http", "https":
		origin.File = displayURL(ref.source)
		if r.opts.Fetch == nil {
			return fail(fmt.Errorf("fetching %s: referenced configs cannot be fetched here", displayURL(ref.source)))
		}
		data, err = r.opts.Fetch(r.ctx, ref.source, ref.header)
		if errors.Is(err, ErrNotFetched) {
			what := "merged into this one"
			if strings.HasSuffix(ref.path, "replace") {
				what = "applied instead of this one (nothing of this config is planned)"
			}
			r.warnings = append(r.warnings, config.Warning{Origin: parent, Message: fmt.Sprintf("%s: %s not fetched, so the config the boot would have %s is not checked: %v", ref.path, displayURL(ref.source), what, err)})
			return nil, nil
		}
		if err != nil {
			return fail(err)
		}
	default:
		// The document's own check refused every other scheme.
		return fail(fmt.Errorf("cannot fetch %s", displayURL(ref.source)))
	}
	if ref.gzip {
		if data, err = gunzip(data); err != nil {
			return fail(err)
		}
	}
	// As for contents, the hash describes the decompressed config.
	if ref.hash != "" {
		if err := verifyHash(ref.hash, data); err != nil {
			return fail(fmt.Errorf("%s: %w", displayURL(ref.source), err))
		}
	}
	return r.load(origin, data)
}

// displayURL names a URL in messages and origins without its query and
// fragment (a presigned URL's signature is a credential) and without a
// data: URL's payload.
func displayURL(s string) string {
	if urlScheme(s) == "data" {
		return "data: URL"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "invalid URL"
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.User = "", "", "", nil
	return u.String()
}
