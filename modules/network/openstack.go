package network

import (
	"fmt"
	"net/netip"
	"strings"
)

// OpenStack link types that are a NIC in the guest (everything Nova names
// after the host-side plumbing).
var osPhysical = map[string]bool{
	"phy": true, "ethernet": true, "ovs": true, "bridge": true, "tap": true, "vif": true,
	"hw_veb": true, "hyperv": true, "vhostuser": true, "dvs": true, "macvtap": true, "": true,
}

// parseOpenStack reads ConfigDrive / metadata-service network_data.json:
// links (NICs found by MAC, bonds, VLANs), networks (addressing per link)
// and services (global DNS).
func parseOpenStack(data any) (*Model, error) {
	top, err := asMap(data, "")
	if err != nil {
		return nil, err
	}
	links, err := asList(top["links"], "links")
	if err != nil {
		return nil, err
	}
	m := &Model{}
	type pend struct{ bond, member, path string }
	var members []pend
	for n, lv := range links {
		path := index("links", n)
		lm, err := asMap(lv, path)
		if err != nil {
			return nil, err
		}
		id, err := asString(lm["id"], join(path, "id"))
		if err != nil {
			return nil, err
		}
		typ, err := optString(lm, path, "type")
		if err != nil {
			return nil, err
		}
		i := &Interface{ID: id}
		if i.Name, err = optString(lm, path, "name"); err != nil {
			return nil, err
		}
		if i.MTU, err = optMTU(lm, path); err != nil {
			return nil, err
		}
		mac := ""
		for _, k := range []string{"ethernet_mac_address", "vlan_mac_address"} {
			if v, ok := lm[k]; ok && v != nil && v != "" {
				if mac, err = asMAC(v, join(path, k)); err != nil {
					return nil, err
				}
			}
		}
		switch {
		case osPhysical[typ]:
			i.Kind = Ethernet
			i.MatchMAC = mac
			if mac == "" && i.Name == "" {
				if !validIfName(id) {
					return nil, errAt(path, "link %s has neither a MAC address nor a usable name", id)
				}
				i.Name = id
			}
		case typ == "bond":
			i.Kind, i.MAC = Bond, mac
			if i.Name == "" {
				i.Name = id
			}
			if err := readBond(i, lm, path, path, func(k string) (string, error) {
				if !strings.HasPrefix(k, "bond_") || k == "bond_links" || lm[k] == nil {
					return "", nil
				}
				return strings.TrimPrefix(k, "bond_"), nil
			}); err != nil {
				return nil, err
			}
			bl, err := asStringList(lm["bond_links"], join(path, "bond_links"), false)
			if err != nil {
				return nil, err
			}
			if len(bl) == 0 {
				return nil, errAt(join(path, "bond_links"), "a bond needs links")
			}
			for k, b := range bl {
				members = append(members, pend{id, b, index(join(path, "bond_links"), k)})
			}
		case typ == "vlan":
			i.Kind, i.MAC = VLAN, mac
			if err := readVLAN(i, lm, path, "vlan_id", "vlan_link"); err != nil {
				return nil, err
			}
		default:
			return nil, errAt(join(path, "type"), "unsupported link type %q", typ)
		}
		m.Interfaces = append(m.Interfaces, i)
	}
	for _, p := range members {
		i := m.byID(p.member)
		if i == nil {
			return nil, errAt(p.path, "link %s is not defined", p.member)
		}
		if i.Controller != "" {
			return nil, errAt(p.path, "link %s is already in bond %s", p.member, i.Controller)
		}
		i.Controller = p.bond
	}
	// VLAN names follow the parent ("eth0.100"); a parent known only by MAC
	// gives "vlan100".
	for _, i := range m.Interfaces {
		if i.Kind != VLAN || i.Name != "" {
			continue
		}
		parent := m.byID(i.Link)
		if parent == nil {
			return nil, errAt("links", "vlan %s: vlan_link %s is not defined", i.ID, i.Link)
		}
		i.Name = fmt.Sprintf("vlan%d", i.VLANID)
		if parent.Name != "" && len(parent.Name)+1+len(fmt.Sprint(i.VLANID)) <= 15 {
			i.Name = fmt.Sprintf("%s.%d", parent.Name, i.VLANID)
		}
	}

	nets, err := asList(top["networks"], "networks")
	if err != nil {
		return nil, err
	}
	for n, nv := range nets {
		if err := osNetwork(m, nv, index("networks", n)); err != nil {
			return nil, err
		}
	}
	svcs, err := asList(top["services"], "services")
	if err != nil {
		return nil, err
	}
	for n, sv := range svcs {
		d, err := osService(sv, index("services", n))
		if err != nil {
			return nil, err
		}
		m.DNS.add(d)
	}
	return m, nil
}

func osService(v any, path string) (DNS, error) {
	sm, err := asMap(v, path)
	if err != nil {
		return DNS{}, err
	}
	if t, _ := sm["type"].(string); t != "dns" {
		return DNS{}, nil // other services (ntp, ...) are not network configuration
	}
	a, err := asAddr(sm["address"], join(path, "address"))
	if err != nil {
		return DNS{}, err
	}
	return DNS{Servers: []netip.Addr{a}}, nil
}

func osNetwork(m *Model, v any, path string) error {
	nm, err := asMap(v, path)
	if err != nil {
		return err
	}
	link, err := asString(nm["link"], join(path, "link"))
	if err != nil {
		return err
	}
	i := m.byID(link)
	if i == nil {
		return errAt(join(path, "link"), "link %s is not defined", link)
	}
	typ, err := asString(nm["type"], join(path, "type"))
	if err != nil {
		return err
	}
	static := false
	switch typ {
	case "ipv4_dhcp":
		i.DHCP4 = true
	case "ipv6_dhcp", "ipv6_dhcpv6-stateful", "ipv6_dhcpv6-stateless":
		i.IPv6 = IPv6DHCP
	case "ipv6_slaac":
		// Router advertisements give the address. Nova still lists the
		// address it expects SLAAC to produce; writing it as static is
		// cloud-init's bug, not the network's intent.
		if i.IPv6 == IPv6None {
			i.IPv6 = IPv6SLAAC
		}
	case "ipv4", "ipv6":
		static = true
	default:
		return errAt(join(path, "type"), "unsupported network type %q", typ)
	}
	var gateways []Route
	if static {
		addr, err := asString(nm["ip_address"], join(path, "ip_address"))
		if err != nil {
			return err
		}
		mask, err := optString(nm, path, "netmask")
		if err != nil {
			return err
		}
		p, err := parsePrefix(addr, mask, join(path, "ip_address"), false)
		if err != nil {
			return err
		}
		if p.Addr().Is4() != (typ == "ipv4") {
			return errAt(join(path, "ip_address"), "%s address in a network of type %s", family(p.Addr().Is4()), typ)
		}
		i.Addresses = append(i.Addresses, p)
	}
	routes, err := readRoutes(nm["routes"], join(path, "routes"))
	if err != nil {
		return err
	}
	for _, r := range routes {
		if r.To.Bits() == 0 && r.Via.IsValid() {
			gateways = append(gateways, r)
			continue
		}
		i.Routes = append(i.Routes, r)
	}
	// The first default route per family is the gateway; DHCP networks get
	// theirs from the server, so their default routes stay routes.
	for _, g := range gateways {
		cur := &i.Gateway4
		if g.Via.Is6() {
			cur = &i.Gateway6
		}
		if static && !cur.IsValid() && g.Metric == nil {
			*cur = g.Via
			continue
		}
		i.Routes = append(i.Routes, g)
	}
	if dv, ok := nm["dns_nameservers"]; ok {
		d, err := v1DNS(dv, nil, path, "dns_nameservers", "")
		if err != nil {
			return err
		}
		i.DNS.add(d)
	}
	sv, err := asList(nm["services"], join(path, "services"))
	if err != nil {
		return err
	}
	for n, s := range sv {
		d, err := osService(s, index(join(path, "services"), n))
		if err != nil {
			return err
		}
		i.DNS.add(d)
	}
	return nil
}

// parseEC2 reads the EC2 instance metadata's network/interfaces/macs tree
// and configures DHCP on the primary NIC (device-number 0), found by MAC;
// DHCPv6 too when the NIC has IPv6 addresses.
func parseEC2(data any) (*Model, error) {
	top, err := asMap(data, "")
	if err != nil {
		return nil, err
	}
	path := ""
	for _, k := range []string{"network", "interfaces"} {
		if v, ok := top[k]; ok {
			path = join(path, k)
			if top, err = asMap(v, path); err != nil {
				return nil, err
			}
		}
	}
	macs, err := asMap(top["macs"], join(path, "macs"))
	if err != nil {
		return nil, err
	}
	if len(macs) == 0 {
		return nil, errAt(join(path, "macs"), "no network interfaces")
	}
	best, bestDev := "", int(^uint(0)>>1)
	var bestLeaf map[string]any
	for _, mac := range sortedKeys(macs) {
		mp := join(path, "macs."+mac)
		leaf, err := asMap(macs[mac], mp)
		if err != nil {
			return nil, err
		}
		dev := 1 << 20
		if dv, ok := leaf["device-number"]; ok {
			if dev, err = asInt(dv, join(mp, "device-number"), 0, 1<<20); err != nil {
				return nil, err
			}
		}
		if dev < bestDev {
			best, bestDev, bestLeaf = mac, dev, leaf
		}
	}
	hw, err := asMAC(best, join(path, "macs"))
	if err != nil {
		return nil, err
	}
	i := &Interface{ID: "primary", Kind: Ethernet, MatchMAC: hw, DHCP4: true}
	if v, ok := bestLeaf["ipv6s"]; ok && v != nil && v != "" {
		i.IPv6 = IPv6DHCP
	}
	return &Model{Interfaces: []*Interface{i}}, nil
}
