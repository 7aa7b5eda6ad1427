package cloudinit

import (
	"fmt"
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// ntp reads cloud-init's ntp: present (even null) means enabled unless
// enabled is false; ntp_client defaults to auto. config's confpath,
// check_exe, packages and service_name override the client's defaults;
// its template is Jinja, which provision does not render, so it is an
// error rather than a configuration silently written another way.
func (p *parser) ntp(n *node) {
	if n == nil {
		return
	}
	cfg := &config.NTP{Origin: n.origin, Client: "auto"}
	switch n.kind {
	case kNull:
		p.cfg.NTP = cfg
		return
	case kMap:
	default:
		p.typeErr(n, "ntp", "mapping")
		return
	}
	enabled, ok := true, true
	for i, k := range n.keys {
		v := n.vals[i]
		path := "ntp." + k.value
		switch k.value {
		case "enabled":
			enabled, ok = p.boolean(v, path)
		case "ntp_client":
			var s string
			if s, ok = p.str(v, path); ok {
				switch s {
				case "auto", "chrony", "systemd-timesyncd", "ntp", "ntpdate":
					cfg.Client = s
				default:
					p.errorf(v.origin, "%s: %q is not auto, chrony, systemd-timesyncd, ntp or ntpdate", path, s)
					ok = false
				}
			}
		case "servers":
			cfg.Servers, ok = p.strOrList(v, path)
		case "pools":
			cfg.Pools, ok = p.strOrList(v, path)
		case "peers":
			cfg.Peers, ok = p.strOrList(v, path)
		case "allow":
			cfg.Allow, ok = p.strOrList(v, path)
		case "config":
			ok = p.ntpConfig(v, path, cfg)
		default:
			p.warnf(k.origin, "unknown ntp key %q", k.value)
		}
		if !ok {
			return
		}
	}
	if enabled {
		p.cfg.NTP = cfg
	}
}

// ntpConfig reads ntp.config, cloud-init's per-client overrides.
func (p *parser) ntpConfig(n *node, path string, cfg *config.NTP) bool {
	if n.kind == kNull {
		return true
	}
	if n.kind != kMap {
		p.typeErr(n, path, "mapping")
		return false
	}
	for i, k := range n.keys {
		v := n.vals[i]
		kp := path + "." + k.value
		ok := true
		switch k.value {
		case "confpath":
			cfg.ConfPath, ok = p.str(v, kp)
			if ok && !strings.HasPrefix(cfg.ConfPath, "/") {
				p.errorf(v.origin, "%s: %q is not an absolute path", kp, cfg.ConfPath)
				ok = false
			}
		case "service_name":
			cfg.ServiceName, ok = p.str(v, kp)
			if ok && (cfg.ServiceName == "" || strings.ContainsAny(cfg.ServiceName, "/ \t\n")) {
				p.errorf(v.origin, "%s: %q is not a unit name", kp, cfg.ServiceName)
				ok = false
			}
		case "check_exe":
			cfg.CheckExe, ok = p.str(v, kp)
		case "packages":
			if v.kind != kSeq {
				p.typeErr(v, kp, "list")
				return false
			}
			cfg.Packages = []string{}
			for j, it := range v.items {
				s, ok := p.str(it, fmt.Sprintf("%s[%d]", kp, j))
				if !ok {
					return false
				}
				cfg.Packages = append(cfg.Packages, s)
			}
		case "template":
			// cloud-init renders it with Jinja; writing it unrendered, or
			// rendered by a look-alike, would give chrony a file it may
			// not read. Say so instead.
			p.errorf(v.origin, "%s: Jinja templates are not supported by provision; drop template and let provision write servers, pools, peers and allow into the client's own configuration (confpath chooses the file)", kp)
			ok = false
		case "template_name":
			p.warnf(k.origin, "%s: ignored: provision writes no template-based file", kp)
		default:
			p.warnf(k.origin, "unknown ntp.config key %q", k.value)
		}
		if !ok {
			return false
		}
	}
	return true
}
