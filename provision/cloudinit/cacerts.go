package cloudinit

import (
	"fmt"
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// caCerts reads ca_certs, or its older spelling ca-certs, which cloud-init
// 22.4 still reads (with a deprecation warning); given both, cloud-init
// takes ca_certs and ignores ca-certs. null is taken as absent: cloud-init
// fails on it.
func (p *parser) caCerts(under, dash *node) {
	n, key := under, "ca_certs"
	switch {
	case dash != nil && under != nil:
		p.warnf(dash.origin, "ca-certs: ca_certs is given too and wins, as in cloud-init (ca-certs is ignored)")
	case dash != nil:
		n, key = dash, "ca-certs"
	}
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kMap {
		p.typeErr(n, key, "mapping")
		return
	}
	cc := &config.CACerts{Origin: n.origin}
	var removeDash *node
	ok := true
	for i, k := range n.keys {
		v := n.vals[i]
		path := key + "." + k.value
		switch k.value {
		case "remove_defaults":
			cc.RemoveDefaults, ok = p.boolean(v, path)
		case "remove-defaults":
			removeDash = v
		case "trusted":
			cc.Trusted, ok = p.trustedCerts(v, path)
		default:
			p.warnf(k.origin, "unknown %s key %q", key, k.value)
		}
		if !ok {
			return
		}
	}
	if removeDash != nil {
		// cloud-init reads the dashed spelling instead when it is there.
		if cc.RemoveDefaults, ok = p.boolean(removeDash, key+".remove-defaults"); !ok {
			return
		}
	}
	p.cfg.CACerts = cc
}

// trustedCerts is util.get_cfg_option_list: a list, or one certificate.
func (p *parser) trustedCerts(n *node, path string) ([]config.CACert, bool) {
	var out []config.CACert
	switch n.kind {
	case kNull:
	case kStr:
		out = append(out, config.CACert{Origin: n.origin, PEM: n.value})
	case kSeq:
		for i, it := range n.items {
			s, ok := p.str(it, fmt.Sprintf("%s[%d]", path, i))
			if !ok {
				return nil, false
			}
			if strings.TrimSpace(s) != "" {
				out = append(out, config.CACert{Origin: it.origin, PEM: s})
			}
		}
	default:
		p.typeErr(n, path, "list of certificates")
		return nil, false
	}
	return out, true
}

func caCertsSchema() js {
	b := ref("boolean")
	return nullable(object(map[string]js{
		"remove_defaults": withDesc(b, "Remove the distribution's trusted CAs first (default false)."),
		"remove-defaults": withDesc(b, "Same as remove_defaults (deprecated)."),
		"trusted":         withDesc(anyOf(null(), typ("string"), arrayOf(ref("string"))), "PEM certificates to trust: a list, or one."),
	}))
}
