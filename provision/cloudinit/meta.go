package cloudinit

import (
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// mappingDoc parses b (YAML or JSON), named file when b has no file name,
// as a document that must be a mapping; want names that in the error
// ("a mapping", "an object"). It returns nil, with any error recorded, when
// the document is unusable, or empty and optional; a required document
// must not be empty, not even null.
func (p *parser) mappingDoc(b *Blob, file, want string, required bool) *node {
	o := origin(b, file)
	tree, err := parseYAML(b.Data, o, p.warn)
	if err != nil {
		p.errs = append(p.errs, err)
		return nil
	}
	if tree == nil && required {
		p.errorf(o, "%s is empty", file)
		return nil
	}
	if tree == nil || tree.kind == kNull && !required {
		return nil
	}
	if tree.kind != kMap {
		p.errorf(tree.origin, "%s must be %s, got %s", file, want, tree.describe())
		return nil
	}
	return tree
}

// metaData reads NoCloud/EC2-style meta-data (YAML or JSON).
func (p *parser) metaData(b *Blob) {
	tree := p.mappingDoc(b, "meta-data", "a mapping", false)
	if tree == nil {
		return
	}
	for i, k := range tree.keys {
		v := tree.vals[i]
		switch k.value {
		case "instance-id", "instance_id":
			p.metaInstanceID(v, k.value)
		case "local-hostname", "local_hostname":
			p.metaHostname(v, k.value)
		case "public-keys", "public_keys":
			p.metaKeys = append(p.metaKeys, p.publicKeys(v, k.value)...)
		case "network":
			// The ec2 source assembles network/interfaces/macs/... here.
			if v.kind == kMap && v.get("interfaces") != nil {
				p.ec2Network = &config.NetworkDoc{Origin: v.origin, Format: "ec2-metadata", Data: v.plain()}
			}
		case "ami-launch-index":
			// EC2's index of this instance among those launched together:
			// user-data parts with another launch-index are not ours.
			if v.isScalar() {
				if i, err := strconv.Atoi(strings.TrimSpace(v.value)); err == nil {
					p.launchIndex = &i
				}
			}
		case "network-interfaces":
			p.warnf(k.origin, "meta-data network-interfaces (legacy ENI format) is not supported; use network-config")
		}
	}
}

// metaInstanceID takes the instance ID from meta-data key (a string; an
// empty one is no ID).
func (p *parser) metaInstanceID(v *node, key string) {
	if s, ok := p.str(v, key); ok && s != "" {
		p.cfg.InstanceID = config.Setting{Value: s, Origin: v.origin}
	}
}

// metaHostname keeps the meta-data hostname (a string) for later: user-data
// may override it.
func (p *parser) metaHostname(v *node, key string) {
	if _, ok := p.str(v, key); ok {
		p.localHostname = v
	}
}

// publicKeys is cloud-init's normalize_pubkey_data: a string (one key a
// line), a list, or a mapping of name to key(s) — also the EC2 shape
// index → {openssh-key: ...}.
func (p *parser) publicKeys(n *node, path string) []sshKey {
	var out []sshKey
	addStr := func(v *node) {
		for _, line := range strings.Split(v.value, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, sshKey{key: line, origin: v.origin})
			}
		}
	}
	var addAny func(v *node, depth int)
	addAny = func(v *node, depth int) {
		switch v.kind {
		case kNull:
		case kStr:
			addStr(v)
		case kSeq:
			for _, it := range v.items {
				if it.kind == kStr {
					addStr(it)
				} else if it.kind != kNull {
					p.errorf(it.origin, "%s: expected string, got %s", path, it.describe())
				}
			}
		case kMap:
			if depth > 0 {
				if ok := v.get("openssh-key"); ok != nil {
					addAny(ok, depth+1)
					return
				}
				p.errorf(v.origin, "%s: expected string, list or {openssh-key: ...}, got mapping", path)
				return
			}
			for _, kv := range v.vals {
				addAny(kv, depth+1)
			}
		default:
			p.errorf(v.origin, "%s: expected string, list or mapping, got %s", path, v.describe())
		}
	}
	addAny(n, 0)
	return out
}

// openStackMetaData reads ConfigDrive / OpenStack meta_data.json.
func (p *parser) openStackMetaData(b *Blob) {
	tree := p.mappingDoc(b, "meta_data.json", "an object", true)
	if tree == nil {
		return
	}
	if v := tree.get("uuid"); v != nil {
		p.metaInstanceID(v, "uuid")
	} else {
		p.errorf(tree.origin, "meta_data.json has no uuid (the instance-id)")
	}
	if v := tree.get("hostname"); v != nil {
		p.metaHostname(v, "hostname")
	}
	if v := tree.get("public_keys"); v != nil {
		p.metaKeys = append(p.metaKeys, p.publicKeys(v, "public_keys")...)
	}
	if v := tree.get("meta"); v != nil && v.kind != kMap && v.kind != kNull {
		p.errorf(v.origin, "meta: expected object, got %s", v.describe())
	}
}

// networkConfig reads a network-config document (v1 or v2, optionally
// wrapped in "network:").
func (p *parser) networkConfig(b *Blob) {
	tree := p.mappingDoc(b, "network-config", "a mapping", false)
	if tree == nil {
		return
	}
	if inner := tree.get("network"); inner != nil && !tree.has("version") {
		if inner.kind != kMap {
			p.errorf(inner.origin, "network: expected mapping, got %s", inner.describe())
			return
		}
		tree = inner
	}
	doc := config.NetworkDoc{Origin: tree.origin}
	if c := tree.get("config"); c != nil && c.kind == kStr && c.value == "disabled" {
		doc.Disabled = true
		doc.Format = "cloud-init-v1"
		p.cfg.Network = append(p.cfg.Network, doc)
		return
	}
	v := tree.get("version")
	if v == nil {
		p.errorf(tree.origin, "network-config: missing version (1 or 2)")
		return
	}
	switch strings.TrimSpace(v.value) {
	case "1":
		doc.Format = "cloud-init-v1"
		if c := tree.get("config"); c == nil || c.kind != kSeq && c.kind != kNull {
			p.errorf(tree.origin, "network-config v1: config: expected list, got %s", c.describe())
			return
		}
	case "2":
		doc.Format = "cloud-init-v2"
	default:
		p.errorf(v.origin, "network-config: unsupported version %s (want 1 or 2)", v.describe())
		return
	}
	doc.Data = tree.plain()
	doc.Positions = tree.positions()
	p.cfg.Network = append(p.cfg.Network, doc)
}

// DefaultUserFromCloudCfg reads the target's cloud-init configuration —
// /etc/cloud/cloud.cfg and /etc/cloud/cloud.cfg.d/*.cfg, keyed by path —
// and returns system_info.default_user, or nil when none is configured.
// As in cloud-init, *.cfg.d files override cloud.cfg and later files (by
// name) override earlier ones, mappings merging key by key.
func DefaultUserFromCloudCfg(files map[string][]byte) (*config.User, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	rank := func(n string) int {
		if path.Base(n) == "cloud.cfg" && !strings.Contains(n, "cloud.cfg.d/") {
			return 0
		}
		return 1
	}
	sort.Slice(names, func(i, j int) bool {
		ri, rj := rank(names[i]), rank(names[j])
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	p := &parser{cfg: &config.Config{}}
	var merged *node
	for _, name := range names {
		if rank(name) == 1 && !strings.HasSuffix(name, ".cfg") {
			continue
		}
		tree, err := parseYAML(files[name], config.Origin{File: name}, nil)
		if err != nil {
			return nil, err
		}
		if tree == nil || tree.kind == kNull {
			continue
		}
		if tree.kind != kMap {
			return nil, &config.Error{Origin: tree.origin, Message: "expected a mapping, got " + tree.describe()}
		}
		merged = mergeOver(tree, merged)
	}
	du := merged.get("system_info").get("default_user")
	if du == nil || du.kind == kNull {
		return nil, nil
	}
	if du.kind != kMap {
		return nil, &config.Error{Origin: du.origin, Message: "system_info.default_user: expected mapping, got " + du.describe()}
	}
	name := du.get("name")
	if name == nil || name.kind != kStr || name.value == "" {
		return nil, &config.Error{Origin: du.origin, Message: "system_info.default_user: name is required"}
	}
	u := &config.User{Origin: du.origin, Name: name.value, LockPassword: true}
	p.userFields(u, normalizeKeys(du), "system_info.default_user", nil)
	if len(p.errs) > 0 {
		return nil, p.errs[0]
	}
	return u, nil
}
