package network

import "strings"

// parseV2 reads cloud-init network config version 2, the netplan subset
// cloud-init passes through: ethernets, bonds, bridges, vlans. Like netplan,
// unknown keys are errors; a key we do not render is refused, never dropped.
func parseV2(data any) (*Model, error) {
	top, err := unwrapNetwork(data)
	if err != nil {
		return nil, err
	}
	if err := checkKeys(top, "", "version", "renderer", "ethernets", "bonds", "bridges", "vlans"); err != nil {
		return nil, err
	}
	if v, err := asInt(top["version"], "version", 2, 2); err != nil {
		return nil, err
	} else if v != 2 {
		return nil, errAt("version", "expected 2")
	}
	m := &Model{}
	// Membership is declared on the controller ("interfaces:") but stored
	// on the member; remember it and apply once every ID is known.
	var members []membership
	for _, sect := range []struct {
		key  string
		kind Kind
	}{{"ethernets", Ethernet}, {"bonds", Bond}, {"bridges", Bridge}, {"vlans", VLAN}} {
		sm, err := asMap(top[sect.key], sect.key)
		if err != nil {
			return nil, err
		}
		for _, id := range sortedKeys(sm) {
			path := join(sect.key, id)
			im, err := asMap(sm[id], path)
			if err != nil {
				return nil, err
			}
			i, ifaces, err := v2Interface(id, sect.kind, im, path)
			if err != nil {
				return nil, err
			}
			for n, mem := range ifaces {
				members = append(members, membership{id, mem, index(join(path, "interfaces"), n)})
			}
			m.Interfaces = append(m.Interfaces, i)
		}
	}
	if err := resolveMembers(m, members); err != nil {
		return nil, err
	}
	// Bridge port settings are keyed by member ID in the bridge's
	// parameters; they were parked on the bridge until now.
	if err := applyPortSettings(m, func(id string) string { return join(id, "parameters") }); err != nil {
		return nil, err
	}
	return m, nil
}

var v2Common = []string{
	"dhcp4", "dhcp6", "addresses", "gateway4", "gateway6", "routes", "nameservers",
	"mtu", "macaddress", "optional", "accept-ra", "critical", "wakeonlan", "renderer",
}

func v2Interface(id string, kind Kind, im map[string]any, path string) (*Interface, []string, error) {
	i := &Interface{ID: id, Kind: kind}
	known := append([]string{}, v2Common...)
	switch kind {
	case Ethernet:
		known = append(known, "match", "set-name")
	case Bond, Bridge:
		known = append(known, "interfaces", "parameters")
	case VLAN:
		known = append(known, "id", "link")
	}
	if err := checkKeys(im, path, known...); err != nil {
		return nil, nil, err
	}
	var err error
	if kind == Ethernet {
		if mv, ok := im["match"]; ok {
			mm, err := asMap(mv, join(path, "match"))
			if err != nil {
				return nil, nil, err
			}
			if err := checkKeys(mm, join(path, "match"), "macaddress", "name", "driver"); err != nil {
				return nil, nil, err
			}
			if v, ok := mm["macaddress"]; ok {
				if i.MatchMAC, err = asMAC(v, join(path, "match.macaddress")); err != nil {
					return nil, nil, err
				}
			}
			if v, ok := mm["driver"]; ok {
				if i.MatchDriver, err = asString(v, join(path, "match.driver")); err != nil {
					return nil, nil, err
				}
			}
			if v, ok := mm["name"]; ok {
				s, err := asString(v, join(path, "match.name"))
				if err != nil {
					return nil, nil, err
				}
				if strings.ContainsAny(s, "*?[") {
					i.MatchName = s
				} else {
					i.Name = s
				}
			}
			if len(mm) == 0 {
				return nil, nil, errAt(join(path, "match"), "empty match")
			}
		} else {
			i.Name = id
		}
		if v, ok := im["set-name"]; ok {
			s, err := asString(v, join(path, "set-name"))
			if err != nil {
				return nil, nil, err
			}
			if i.MatchMAC == "" {
				// Renaming is done by a udev .link file matching the
				// permanent MAC; netplan needs a match too.
				return nil, nil, errAt(join(path, "set-name"), "needs match.macaddress")
			}
			i.Name, i.MatchName, i.Rename = s, "", true
		}
	} else {
		i.Name = id
	}
	if err := v2Common3(i, im, path); err != nil {
		return nil, nil, err
	}
	var ifaces []string
	switch kind {
	case Bond, Bridge:
		if ifaces, err = asStringList(im["interfaces"], join(path, "interfaces"), false); err != nil {
			return nil, nil, err
		}
		pm, err := asMap(im["parameters"], join(path, "parameters"))
		if err != nil {
			return nil, nil, err
		}
		if kind == Bond {
			if err := readBond(i, pm, join(path, "parameters"), path, func(k string) (string, error) {
				name, ok := v2BondKeys[k]
				if !ok {
					return "", errAt(join(path, "parameters."+k), "unknown or unsupported bond parameter")
				}
				return name, nil
			}); err != nil {
				return nil, nil, err
			}
		} else {
			i.Bridge = &BridgeParams{}
			for _, k := range sortedKeys(pm) {
				kp := join(path, "parameters."+k)
				if k == "path-cost" || k == "port-priority" {
					pp, err := asMap(pm[k], kp)
					if err != nil {
						return nil, nil, err
					}
					for _, port := range sortedKeys(pp) {
						if err := setPortSetting(i, port, k == "port-priority", pp[port], join(kp, port)); err != nil {
							return nil, nil, err
						}
					}
					continue
				}
				name, ok := v2BridgeKeys[k]
				if !ok {
					return nil, nil, errAt(kp, "unknown or unsupported bridge parameter")
				}
				if err := setBridgeOption(i.Bridge, name, pm[k], kp); err != nil {
					return nil, nil, err
				}
			}
			if i.Bridge.STP == nil {
				on := true // netplan's default
				i.Bridge.STP = &on
			}
			if err := checkBridge(i.Bridge, join(path, "parameters")); err != nil {
				return nil, nil, err
			}
		}
	case VLAN:
		if err := readVLAN(i, im, path, "id", "link"); err != nil {
			return nil, nil, err
		}
	}
	return i, ifaces, nil
}

type portSettings struct{ prio, cost *int }

var v2BondKeys = map[string]string{
	"mode": "mode", "lacp-rate": "lacp_rate", "mii-monitor-interval": "miimon",
	"min-links": "min_links", "transmit-hash-policy": "xmit_hash_policy", "ad-select": "ad_select",
	"all-members-active": "all_slaves_active", "all-slaves-active": "all_slaves_active",
	"arp-interval": "arp_interval", "arp-ip-targets": "arp_ip_target", "arp-validate": "arp_validate",
	"up-delay": "updelay", "down-delay": "downdelay", "fail-over-mac-policy": "fail_over_mac",
	"gratuitous-arp": "num_grat_arp", "gratuitious-arp": "num_grat_arp",
	"packets-per-member": "packets_per_slave", "packets-per-slave": "packets_per_slave",
	"primary-reselect-policy": "primary_reselect", "learn-packet-interval": "lp_interval",
	"primary": "primary",
}

var v2BridgeKeys = map[string]string{
	"stp": "stp", "forward-delay": "forward_delay", "hello-time": "hello_time",
	"max-age": "max_age", "ageing-time": "ageing_time", "aging-time": "ageing_time", "priority": "priority",
}

// v2Common3 reads the keys every netplan device type shares.
func v2Common3(i *Interface, im map[string]any, path string) error {
	var err error
	if v, ok := im["dhcp4"]; ok {
		if i.DHCP4, err = asBool(v, join(path, "dhcp4")); err != nil {
			return err
		}
	}
	if v, ok := im["dhcp6"]; ok {
		d6, err := asBool(v, join(path, "dhcp6"))
		if err != nil {
			return err
		}
		if d6 {
			i.IPv6 = IPv6DHCP
		}
	}
	if v, ok := im["accept-ra"]; ok {
		if i.AcceptRA, err = boolPtr(v, join(path, "accept-ra")); err != nil {
			return err
		}
	}
	if v, ok := im["optional"]; ok {
		if i.Optional, err = asBool(v, join(path, "optional")); err != nil {
			return err
		}
	}
	for _, k := range []string{"critical", "wakeonlan"} {
		if v, ok := im[k]; ok {
			if _, err := asBool(v, join(path, k)); err != nil {
				return err
			}
		}
	}
	if v, ok := im["renderer"]; ok {
		if _, err := asString(v, join(path, "renderer")); err != nil {
			return err
		}
	}
	if v, ok := im["mtu"]; ok {
		if i.MTU, err = asInt(v, join(path, "mtu"), 68, 65536); err != nil {
			return err
		}
	}
	if v, ok := im["macaddress"]; ok {
		if i.MAC, err = asMAC(v, join(path, "macaddress")); err != nil {
			return err
		}
	}
	if v, ok := im["addresses"]; ok {
		ap := join(path, "addresses")
		l, err := asList(v, ap)
		if err != nil {
			return err
		}
		for n, it := range l {
			// netplan also allows {"10.0.0.5/24": {lifetime: ..., label: ...}}.
			if mm, ok := it.(map[string]any); ok && len(mm) == 1 {
				for k := range mm {
					it = k
				}
			}
			s, err := asString(it, index(ap, n))
			if err != nil {
				return err
			}
			p, err := parsePrefix(s, "", index(ap, n), false)
			if err != nil {
				return err
			}
			i.Addresses = append(i.Addresses, p)
		}
	}
	for _, k := range []string{"gateway4", "gateway6"} {
		if v, ok := im[k]; ok {
			a, err := asAddr(v, join(path, k))
			if err != nil {
				return err
			}
			if k == "gateway4" {
				i.Gateway4 = a
			} else {
				i.Gateway6 = a
			}
		}
	}
	if v, ok := im["routes"]; ok {
		rp := join(path, "routes")
		l, err := asList(v, rp)
		if err != nil {
			return err
		}
		for n, it := range l {
			r, err := v2Route(it, index(rp, n))
			if err != nil {
				return err
			}
			i.Routes = append(i.Routes, r)
		}
	}
	if v, ok := im["nameservers"]; ok {
		np := join(path, "nameservers")
		nm, err := asMap(v, np)
		if err != nil {
			return err
		}
		if err := checkKeys(nm, np, "addresses", "search"); err != nil {
			return err
		}
		d, err := readDNS(nm["addresses"], nm["search"], join(np, "addresses"), join(np, "search"), false)
		if err != nil {
			return err
		}
		i.DNS.add(d)
	}
	return nil
}

func v2Route(v any, path string) (Route, error) {
	var r Route
	rm, err := asMap(v, path)
	if err != nil {
		return r, err
	}
	if err := checkKeys(rm, path, "to", "via", "metric", "on-link", "table"); err != nil {
		return r, err
	}
	to, err := asString(rm["to"], join(path, "to"))
	if err != nil {
		return r, err
	}
	if rv, ok := rm["via"]; ok {
		if r.Via, err = asAddr(rv, join(path, "via")); err != nil {
			return r, err
		}
	}
	switch to {
	case "default", "0.0.0.0/0", "::/0":
		if to == "default" {
			if r.Via.IsValid() && r.Via.Is6() {
				to = "::/0"
			} else {
				to = "0.0.0.0/0"
			}
		}
	}
	if r.To, err = parsePrefix(to, "", join(path, "to"), true); err != nil {
		return r, err
	}
	r.To = r.To.Masked()
	if mv, ok := rm["metric"]; ok {
		if r.Metric, err = intPtr(mv, join(path, "metric"), 0, 0xffffffff); err != nil {
			return r, err
		}
	}
	if tv, ok := rm["table"]; ok {
		if r.Table, err = intPtr(tv, join(path, "table"), 1, 0xffffffff); err != nil {
			return r, err
		}
	}
	if ov, ok := rm["on-link"]; ok {
		if r.OnLink, err = asBool(ov, join(path, "on-link")); err != nil {
			return r, err
		}
	}
	if err := r.check(); err != nil {
		return r, errAt(path, "%v", err)
	}
	return r, nil
}

// checkDomains accepts DNS search domains: labels of letters, digits,
// hyphens and underscores (renderers write them into list values).
func checkDomains(l []string, path string) error {
	for n, d := range l {
		d = strings.TrimSuffix(d, ".")
		ok := d != "" && len(d) <= 253
		for _, lab := range strings.Split(d, ".") {
			if lab == "" || len(lab) > 63 {
				ok = false
			}
			for _, c := range lab {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
					ok = false
				}
			}
		}
		if !ok {
			return errAt(index(path, n), "invalid search domain %q", l[n])
		}
	}
	return nil
}
