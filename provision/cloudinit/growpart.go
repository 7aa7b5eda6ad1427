package cloudinit

import (
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// growpart reads growpart as cloud-init's cc_growpart: mode auto (default)
// or growpart grow with provision's own partition table code; off, false
// (or another of cloud-init's false words) disable it; gpart is FreeBSD's.
func (p *parser) growpart(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kMap {
		p.typeErr(n, "growpart", "mapping")
		return
	}
	g := &config.Growpart{Origin: n.origin, Mode: "auto", Devices: []string{"/"}}
	ok := true
	for i, k := range n.keys {
		v := n.vals[i]
		path := "growpart." + k.value
		switch k.value {
		case "mode":
			g.Mode, ok = p.growMode(v, path)
		case "devices":
			switch v.kind {
			case kNull:
			case kStr:
				g.Devices = []string{v.value}
			default:
				g.Devices, ok = p.argv(v, path)
			}
			for _, d := range g.Devices {
				if ok && !strings.HasPrefix(d, "/") {
					p.errorf(v.origin, "%s: %q is neither a mount point nor a device path", path, d)
					ok = false
				}
			}
		case "ignore_growroot_disabled":
			g.IgnoreGrowrootDisabled, ok = p.boolean(v, path)
		default:
			p.warnf(k.origin, "unknown growpart key %q", k.value)
		}
		if !ok {
			return
		}
	}
	p.cfg.Growpart = g
}

func (p *parser) growMode(v *node, path string) (string, bool) {
	if v.kind == kBool {
		if v.value == "false" {
			return "off", true
		}
	} else if s, ok := p.str(v, path); ok {
		switch ls := strings.ToLower(strings.TrimSpace(s)); {
		case ls == "auto" || ls == "growpart":
			return ls, true
		case isFalseWord(ls):
			return "off", true
		case ls == "gpart":
			p.errorf(v.origin, "%s: gpart is FreeBSD's resizer; provision grows Linux partitions itself (use auto)", path)
			return "", false
		}
	} else {
		return "", false
	}
	p.errorf(v.origin, "%s: unknown resize mode %s (auto, growpart or off)", path, v.describe())
	return "", false
}

// isFalseWord is cloud-init's util.is_false for strings.
func isFalseWord(s string) bool {
	switch s {
	case "off", "0", "no", "false":
		return true
	}
	return false
}

// resizeRootfs reads resize_rootfs: true, false or noblock, the values
// cloud-init's schema allows (its translate_bool also reads "yes" or "1"
// as true, with a schema warning; here they are errors, as the schema
// provision publishes says).
func (p *parser) resizeRootfs(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	mode := ""
	switch {
	case n.kind == kBool:
		mode = n.value
	case n.kind == kStr && n.value == "noblock":
		mode = n.value
	default:
		p.typeErr(n, "resize_rootfs", `true, false or "noblock"`)
		return
	}
	p.cfg.ResizeRootfs = &config.ResizeRootfs{Origin: n.origin, Mode: mode}
}

func growpartSchema() js {
	return nullable(object(map[string]js{
		"mode":                     withDesc(anyOf(js{"enum": []any{"auto", "growpart", "off"}}, js{"const": false}), "auto (default) or growpart: grow; off: leave the partitions alone."),
		"devices":                  withDesc(arrayOf(ref("string")), "Mount points in the target or device paths whose partitions are grown (default [\"/\"])."),
		"ignore_growroot_disabled": withDesc(ref("boolean"), "Grow even when the target has /etc/growroot-disabled (default false)."),
	}))
}

func resizeRootfsSchema() js {
	return nullable(js{"enum": []any{true, false, "noblock"}})
}
