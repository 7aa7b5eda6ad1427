package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// NMDir is where NetworkManager reads keyfile profiles.
const NMDir = "/etc/NetworkManager/system-connections"

func nmID(i *Interface) string { return "cloud-init " + i.ID }

// RenderNM renders one keyfile per interface (0600: NetworkManager ignores
// profiles others can read) and a udev .link file per renamed device.
func RenderNM(m *Model) ([]File, error) {
	var out []File
	for _, i := range m.Interfaces {
		if i.Rename {
			out = append(out, linkFile(i))
		}
		f, err := nmProfile(m, i)
		if err != nil {
			return nil, err
		}
		out = append(out, File{
			Path:   NMDir + "/cloud-init-" + i.ID + ".nmconnection",
			Data:   f.bytes(),
			Mode:   0o600,
			Detail: describeIface(m, i),
		})
	}
	return out, nil
}

func nmProfile(m *Model, i *Interface) (*ini, error) {
	f := &ini{}
	c := f.sec("connection")
	c.set("id", nmID(i))
	c.set("uuid", uuid5(nmID(i)))
	c.set("type", string(i.Kind))
	if i.Name != "" {
		c.set("interface-name", i.Name)
	}
	if i.Controller != "" {
		ctl := m.byID(i.Controller)
		c.set("master", uuid5(nmID(ctl)))
		c.set("slave-type", string(ctl.Kind))
	}
	if i.MatchName != "" || i.MatchDriver != "" {
		ms := f.sec("match")
		if i.MatchDriver != "" {
			ms.set("driver", i.MatchDriver+";")
		}
		if i.MatchName != "" {
			ms.set("interface-name", i.MatchName+";")
		}
	}

	eth := f.sec("ethernet")
	if i.Kind == Ethernet && i.MatchMAC != "" {
		eth.set("mac-address", i.MatchMAC)
	}
	if i.MAC != "" {
		eth.set("cloned-mac-address", i.MAC)
	}
	if i.MTU > 0 {
		eth.set("mtu", strconv.Itoa(i.MTU))
	}

	switch i.Kind {
	case Bond:
		nmBond(f.sec("bond"), m, i.Bond)
	case Bridge:
		b := f.sec("bridge")
		p := i.Bridge
		if p.STP != nil {
			b.set("stp", strconv.FormatBool(*p.STP))
		}
		b.setInt("forward-delay", p.ForwardDelay)
		b.setInt("hello-time", p.HelloTime)
		b.setInt("max-age", p.MaxAge)
		b.setInt("ageing-time", p.AgeingTime)
		b.setInt("priority", p.Priority)
	case VLAN:
		v := f.sec("vlan")
		v.set("id", strconv.Itoa(i.VLANID))
		parent := m.byID(i.Link)
		if parent.Name != "" {
			v.set("parent", parent.Name)
		} else {
			v.set("parent", uuid5(nmID(parent)))
		}
	}
	if i.Controller != "" {
		if ctl := m.byID(i.Controller); ctl.Kind == Bridge {
			bp := f.sec("bridge-port")
			bp.setInt("path-cost", i.PathCost)
			bp.setInt("priority", i.PortPriority)
		}
		// Ports have no IP settings; NetworkManager refuses them.
		return f, nil
	}
	if err := nmIPv4(f.sec("ipv4"), i); err != nil {
		return nil, err
	}
	if err := nmIPv6(f.sec("ipv6"), i); err != nil {
		return nil, err
	}
	return f, nil
}

func nmBond(s *section, m *Model, b *BondParams) {
	mode := b.Mode
	if mode == "" {
		mode = "balance-rr"
	}
	s.set("mode", mode)
	if len(b.ARPIPTargets) > 0 {
		s.set("arp_ip_target", joinAddrs(b.ARPIPTargets, ",", false))
	}
	s.setInt("arp_interval", b.ARPInterval)
	if b.AllSlavesActive != nil {
		s.set("all_slaves_active", map[bool]string{true: "1", false: "0"}[*b.AllSlavesActive])
	}
	s.setInt("downdelay", b.DownDelay)
	opt := func(k, v string) {
		if v != "" {
			s.set(k, v)
		}
	}
	opt("ad_select", b.ADSelect)
	opt("arp_validate", b.ARPValidate)
	opt("fail_over_mac", b.FailOverMAC)
	opt("lacp_rate", b.LACPRate)
	s.setInt("lp_interval", b.LearnPacketInter)
	s.setInt("miimon", b.MIIMon)
	s.setInt("min_links", b.MinLinks)
	s.setInt("num_grat_arp", b.GratuitousARP)
	s.setInt("packets_per_slave", b.PacketsPerSlave)
	if b.Primary != "" {
		s.set("primary", m.byID(b.Primary).Name)
	}
	opt("primary_reselect", b.PrimaryReselect)
	s.setInt("updelay", b.UpDelay)
	opt("xmit_hash_policy", b.XmitHashPolicy)
}

// nmRoutes writes routeN entries ("dest/len,gateway[,metric]") and their
// options; the gateway 0.0.0.0 / :: is NetworkManager's own spelling of
// "no gateway".
func nmRoutes(s *section, routes []Route, v4 bool) {
	n := 0
	for _, r := range routes {
		if r.To.Addr().Is4() != v4 {
			continue
		}
		n++
		via := r.Via
		if !via.IsValid() {
			via = netip.IPv4Unspecified()
			if !v4 {
				via = netip.IPv6Unspecified()
			}
		}
		v := r.To.String() + "," + via.String()
		if r.Metric != nil {
			v += "," + strconv.Itoa(*r.Metric)
		}
		s.set(fmt.Sprintf("route%d", n), v)
		var opts []string
		if r.OnLink {
			opts = append(opts, "onlink=true")
		}
		if r.Table != nil {
			opts = append(opts, "table="+strconv.Itoa(*r.Table))
		}
		if len(opts) > 0 {
			s.set(fmt.Sprintf("route%d_options", n), strings.Join(opts, ","))
		}
	}
}

// nmAddresses writes addressN entries, the gateway folded into the first
// (how NetworkManager itself writes it). With no static address a gateway
// becomes a default route: NetworkManager refuses ipv4.gateway without one.
func nmAddresses(s *section, i *Interface, gw netip.Addr, v4 bool) []Route {
	n := 0
	for _, a := range i.Addresses {
		if a.Addr().Is4() != v4 {
			continue
		}
		n++
		v := a.String()
		if n == 1 && gw.IsValid() {
			v += "," + gw.String()
		}
		s.set(fmt.Sprintf("address%d", n), v)
	}
	if n == 0 && gw.IsValid() {
		def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if !v4 {
			def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		return []Route{{To: def, Via: gw}}
	}
	return nil
}

func nmDNS(s *section, d DNS, v4 bool) {
	var servers []netip.Addr
	for _, a := range d.Servers {
		if a.Is4() == v4 {
			servers = append(servers, a)
		}
	}
	if len(servers) > 0 {
		s.set("dns", joinAddrs(servers, ";", true))
	}
}

// The search list goes with the first family that carries DNS settings.
func searchFamilyV4(i *Interface) bool {
	return i.hasIPv4()
}

// hasDNS reports whether the interface has a resolver of the family.
func hasDNS(i *Interface, v4 bool) bool {
	for _, a := range i.DNS.Servers {
		if a.Is4() == v4 {
			return true
		}
	}
	return false
}

func nmIPv4(s *section, i *Interface) error {
	switch {
	case i.DHCP4:
		s.set("method", "auto")
	case i.hasIPv4():
		s.set("method", "manual")
	case hasDNS(i, true):
		// NetworkManager takes ipv4.dns only with IPv4 enabled, and auto
		// would start DHCPv4 nobody asked for; networkd has no such limit.
		return fmt.Errorf("%s: NetworkManager keeps an IPv4 nameserver only on an interface with IPv4 configured (add dhcp4 or an IPv4 address)", i.ID)
	default:
		// Without this NetworkManager would run DHCPv4 (the default
		// method is auto) — cloud-init's bug.
		s.set("method", "disabled")
		return nil
	}
	extra := nmAddresses(s, i, i.Gateway4, true)
	nmDNS(s, i.DNS, true)
	if len(i.DNS.Search) > 0 && searchFamilyV4(i) {
		s.set("dns-search", strings.Join(i.DNS.Search, ";")+";")
	}
	nmRoutes(s, append(extra, i.Routes...), true)
	return nil
}

func nmIPv6(s *section, i *Interface) error {
	ra := i.AcceptRA == nil || *i.AcceptRA
	has6 := i.hasIPv6()
	switch {
	case i.IPv6 == IPv6DHCP && !ra:
		s.set("method", "dhcp")
	case i.IPv6 != IPv6None || i.AcceptRA != nil && *i.AcceptRA:
		s.set("method", "auto")
	case has6:
		s.set("method", "manual")
	case hasDNS(i, false) && (i.AcceptRA == nil || *i.AcceptRA):
		// An IPv6 nameserver without IPv6 settings: NetworkManager refuses
		// ipv6.dns with method ignore, and "auto" is what the kernel does
		// by default anyway (router advertisements), as cloud-init writes.
		s.set("method", "auto")
	case hasDNS(i, false):
		return fmt.Errorf("%s: NetworkManager keeps an IPv6 nameserver only with IPv6 enabled, and accept-ra: false leaves none (add an IPv6 address)", i.ID)
	case i.AcceptRA != nil && !*i.AcceptRA:
		s.set("method", "link-local")
		return nil
	default:
		// Leave IPv6 to the kernel's defaults, as networkd does for a
		// link without IPv6 settings.
		s.set("method", "ignore")
		return nil
	}
	extra := nmAddresses(s, i, i.Gateway6, false)
	nmDNS(s, i.DNS, false)
	if len(i.DNS.Search) > 0 && !searchFamilyV4(i) {
		s.set("dns-search", strings.Join(i.DNS.Search, ";")+";")
	}
	nmRoutes(s, append(extra, i.Routes...), false)
	return nil
}

// describeIface is the plan's one-line summary of an interface.
func describeIface(m *Model, i *Interface) string {
	var parts []string
	k := string(i.Kind)
	if i.Name != "" {
		k += " " + i.Name
	}
	if i.MatchMAC != "" {
		k += " (MAC " + i.MatchMAC + ")"
	}
	if i.MatchName != "" {
		k += " (name " + i.MatchName + ")"
	}
	parts = append(parts, k)
	if i.Controller != "" {
		parts = append(parts, "port of "+m.byID(i.Controller).ID)
	}
	if i.DHCP4 {
		parts = append(parts, "DHCPv4")
	}
	switch i.IPv6 {
	case IPv6DHCP:
		parts = append(parts, "DHCPv6")
	case IPv6SLAAC:
		parts = append(parts, "SLAAC")
	}
	for _, a := range i.Addresses {
		parts = append(parts, a.String())
	}
	return strings.Join(parts, ", ")
}
