// Package cloudinit translates cloud-init data — user-data (cloud-config,
// scripts, boothooks, #include, MIME multipart, gzip), vendor-data,
// meta-data, network-config and OpenStack's JSON documents — into the one
// model of provision/config, with cloud-init's semantics: how parts merge,
// what the default user is, where SSH keys go. It parses only; modules apply.
package cloudinit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// Blob is one raw document and where it came from.
type Blob struct {
	Origin config.Origin
	Data   []byte
}

// DataSet is everything a cloud-init style source delivered. Nil members
// are absent.
type DataSet struct {
	UserData, VendorData, VendorData2, MetaData, NetworkConfig *Blob
	// OpenStack vendor_data.json / vendor_data2.json: the "cloud-init" key
	// (a string, a list, or a mapping holding a "cloud-init" key) is the
	// vendor data.
	VendorDataJSON, VendorData2JSON *Blob
	// OpenStack meta_data.json (uuid, hostname, public_keys) and
	// network_data.json (kept as a NetworkDoc of format
	// "openstack-network-data").
	OpenStackMetaData, OpenStackNetworkData *Blob
}

// DefaultMaxDecompressed is the default limit on decompressed gzip data,
// counted over the whole Parse call (all blobs, parts and write_files
// entries together): 64 MiB.
const DefaultMaxDecompressed = defaultMaxDecomp

// Options change how Parse reads.
type Options struct {
	// Strict turns warnings (unknown or unsupported keys, unhandled parts)
	// into errors.
	Strict bool
	// DefaultUser is the target's system_info.default_user (see
	// DefaultUserFromCloudCfg); nil means the target has none.
	DefaultUser *config.User
	// FetchInclude fetches an #include / text/x-include-url URL. Nil makes
	// an include an error; an error matching ErrNotFetched skips the URL
	// with a warning (a dry run that does not fetch).
	FetchInclude func(ctx context.Context, url string) ([]byte, error)
	// MaxDecompressed limits the bytes gunzipped during one Parse call;
	// 0 means DefaultMaxDecompressed. Exceeding it is an error naming the
	// origin; decompression stops there, so memory stays bounded.
	MaxDecompressed int64
}

// ErrNotFetched, returned (wrapped) by a FetchInclude that chose not to
// fetch, makes the include a warning saying so instead of an error: its
// content is simply not checked.
var ErrNotFetched = errors.New("not fetched")

// parser holds one Parse call's state.
type parser struct {
	ctx    context.Context
	opts   Options
	cfg    *config.Config
	errs   []error
	budget int64
	// ec2Network is the interface metadata of an EC2 meta-data document,
	// the network fallback when no document configures the network.
	ec2Network *config.NetworkDoc

	metaKeys      []sshKey // public keys from meta-data
	localHostname *node
	// launchIndex is meta-data's ami-launch-index; nil when none is given.
	launchIndex *int
}

type sshKey struct {
	key    string
	origin config.Origin
}

func (p *parser) errorf(o config.Origin, format string, args ...any) {
	p.errs = append(p.errs, &config.Error{Origin: o, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) warnf(o config.Origin, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.opts.Strict {
		p.errs = append(p.errs, &config.Error{Origin: o, Message: msg + " (strict)"})
		return
	}
	p.cfg.Warnings = append(p.cfg.Warnings, config.Warning{Origin: o, Message: msg})
}

func (p *parser) warn(o config.Origin, msg string) { p.warnf(o, "%s", msg) }

func origin(b *Blob, file string) config.Origin {
	o := b.Origin
	if o.File == "" {
		o.File = file
	}
	return o
}

// Parse reads a whole data set into one Config. Precedence: user-data over
// vendor-data2 over vendor-data, cloud-config parts merged with cloud-init's
// rules. All errors found are returned together, with the part that parsed.
func Parse(ctx context.Context, set DataSet, opts Options) (*config.Config, error) {
	p := &parser{ctx: ctx, opts: opts, cfg: &config.Config{}, budget: opts.MaxDecompressed}
	if p.budget <= 0 {
		p.budget = DefaultMaxDecompressed
	}
	if set.MetaData != nil {
		p.metaData(set.MetaData)
	}
	if set.OpenStackMetaData != nil {
		p.openStackMetaData(set.OpenStackMetaData)
	}
	if set.NetworkConfig != nil {
		p.networkConfig(set.NetworkConfig)
	}
	if b := set.OpenStackNetworkData; b != nil && len(strings.TrimSpace(string(b.Data))) > 0 {
		var v any
		o := origin(b, "network_data.json")
		if err := json.Unmarshal(b.Data, &v); err != nil {
			p.errorf(o, "invalid JSON: %v", err)
		} else {
			p.cfg.Network = append(p.cfg.Network, config.NetworkDoc{Origin: o, Format: "openstack-network-data", Data: v})
		}
	}
	// EC2's interface metadata is the fallback (DHCP on the primary NIC):
	// after any network configuration a document gives.
	if p.ec2Network != nil {
		p.cfg.Network = append(p.cfg.Network, *p.ec2Network)
	}

	var user, vendor, vendor2 *consumed
	var err error
	if set.UserData != nil {
		if user, err = p.consume(origin(set.UserData, "user-data"), set.UserData.Data); err != nil {
			p.errs = append(p.errs, err)
		}
	}
	vendorBlobs := func(raw, js *Blob, rawName, jsName string) *consumed {
		var out *consumed
		for _, b := range []struct {
			blob *Blob
			name string
			json bool
		}{{raw, rawName, false}, {js, jsName, true}} {
			if b.blob == nil {
				continue
			}
			o := origin(b.blob, b.name)
			datas := [][]byte{b.blob.Data}
			if b.json {
				if datas, err = vendorJSON(b.blob.Data); err != nil {
					p.errorf(o, "%v", err)
					continue
				}
			}
			for _, d := range datas {
				c, err := p.consume(o, d)
				if err != nil {
					p.errs = append(p.errs, err)
				}
				out = out.then(c)
			}
		}
		return out
	}
	vendor = vendorBlobs(set.VendorData, set.VendorDataJSON, "vendor-data", "vendor_data.json")
	vendor2 = vendorBlobs(set.VendorData2, set.VendorData2JSON, "vendor-data2", "vendor_data2.json")

	var userTree *node
	if user != nil {
		userTree = user.tree
		p.cfg.Scripts = append(p.cfg.Scripts, user.scripts...)
	}
	merged := userTree
	for _, v := range []struct {
		c   *consumed
		key string
	}{{vendor2, "vendor_data2"}, {vendor, "vendor_data"}} {
		if v.c == nil || !p.vendorEnabled(userTree, v.key) {
			continue
		}
		disabled := p.disabledHandlers(userTree, v.key)
		if !disabled["cloud_config"] {
			merged = mergeOver(merged, v.c.tree)
		}
		for _, s := range v.c.scripts {
			if s.Kind == config.ScriptBoothook && disabled["boot_hook"] || s.Kind == config.ScriptUser && disabled["shell_script"] {
				continue
			}
			p.cfg.Scripts = append(p.cfg.Scripts, s)
		}
	}
	p.cloudConfig(merged)

	if len(p.errs) > 0 {
		// What did parse comes back with the errors, so the checks that
		// follow (validation, planning) report theirs in the same pass.
		sortErrors(p.errs)
		return p.cfg, errors.Join(p.errs...)
	}
	return p.cfg, nil
}

// sortErrors orders errors of the same document by position, so a user
// reads them top to bottom.
func sortErrors(errs []error) {
	pos := func(e error) (string, int, int, bool) {
		var ce *config.Error
		if errors.As(e, &ce) {
			return ce.Origin.Document(), ce.Origin.Line, ce.Origin.Column, true
		}
		return "", 0, 0, false
	}
	sort.SliceStable(errs, func(i, j int) bool {
		di, li, ci, oki := pos(errs[i])
		dj, lj, cj, okj := pos(errs[j])
		if !oki || !okj || di != dj {
			return false
		}
		return li < lj || li == lj && ci < cj
	})
}

// vendorJSON is cloud-init's convert_vendordata for a decoded JSON document.
func vendorJSON(data []byte) ([][]byte, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	var conv func(v any, recurse bool) ([][]byte, error)
	conv = func(v any, recurse bool) ([][]byte, error) {
		switch t := v.(type) {
		case nil:
			return nil, nil
		case string:
			if t == "" {
				return nil, nil
			}
			return [][]byte{[]byte(t)}, nil
		case []any:
			var out [][]byte
			for i, e := range t {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("vendor data list item %d: expected string, got %T", i, e)
				}
				out = append(out, []byte(s))
			}
			return out, nil
		case map[string]any:
			if !recurse {
				return nil, errors.New(`vendordata["cloud-init"] cannot be a mapping`)
			}
			return conv(t["cloud-init"], false)
		}
		return nil, fmt.Errorf("unknown data type for vendor data: %T", v)
	}
	return conv(v, true)
}

func (p *parser) vendorEnabled(user *node, key string) bool {
	n := user.get(key)
	if n == nil {
		return true // cloud-init's base configuration enables both
	}
	if n.kind != kMap {
		p.warnf(n.origin, "%s: expected mapping, got %s; vendor data disabled as cloud-init does", key, n.describe())
		return false
	}
	if pf := n.get("prefix"); pf != nil && pf.kind != kNull {
		// cloud-init runs vendor scripts under this command; provision
		// has no such wrapper, so saying nothing would run them bare.
		p.warnf(pf.origin, "%s.prefix is not supported: vendor-data scripts run without it", key)
	}
	e := n.get("enabled")
	if e == nil {
		return true
	}
	return e.truthy()
}

func (p *parser) disabledHandlers(user *node, key string) map[string]bool {
	out := map[string]bool{}
	if dh := user.get(key).get("disabled_handlers"); dh != nil {
		names, err := stringList(dh)
		if err != nil {
			p.errorf(dh.origin, "%s.disabled_handlers: %v", key, err)
		}
		for _, n := range names {
			out[n] = true
		}
	}
	return out
}

// consumed is what one user-data or vendor-data blob yields.
type consumed struct {
	tree    *node // merged cloud-config; nil when there was none
	scripts []config.Script
}

// then appends a later blob of the same kind (a vendor_data.json list).
func (c *consumed) then(d *consumed) *consumed {
	if c == nil {
		return d
	}
	if d == nil {
		return c
	}
	m, _ := newMerger(mustMerge(defaultPartMerge))
	switch {
	case c.tree == nil:
		c.tree = d.tree
	case d.tree != nil:
		c.tree, _ = m.merge(c.tree, d.tree)
	}
	c.scripts = append(c.scripts, d.scripts...)
	return c
}

// consume runs the part handlers over one blob. A part in error is left
// out and the others are still read, so every part's errors are reported
// together; what did parse is returned with them.
func (p *parser) consume(o config.Origin, data []byte) (*consumed, error) {
	pr := &processor{ctx: p.ctx, opts: &p.opts, budget: &p.budget, warn: p.warn, base: o, launchIndex: p.launchIndex}
	if err := pr.process(data, o, 0); err != nil {
		return nil, err
	}
	c := &consumed{}
	var buf *node
	var errs []error
	fail := func(err error) { errs = append(errs, err) }
	for _, pt := range pr.parts {
		switch pt.ctype {
		case typeCloudConfig:
			tree, err := parseYAML(pt.payload, pt.origin, p.warn)
			if err != nil {
				fail(err)
				continue
			}
			if tree == nil || tree.kind == kNull {
				p.warnf(pt.origin, "empty cloud-config part ignored")
				continue
			}
			if tree.kind != kMap {
				// cloud-init logs such a part and goes on with the others
				// (its handler merges only dicts); rejecting the whole
				// user-data for it would refuse what cloud-init applies.
				p.warnf(tree.origin, "cloud-config part ignored: not a mapping (got %s)", tree.describe())
				continue
			}
			// cloud-init reads a cloud-config part's own launch-index as
			// the part's Launch-Index header.
			if li := tree.get("launch-index"); li != nil && li.kind == kInt && !pr.keepLaunch(li.value, li.origin) {
				continue
			}
			m, err := extractMergers(tree, pt.mergeType)
			if err != nil {
				fail(err)
				continue
			}
			if buf == nil {
				buf = &node{kind: kMap, origin: tree.origin}
			}
			merged, err := m.merge(buf, tree)
			if err != nil {
				fail(&config.Error{Origin: tree.origin, Message: "merging cloud-config part: " + err.Error()})
				continue
			}
			buf = merged
		case typeShellScript, typeShellPerBoot, typeShellPerInst, typeShellPerOnce:
			freq := map[string]string{typeShellScript: "instance", typeShellPerBoot: "boot", typeShellPerInst: "instance", typeShellPerOnce: "once"}[pt.ctype]
			if freq == "boot" {
				// cloud-init installs it in scripts/per-boot and runs it
				// at every boot; provision acts at provisioning only.
				p.warnf(pt.origin, "%s: runs once, when the machine is provisioned; nothing runs it at later boots (a systemd unit does that)", typeShellPerBoot)
			}
			c.scripts = append(c.scripts, config.Script{
				Origin: pt.origin, Kind: config.ScriptUser, Name: pt.name,
				Body: dos2unix(pt.payload), Frequency: freq,
			})
		case typeBoothook:
			body := dos2unix(pt.payload)
			body = []byte(strings.TrimLeft(strings.TrimPrefix(string(body), "#cloud-boothook"), " \t\r\n\v\f"))
			c.scripts = append(c.scripts, config.Script{
				Origin: pt.origin, Kind: config.ScriptBoothook, Name: pt.name, Body: body, Frequency: "boot",
			})
		case typeJinja:
			fail(&config.Error{Origin: pt.origin, Message: jinjaNotSupported + " (\"" + jinjaHeader + "\")"})
		case typePartHandler:
			fail(&config.Error{Origin: pt.origin, Message: "part-handlers (Python code) are not supported"})
		case typeCloudConfigJP:
			fail(&config.Error{Origin: pt.origin, Message: "cloud-config-jsonp (JSON patch) parts are not supported"})
		case typePlain, typeNotMultipart:
			first := strings.SplitN(strings.TrimSpace(string(pt.payload)), "\n", 2)[0]
			if len(first) > 40 {
				first = first[:40] + "..."
			}
			p.warnf(pt.origin, "unhandled user-data (%s) starting %q ignored: not #cloud-config, #! script, #include or MIME", pt.ctype, first)
		default:
			p.warnf(pt.origin, "unknown user-data part type %s ignored", pt.ctype)
		}
	}
	c.tree = buf
	return c, errors.Join(errs...)
}

func dos2unix(b []byte) []byte {
	return []byte(strings.ReplaceAll(string(b), "\r\n", "\n"))
}
