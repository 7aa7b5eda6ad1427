package network

import (
	"net/netip"
	"strings"
)

// parseV1 reads cloud-init network config version 1: a "config:" list of
// physical, bond, bridge, vlan, nameserver and route entries. cloud-init
// ignores keys it does not know in v1, so do we; values are checked.
func parseV1(data any) (*Model, error) {
	top, err := unwrapNetwork(data)
	if err != nil {
		return nil, err
	}
	if _, err := asInt(top["version"], "version", 1, 1); err != nil {
		return nil, err
	}
	list, err := asList(top["config"], "config")
	if err != nil {
		return nil, err
	}
	m := &Model{}
	var members []membership
	var nsIface []struct {
		id, path string
		dns      DNS
	}
	for n, it := range list {
		path := index("config", n)
		em, err := asMap(it, path)
		if err != nil {
			return nil, err
		}
		typ, err := asString(em["type"], join(path, "type"))
		if err != nil {
			return nil, err
		}
		switch typ {
		case "physical", "bond", "bridge", "vlan":
			i, ifaces, err := v1Interface(typ, em, path)
			if err != nil {
				return nil, err
			}
			m.Interfaces = append(m.Interfaces, i)
			key := "bond_interfaces"
			if typ == "bridge" {
				key = "bridge_interfaces"
			}
			for k, mem := range ifaces {
				members = append(members, membership{i.ID, mem, index(join(path, key), k)})
			}
		case "nameserver":
			d, err := v1DNS(em["address"], em["search"], path, "address", "search")
			if err != nil {
				return nil, err
			}
			if iv, ok := em["interface"]; ok {
				id, err := asString(iv, join(path, "interface"))
				if err != nil {
					return nil, err
				}
				nsIface = append(nsIface, struct {
					id, path string
					dns      DNS
				}{id, join(path, "interface"), d})
				continue
			}
			m.DNS.add(d)
		case "route":
			r, err := v1Route(em, path)
			if err != nil {
				return nil, err
			}
			m.Routes = append(m.Routes, r)
		case "loopback":
			// The loopback device configures itself.
		default:
			return nil, errAt(join(path, "type"), "unsupported type %q (want physical, bond, bridge, vlan, nameserver or route)", typ)
		}
	}
	if err := resolveMembers(m, members); err != nil {
		return nil, err
	}
	if err := applyPortSettings(m, func(id string) string { return id + ".params" }); err != nil {
		return nil, err
	}
	for _, ns := range nsIface {
		i := m.byID(ns.id)
		if i == nil {
			return nil, errAt(ns.path, "%s is not defined", ns.id)
		}
		i.DNS.add(ns.dns)
	}
	return m, nil
}

func v1Interface(typ string, em map[string]any, path string) (*Interface, []string, error) {
	name, err := asString(em["name"], join(path, "name"))
	if err != nil {
		return nil, nil, err
	}
	i := &Interface{ID: name, Name: name, Kind: Kind(typ)}
	if typ == "physical" {
		i.Kind = Ethernet
	}
	if v, ok := em["mac_address"]; ok && v != nil {
		mac, err := asMAC(v, join(path, "mac_address"))
		if err != nil {
			return nil, nil, err
		}
		if i.Kind == Ethernet {
			// v1 names the device that has this MAC: cloud-init renames it.
			i.MatchMAC, i.Rename = mac, true
		} else {
			i.MAC = mac
		}
	}
	if i.MTU, err = optMTU(em, path); err != nil {
		return nil, nil, err
	}
	if v, ok := em["accept-ra"]; ok && v != nil {
		if i.AcceptRA, err = boolPtr(v, join(path, "accept-ra")); err != nil {
			return nil, nil, err
		}
	}
	var ifaces []string
	pp := join(path, "params")
	params, err := asMap(em["params"], pp)
	if err != nil {
		return nil, nil, err
	}
	switch typ {
	case "bond":
		if ifaces, err = asStringList(em["bond_interfaces"], join(path, "bond_interfaces"), false); err != nil {
			return nil, nil, err
		}
		if err := readBond(i, params, pp, path, func(k string) (string, error) {
			opt := strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(k, "bond-"), "bond_"), "-", "_")
			if opt == "slaves" || opt == "master" {
				return "", nil // ifupdown bookkeeping; membership is bond_interfaces
			}
			return opt, nil
		}); err != nil {
			return nil, nil, err
		}
	case "bridge":
		if ifaces, err = asStringList(em["bridge_interfaces"], join(path, "bridge_interfaces"), false); err != nil {
			return nil, nil, err
		}
		i.Bridge = &BridgeParams{}
		for _, k := range sortedKeys(params) {
			kp := join(pp, k)
			switch k {
			case "bridge_stp":
				err = setBridgeOption(i.Bridge, "stp", params[k], kp)
			case "bridge_fd":
				err = setBridgeOption(i.Bridge, "forward_delay", params[k], kp)
			case "bridge_bridgeprio":
				err = setBridgeOption(i.Bridge, "priority", params[k], kp)
			case "bridge_ageing":
				err = setBridgeOption(i.Bridge, "ageing_time", params[k], kp)
			case "bridge_hello":
				err = setBridgeOption(i.Bridge, "hello_time", params[k], kp)
			case "bridge_maxage":
				err = setBridgeOption(i.Bridge, "max_age", params[k], kp)
			case "bridge_hw":
				i.MAC, err = asMAC(params[k], kp)
			case "bridge_pathcost", "bridge_portprio":
				err = v1PortSettings(i, k, params[k], kp)
			case "bridge_gcint", "bridge_maxwait", "bridge_waitport", "bridge_ports":
				// ifupdown timing knobs with no meaning for NM or networkd.
			default:
				err = errAt(kp, "unsupported bridge parameter")
			}
			if err != nil {
				return nil, nil, err
			}
		}
		if i.Bridge.STP == nil {
			off := false // ifupdown's default (bridge_stp off)
			i.Bridge.STP = &off
		}
		if err := checkBridge(i.Bridge, pp); err != nil {
			return nil, nil, err
		}
	case "vlan":
		if err := readVLAN(i, em, path, "vlan_id", "vlan_link"); err != nil {
			return nil, nil, err
		}
	}
	subs, err := asList(em["subnets"], join(path, "subnets"))
	if err != nil {
		return nil, nil, err
	}
	for n, s := range subs {
		if err := v1Subnet(i, s, index(join(path, "subnets"), n)); err != nil {
			return nil, nil, err
		}
	}
	return i, ifaces, nil
}

// v1PortSettings reads bridge_pathcost / bridge_portprio: a list of
// "member value" strings (ifupdown's syntax).
func v1PortSettings(i *Interface, key string, v any, path string) error {
	l, err := asStringList(v, path, false)
	if err != nil {
		return err
	}
	for n, s := range l {
		f := strings.Fields(s)
		if len(f) != 2 {
			return errAt(index(path, n), "expected \"<port> <value>\", got %q", s)
		}
		if err := setPortSetting(i, f[0], key == "bridge_portprio", f[1], index(path, n)); err != nil {
			return err
		}
	}
	return nil
}

func v1Subnet(i *Interface, v any, path string) error {
	sm, err := asMap(v, path)
	if err != nil {
		return err
	}
	typ, err := asString(sm["type"], join(path, "type"))
	if err != nil {
		return err
	}
	switch typ {
	case "dhcp", "dhcp4":
		i.DHCP4 = true
	case "dhcp6", "ipv6_dhcpv6-stateful", "ipv6_dhcpv6-stateless":
		i.IPv6 = IPv6DHCP
	case "ipv6_slaac":
		if i.IPv6 == IPv6None {
			i.IPv6 = IPv6SLAAC
		}
	case "static", "static6":
		if err := v1Static(i, sm, path); err != nil {
			return err
		}
	case "manual":
	default:
		return errAt(join(path, "type"), "unsupported subnet type %q", typ)
	}
	if typ != "static" && typ != "static6" {
		if _, ok := sm["address"]; ok {
			return errAt(join(path, "address"), "an address needs subnet type static or static6, not %s", typ)
		}
	}
	d, err := v1DNS(sm["dns_nameservers"], sm["dns_search"], path, "dns_nameservers", "dns_search")
	if err != nil {
		return err
	}
	i.DNS.add(d)
	routes, err := readRoutes(sm["routes"], join(path, "routes"))
	if err != nil {
		return err
	}
	i.Routes = append(i.Routes, routes...)
	return nil
}

func v1Static(i *Interface, sm map[string]any, path string) error {
	addrs, err := asStringList(sm["address"], join(path, "address"), false)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return errAt(path, "static subnet without address")
	}
	mask, err := optString(sm, path, "netmask", "prefix")
	if err != nil {
		return err
	}
	for n, a := range addrs {
		p, err := parsePrefix(a, mask, index(join(path, "address"), n), true)
		if err != nil {
			return err
		}
		i.Addresses = append(i.Addresses, p)
	}
	if gv, ok := sm["gateway"]; ok && gv != nil {
		gw, err := asAddr(gv, join(path, "gateway"))
		if err != nil {
			return err
		}
		cur := &i.Gateway4
		def := netip.MustParsePrefix("0.0.0.0/0")
		if gw.Is6() {
			cur, def = &i.Gateway6, netip.MustParsePrefix("::/0")
		}
		switch {
		case !cur.IsValid():
			*cur = gw
		case *cur != gw:
			// A second subnet with its own gateway: one default gateway per
			// family, the rest as default routes.
			i.Routes = append(i.Routes, Route{To: def, Via: gw})
		}
	}
	return nil
}

// v1DNS reads v1 nameservers: a list, or a string of space-separated words.
func v1DNS(addrs, search any, path, akey, skey string) (DNS, error) {
	return readDNS(addrs, search, join(path, akey), join(path, skey), true)
}

// v1Route reads a route (a "route" entry or a subnet's routes): destination
// or network, netmask or prefix, gateway, metric.
func v1Route(rm map[string]any, path string) (Route, error) {
	var r Route
	dkey := "destination"
	if _, ok := rm[dkey]; !ok {
		dkey = "network"
	}
	dst, err := asString(rm[dkey], join(path, dkey))
	if err != nil {
		return r, err
	}
	mask, err := optString(rm, path, "netmask", "prefix")
	if err != nil {
		return r, err
	}
	if dst == "default" {
		dst = "0.0.0.0/0"
		if g, ok := rm["gateway"].(string); ok && strings.Contains(g, ":") {
			dst = "::/0"
		}
	}
	if r.To, err = parsePrefix(dst, mask, join(path, dkey), true); err != nil {
		return r, err
	}
	r.To = r.To.Masked()
	if gv, ok := rm["gateway"]; ok && gv != nil {
		if r.Via, err = asAddr(gv, join(path, "gateway")); err != nil {
			return r, err
		}
	}
	if mv, ok := rm["metric"]; ok && mv != nil {
		if r.Metric, err = intPtr(mv, join(path, "metric"), 0, 0xffffffff); err != nil {
			return r, err
		}
	}
	if err := r.check(); err != nil {
		return r, errAt(path, "%v", err)
	}
	return r, nil
}
